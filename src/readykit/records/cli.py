"""`readykit audit list|export|verify` and `readykit apm list`: the records, from outside."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import click

from readykit.clitools import (
    APP_HELP,
    STORE_HELP,
    ToolFailed,
    UserError,
    existing_store,
    parse_when,
)
from readykit.records.spreadsheet import write_csv

T = TypeVar("T")

KINDS = ("slow_request", "slow_query", "exception", "stall")


def _run(store_url: str | None, work: Callable[[Any], Awaitable[T]], app: str | None = None) -> T:
    """`work(store)` on the store a reading command names; it must be a readykit store already.

    A store that cannot be read is one line and exit 3 (the environment failed), not the exit
    1 of a failed verify; a file or database that is not a readykit store is never touched
    (opening a store brings its schema up, which would create the tables in it).
    """
    from readykit.records.store import StoreUnavailable, store_from_url

    url = existing_store(store_url, app)
    store = store_from_url(url)

    async def main() -> T:
        await _store_meta(url)
        try:
            await store.open()
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        raise ToolFailed(f"cannot read the store: {exc}") from exc


async def _store_meta(url: str) -> dict[str, str]:
    """The store's rk_meta (its schema version ...), read without creating or changing anything.

    UserError for a URL that cannot be parsed; ToolFailed when the store cannot be reached or
    is not a readykit store (no schema version).
    """
    from readykit.logging.redact import redact_text

    shown = redact_text(url)
    try:
        urlsplit(url)
    except ValueError as exc:
        raise UserError(f"the store URL {shown!r} cannot be parsed: {exc}") from None
    if url.startswith("sqlite"):
        meta = await asyncio.to_thread(_sqlite_meta, url)
    else:
        meta = await _postgres_meta(url, shown)
    if meta is None or "schema_version" not in meta:
        raise ToolFailed(
            f"{shown} is not a readykit store (it has no rk_meta schema version); pass the "
            "--store URL of the service's records"
        )
    return meta


def _sqlite_meta(url: str) -> dict[str, str] | None:
    from readykit.records.sqlite import sqlite_path

    path = sqlite_path(url).resolve()
    try:  # read-only: an unrelated file gains no tables
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ToolFailed(f"cannot read the store {url}: {exc}") from exc
    try:
        return dict(conn.execute("SELECT key, value FROM rk_meta").fetchall())
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise ToolFailed(f"cannot read the store {url}: {exc}") from exc
    except sqlite3.Error as exc:  # "file is not a database", a corrupt file
        raise ToolFailed(f"cannot read the store {url}: {exc}") from exc
    finally:
        conn.close()


async def _postgres_meta(url: str, shown: str) -> dict[str, str] | None:
    import asyncpg

    from readykit.records.postgres import CONNECT_TIMEOUT_S

    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except ValueError as exc:  # a DSN asyncpg cannot parse (ClientConfigurationError too)
        raise UserError(f"the store URL {shown!r} cannot be parsed: {exc}") from None
    except Exception as exc:  # refused, timed out, no such database, authentication
        raise ToolFailed(f"cannot connect to the store {shown}: {exc}") from exc
    try:
        if await conn.fetchval("SELECT to_regclass('rk_meta')") is None:
            return None
        return {r["key"]: r["value"] for r in await conn.fetch("SELECT key, value FROM rk_meta")}
    except Exception as exc:
        raise ToolFailed(f"cannot read the store {shown}: {exc}") from exc
    finally:
        conn.terminate()  # nothing to finish on a read-only look


def _filters(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--store", "store_url", help=STORE_HELP),
            click.option("--app", "app", help=APP_HELP),
            click.option("--actor"),
            click.option("--action"),
            click.option("--resource"),
            click.option("--since", help="ISO date/time, inclusive."),
            click.option("--until", help="ISO date/time, exclusive."),
        ]
    ):
        f = option(f)
    return f


def _query(**kw: Any) -> dict[str, Any]:
    return {
        "actor": kw["actor"],
        "action": kw["action"],
        "resource": kw["resource"],
        "since": parse_when(kw["since"], "--since"),
        "until": parse_when(kw["until"], "--until"),
    }


@click.group()
def audit() -> None:
    """Read and verify the audit log."""


@audit.command("list")
@_filters
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def audit_list(store_url: str | None, app: str | None, limit: int, **kw: Any) -> None:
    """The newest audit events, one line each."""
    query = _query(**kw)
    events = _run(store_url, lambda s: s.audit(**query), app)[-limit:]
    unreadable = _Unreadable()
    for e in events:
        if unreadable.skips(e):
            continue
        when = datetime.fromtimestamp(e["ts"], UTC).isoformat(timespec="seconds")
        click.echo(
            f"{e['seq']:>6} {when} {e['actor'] or '-'} {e['action']} {e['resource'] or '-'}"
            f" {e['status'] if e['status'] is not None else '-'}"
        )
    unreadable.finish(len(events))


@audit.command("export")
@_filters
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
def audit_export(store_url: str | None, app: str | None, fmt: str, **kw: Any) -> None:
    """Every matching audit event to stdout: JSON Lines (default) or CSV."""
    query = _query(**kw)
    events = _run(store_url, lambda s: s.audit(**query), app)
    unreadable = _Unreadable()
    if fmt == "jsonl":
        for e in events:
            if not unreadable.skips(e):
                click.echo(json.dumps(e, ensure_ascii=False))
        unreadable.finish(len(events))
        return
    columns = ["seq", "id", "ts", "actor", "action", "resource", "status", "request_id"]
    rows = (
        [*(e[c] for c in columns), json.dumps(e["details"], ensure_ascii=False), e["prev_hash"],
         e["hash"]]
        for e in events
        if not unreadable.skips(e)
    )  # fmt: skip
    write_csv(sys.stdout, [*columns, "details", "prev_hash", "hash"], rows)
    unreadable.finish(len(events))


class _Unreadable:
    """Audit events read back that cannot be shown (a row edited in the database: details
    that are not JSON, a time that is not one, binary columns): skipped, the others shown,
    and at the end one line naming the first by its seq, exit 3 (the store failed)."""

    SHOWN = 10  # seqs named in the line

    def __init__(self) -> None:
        self.seqs: list[Any] = []
        self.first = ""

    def skips(self, event: dict[str, Any]) -> bool:
        """Whether `event` cannot be shown (and is counted)."""
        why = _why_unreadable(event)
        if why is None:
            return False
        if not self.seqs:
            self.first = why
        self.seqs.append(event["seq"])
        return True

    def finish(self, total: int) -> None:
        """Fail naming the first unreadable event, if there was one."""
        if not self.seqs:
            return
        more = ""
        if len(self.seqs) > 1:
            named = ", ".join(str(seq) for seq in self.seqs[1 : self.SHOWN])
            rest = "" if len(self.seqs) <= self.SHOWN else ", ..."
            more = f"; {len(self.seqs) - 1} more (seq {named}{rest})"
        raise ToolFailed(
            f"audit event seq {self.seqs[0]} cannot be read: {self.first}{more}; not shown, "
            f"the other {total - len(self.seqs)} are; edited in the database? run "
            "`readykit audit verify`"
        )


def _why_unreadable(event: dict[str, Any]) -> str | None:
    """Why an audit event read back cannot be shown, or None."""
    if "unreadable" in event:
        return str(event["unreadable"])
    ts = event["ts"]
    try:
        datetime.fromtimestamp(ts, UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # NaN, huge, text
        return f"its ts {ts!r:.40} is not a time"
    for column, value in event.items():
        if not isinstance(value, str | int | float | type(None)) and column != "details":
            return f"its {column} is {type(value).__name__}, not text or a number"
    try:
        json.dumps(event["details"])
    except (TypeError, ValueError, RecursionError):
        return "its details are not JSON"
    return None


@audit.command("verify")
@click.option("--store", "store_url", help=STORE_HELP)
@click.option("--app", "app", help=APP_HELP)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The audit key file (default: READYKIT_AUDIT_KEY, else audit.key next to the spill file).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The head checkpoint (default: audit-head.json next to the spill file, if present).",
)
@click.option("--head", "heads", multiple=True, help="SEQ:HASH of a head from the anchor log line.")
def audit_verify(
    store_url: str | None,
    app: str | None,
    key_file: Path | None,
    checkpoint: Path | None,
    heads: tuple[str, ...],
) -> None:
    """Check the keyed chain against its anchors; name the first bad seq and exit 1 if broken."""
    from readykit.errors import ConfigurationError
    from readykit.records import schema
    from readykit.records.anchor import (
        checkpoint_path,
        key_path,
        load_key,
        parse_head,
        read_checkpoint,
        read_key_file,
    )
    from readykit.records.store import ChainKey, ChainVerifier, Head, KeyProblem
    from readykit.settings import Settings

    settings = Settings()
    spill = Path(settings.spill_path)
    key: ChainKey | None
    try:
        if key_file is not None:
            key = read_key_file(key_file)
        else:
            secret = settings.audit_key.get_secret_value() if settings.audit_key else None
            key = load_key(secret, key_path(spill), create=False)
    except (OSError, ConfigurationError) as exc:
        raise UserError(f"cannot read the audit key: {exc}") from exc
    anchors: list[tuple[str, Head]] = []
    anchored_key_id: str | None = None
    try:
        for text in heads:
            anchors.append((f"--head {text[:12]}", parse_head(text)))
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    path = checkpoint if checkpoint is not None else checkpoint_path(spill)
    try:
        anchored = read_checkpoint(path)
    except ValueError as exc:  # a torn write, or an edit: said as such, never a traceback
        raise UserError(
            f"{exc}: cut short or edited; verify against a --head SEQ:HASH from the anchor log "
            "line (move the file aside), or let the service replace it at its next audit write"
        ) from exc
    except OSError as exc:
        raise UserError(f"cannot read the checkpoint {path}: {exc}") from exc
    if anchored is None and checkpoint is not None:
        raise UserError(f"--checkpoint {checkpoint}: no such file")
    if anchored is not None:
        anchors.append((f"checkpoint {path}", anchored[0]))
        anchored_key_id = anchored[1]

    async def work(store: Any) -> Any:
        # read once the store is open: a store brought to version 4 just now has it too
        meta = await _store_meta(store.url)
        verifier = ChainVerifier(
            key,
            [head for _, head in anchors],
            anchored_key_id=anchored_key_id,
            unkeyed_through=_unkeyed_through(meta.get(schema.UNKEYED_THROUGH)),
        )
        async for rows in store.audit_pages():
            if not verifier.feed_all(rows):
                break
        return verifier.finish()

    try:
        result = _run(store_url, work, app)
    except KeyProblem as exc:
        raise UserError(str(exc)) from exc
    if result.broken is not None:
        broken = result.broken
        row = f" (id {broken.id})" if broken.id else ""
        click.echo(f"audit chain broken at seq {broken.seq}{row}: {broken.reason}", err=True)
        sys.exit(1)
    head = f"head seq {result.head.seq}" if result.head else "empty"
    click.echo(f"audit chain intact: {result.rows} events, {head}")
    if result.unkeyed:
        click.echo(
            f"note: the first {result.unkeyed} events predate keyed chains: linked, not keyed",
            err=True,
        )
    if anchors:
        click.echo("anchored by " + ", ".join(name for name, _ in anchors))
    else:
        click.echo(
            "warning: no anchor (checkpoint file or --head): a deleted tail cannot be seen",
            err=True,
        )


def _unkeyed_through(value: str | None) -> int:
    """The last seq from before keyed chains the store recorded; 0 when the record is gone or
    not a number (edited): then no unkeyed row is taken for an old one."""
    try:
        return max(int(value or "0"), 0)
    except ValueError:
        return 0


@click.group()
def apm() -> None:
    """Read APM records: slow requests and queries, exceptions, event-loop stalls."""


@apm.command("list")
@click.option("--store", "store_url", help=STORE_HELP)
@click.option("--app", "app", help=APP_HELP)
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--since", help="ISO date/time, inclusive.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--grouped",
    is_flag=True,
    help="One line per group (count, max, p95, first/last seen, a sample request id).",
)
def apm_list(
    store_url: str | None,
    app: str | None,
    kind: str,
    since: str | None,
    limit: int,
    grouped: bool,
) -> None:
    """Entries of one kind as JSON Lines, newest first (or per group with --grouped)."""
    from readykit.records.apm import summarise

    start = parse_when(since, "--since")
    cap = None if grouped else limit
    entries = _run(store_url, lambda s: s.entries(kind, since=start, limit=cap), app)
    for line in summarise(entries)[:limit] if grouped else entries:
        click.echo(json.dumps(line, ensure_ascii=False))
