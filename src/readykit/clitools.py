"""What several CLI verbs share: the kit of a service, the store to read, times in options."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import click

from readykit.errors import (
    EXIT_FAILED,
    EXIT_TOOL,
    EXIT_USAGE,
    EXTRA_OF,
    MissingExtra,
    ReadykitError,
)
from readykit.settings import Settings

STORE_HELP = (
    "Store URL; default: the --app kit's store, else READYKIT_STORE_URL, else "
    "sqlite:///.readykit/readykit.db."
)


APP_HELP = "module:attribute of the service's kit, to read its store (e.g. myservice.main:kit)."


class UserError(click.ClickException):
    """A mistake the user can fix: one line on stderr, exit code 2."""

    exit_code = EXIT_USAGE


class ToolFailed(click.ClickException):
    """The environment failed: one line, exit code 3."""

    exit_code = EXIT_TOOL


class Failed(click.ClickException):
    """The verdict failed: one line, exit code 1."""

    exit_code = EXIT_FAILED


_BY_EXIT_CODE: dict[int, type[click.ClickException]] = {
    EXIT_FAILED: Failed,
    EXIT_USAGE: UserError,
    EXIT_TOOL: ToolFailed,
}


def cli_error(exc: ReadykitError) -> click.ClickException:
    """readykit's own error as one line on stderr with the exit code it carries."""
    return _BY_EXIT_CODE.get(exc.exit_code, UserError)(str(exc))


class GateCommand(click.Command):
    """A verb whose exit code 2 means something of its own (check: "warnings only"): its usage
    errors and missing extras exit 3 instead (the root translator, readykit.cli, says so)."""


def for_gate(exc: click.ClickException) -> click.ClickException:
    """`exc` as a GateCommand exits: exit code 2 becomes 3, the message stays."""
    return ToolFailed(exc.format_message()) if exc.exit_code == EXIT_USAGE else exc


def missing_extra(verb: str, extras: tuple[str, ...], name: str) -> MissingExtra | None:
    """The error naming `readykit[name]` when a module of `extras` (EXTRA_OF) is not installed.

    Looked up without importing, so a verb can refuse before it does any work.
    """
    missing = [
        module
        for module, extra in EXTRA_OF.items()
        if extra in extras and importlib.util.find_spec(module) is None
    ]
    if not missing:
        return None
    return MissingExtra(
        f"readykit {verb} needs the {name!r} extra: pip install 'readykit[{name}]' "
        f"({', '.join(missing)} missing)"
    )


def output_dir_ok(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output file whose directory is not there (exit 3)."""
    if path is not None and not path.parent.is_dir():
        raise ToolFailed(f"{option} {path}: no directory {path.parent}")


@contextmanager
def writing(path: Path, option: str) -> Iterator[None]:
    """Writing `option`'s file: a disk error is one line naming it, exit 3, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise ToolFailed(f"{option}: cannot write {path}: {exc.strerror or exc}") from exc


class Url(click.ParamType[str]):
    """A URL refused at parse time when it does not parse (brackets, port) or, given `schemes`,
    has another scheme or no host; the error names the option."""

    name = "url"

    def __init__(self, schemes: tuple[str, ...] = ()) -> None:
        self.schemes = schemes

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            check_url(str(value), schemes=self.schemes)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


HTTP_URL = Url(("http", "https"))
ANY_URL = Url()  # the verb checks the scheme itself (database URLs: sqlite, postgresql+…)


def check_url(url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> SplitResult:
    """`url` split, or ValueError saying what is wrong (brackets, port; with `schemes`, the
    scheme or a missing host). A password in `url` is not repeated."""
    from readykit.logging.redact import redact_text

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not 0-65535
    except ValueError as exc:
        raise ValueError(f"{redact_text(url)!r} is not a URL: {exc}") from None
    if schemes and (parts.scheme not in schemes or not parts.hostname):
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"{redact_text(url)!r}: give a full {wanted} URL")
    return parts


def parse_when(value: str | None, option: str) -> float | None:
    """An ISO 8601 time (date, or date and time; UTC unless it says otherwise) as epoch s."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"{option} {value!r} is not a date or time; write e.g. 2026-11-23 or "
            "2026-11-23T10:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def load_kit(target: str) -> Any:
    """The ReadyKit at `module:attribute` (a kit, or an app with `.state.kit` or `.kit`)."""
    from readykit.kit import ReadyKit

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise UserError(f"--app {target!r}: write module:attribute, e.g. myservice.main:kit")
    sys.path.insert(0, ".")
    try:
        obj: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"--app {target!r}: {exc}") from exc
    for candidate in (
        obj,
        getattr(obj, "kit", None),
        getattr(getattr(obj, "state", None), "kit", None),
    ):
        if isinstance(candidate, ReadyKit):
            return candidate
    raise UserError(f"--app {target!r} is not a ReadyKit (nor an app holding one)")


def existing_store(store_url: str | None, app: str | None = None) -> str:
    """The URL of the store a reading command opens; it must exist already.

    From `--store`, else the `--app` kit's settings, else READYKIT_STORE_URL, else the default.
    A SQLite file that is not there is an error naming where it was looked for and how to
    point elsewhere: reading never creates a store.
    """
    if store_url:
        url, source = store_url, "--store"
    elif app:
        url, source = load_kit(app).settings.store_url, f"--app {app}"
    else:
        url = Settings().store_url
        source = "READYKIT_STORE_URL" if os.environ.get("READYKIT_STORE_URL") else "the default"
    if url.startswith("sqlite://"):
        from readykit.records.sqlite import sqlite_path

        path = sqlite_path(url)
        if not path.is_file():
            raise UserError(
                f"no store at {Path(path).resolve()} ({source}); pass --store URL, set "
                "READYKIT_STORE_URL, or --app module:kit"
            )
    return url
