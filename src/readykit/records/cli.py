"""`readykit audit list|export|verify` and `readykit apm list`: the records, from outside."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from readykit.clitools import APP_HELP, STORE_HELP, existing_store, parse_when

T = TypeVar("T")

KINDS = ("slow_request", "slow_query", "exception", "stall")


def _run(store_url: str | None, work: Callable[[Any], Awaitable[T]], app: str | None = None) -> T:
    from readykit.records.store import StoreUnavailable, store_from_url

    store = store_from_url(existing_store(store_url, app))

    async def main() -> T:
        try:
            await store.open()
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        raise click.ClickException(f"cannot read the store: {exc}") from exc


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
    for e in events:
        when = datetime.fromtimestamp(e["ts"], UTC).isoformat(timespec="seconds")
        click.echo(
            f"{e['seq']:>6} {when} {e['actor'] or '-'} {e['action']} {e['resource'] or '-'}"
            f" {e['status'] if e['status'] is not None else '-'}"
        )


@audit.command("export")
@_filters
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
def audit_export(store_url: str | None, app: str | None, fmt: str, **kw: Any) -> None:
    """Every matching audit event to stdout: JSON Lines (default) or CSV."""
    query = _query(**kw)
    events = _run(store_url, lambda s: s.audit(**query), app)
    if fmt == "jsonl":
        for e in events:
            click.echo(json.dumps(e, ensure_ascii=False))
        return
    writer = csv.writer(sys.stdout)
    columns = ["seq", "id", "ts", "actor", "action", "resource", "status", "request_id"]
    writer.writerow([*columns, "details", "prev_hash", "hash"])
    for e in events:
        details = json.dumps(e["details"], ensure_ascii=False)
        writer.writerow([*(e[c] for c in columns), details, e["prev_hash"], e["hash"]])


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
    from readykit.clitools import UserError
    from readykit.errors import ConfigurationError
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
        path = checkpoint if checkpoint is not None else checkpoint_path(spill)
        anchored = read_checkpoint(path)
        if anchored is None and checkpoint is not None:
            raise UserError(f"--checkpoint {checkpoint}: no such file")
        if anchored is not None:
            anchors.append((f"checkpoint {path}", anchored[0]))
            anchored_key_id = anchored[1]
    except (OSError, ValueError) as exc:
        raise UserError(str(exc)) from exc

    async def work(store: Any) -> Any:
        verifier = ChainVerifier(
            key, [head for _, head in anchors], anchored_key_id=anchored_key_id
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
