"""What several CLI verbs share: the kit of a service, the store to read, times in options."""

from __future__ import annotations

import importlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from readykit.errors import EXIT_FAILED, EXIT_TOOL, EXIT_USAGE, ReadykitError
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
