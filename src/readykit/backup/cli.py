"""`readykit backup …`: create, list, verify, restore, prune. Exit codes: 0 ok, 1 verify failed,
2 user error, 3 tool failure (database unreachable, pg_dump missing, disk full)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from readykit.backup.codec import COMPRESSIONS
from readykit.clitools import ANY_URL, Failed
from readykit.errors import require_extra

REPO = click.option(
    "--repo",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Backup repository directory.",
)
KEY_FILE = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the encryption key (else $READYKIT_BACKUP_KEY).",
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
TEXTFILE = click.option(
    "--textfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Prometheus metrics here (node-exporter textfile collector).",
)


# backup errors carry their exit codes (1 integrity, 2 user, 3 tool); readykit.cli translates
@click.group()
def backup() -> None:
    """Back up SQLite and PostgreSQL databases, and prove the backups restore."""


@backup.command()
@click.option(
    "--db", "db_url", required=True, type=ANY_URL, help="sqlite:///path.db or postgresql://…"
)
@REPO
@click.option("--compression", type=click.Choice(COMPRESSIONS), default="zstd", show_default=True)
@KEY_FILE
@click.option(
    "--unencrypted",
    is_flag=True,
    help="Store the data unencrypted (manifests are still authenticated when a key is set).",
)
@TEXTFILE
@JSON
def create(
    db_url: str,
    repo: Path,
    compression: str,
    key_file: Path | None,
    unencrypted: bool,
    textfile: Path | None,
    as_json: bool,
) -> None:
    """Take a backup of --db into --repo."""
    from readykit.backup.create import create_backup
    from readykit.backup.crypto import KEY_ENV, load_key
    from readykit.backup.errors import BackupError
    from readykit.backup.repo import Repository
    from readykit.backup.source import parse_source

    source = parse_source(db_url)
    key = load_key(key_file)
    if key is None and not unencrypted:
        raise BackupError(
            f"no encryption key: give --key-file or set {KEY_ENV}, or pass --unencrypted"
        )
    if compression == "zstd":  # before the repository exists: a refusal leaves nothing behind
        require_extra("zstandard", None, "--compression zstd")
    repository = Repository.open(repo, create=True)
    with repository.lock("create"):
        manifest = create_backup(repository, source, compression, key, encrypt=not unencrypted)
        _warn(repository.problems)
        _textfile(textfile, repository)
    if as_json:
        click.echo(json.dumps(manifest.summary() | {"tables": manifest.tables}, indent=2))
    else:
        rows = sum(manifest.tables.values())
        click.echo(
            f"{manifest.id}  {_size(manifest.size)}  {len(manifest.tables)} tables, {rows} rows"
            f"  {'encrypted' if manifest.encryption else 'unencrypted'}, {compression}"
        )


@backup.command(name="list")
@REPO
@JSON
def list_(repo: Path, as_json: bool) -> None:
    """List the backups in --repo, oldest first, with their verify status."""
    from readykit.backup.repo import Repository

    repository = Repository.open(repo)
    manifests = repository.manifests()
    _warn(repository.problems)
    if as_json:
        click.echo(json.dumps([m.summary() for m in manifests], indent=2))
        return
    if not manifests:
        click.echo(f"no backups in {repository.root}")
        return
    click.echo(f"{'ID':<24}  {'CREATED (UTC)':<19}  {'SIZE':>9}  {'VERIFY':<8}  SOURCE")
    for m in manifests:
        s = m.summary()
        created = m.created.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{m.id:<24}  {created:<19}  {_size(m.size):>9}  {s['verify']:<8}  {s['source']}"
        )


@backup.command()
@REPO
@click.argument("backup_id", metavar="[ID|latest]", default="latest")
@KEY_FILE
@click.option(
    "--drill-url",
    help="PostgreSQL server for the scratch database (default: the backup's source server).",
)
@TEXTFILE
@JSON
def verify(
    repo: Path,
    backup_id: str,
    key_file: Path | None,
    drill_url: str | None,
    textfile: Path | None,
    as_json: bool,
) -> None:
    """Checksum, decrypt and restore a backup into a scratch database, then compare."""
    from readykit.backup.crypto import load_key
    from readykit.backup.drill import verify_backup
    from readykit.backup.repo import Repository

    key = load_key(key_file)
    repository = Repository.open(repo)
    with repository.lock("verify"):
        manifest = repository.resolve(backup_id, repository.access(key))
        _warn(repository.problems)
        report = verify_backup(repository, manifest, key, drill_url)
        _textfile(textfile, repository)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for step in report.steps:
            click.echo(f"{step.status:<7}  {step.name:<10}  {step.detail}")
    if not report.ok:
        raise Failed(report.message())
    if not as_json:
        click.echo(report.message())


@backup.command()
@REPO
@click.argument("backup_id", metavar="ID|latest")
@click.option("--to", "to_url", required=True, type=ANY_URL, help="Target database URL.")
@click.option("--force", is_flag=True, help="Replace a target that already holds data.")
@KEY_FILE
@JSON
def restore(
    repo: Path, backup_id: str, to_url: str, force: bool, key_file: Path | None, as_json: bool
) -> None:
    """Restore a backup into --to; refuses a non-empty target without --force."""
    from readykit.backup.crypto import load_key
    from readykit.backup.repo import Repository
    from readykit.backup.restore import restore_backup

    key = load_key(key_file)
    repository = Repository.open(repo)
    manifest = repository.resolve(backup_id, repository.access(key))
    _warn(repository.problems)
    done = restore_backup(repository, manifest, to_url, key, force)
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(done.__dict__, indent=2))
    else:
        click.echo(f"restored {done.id} into {done.target}: {done.tables} tables, {done.rows} rows")
    from readykit.privacy.cli import restore_hint

    hint = restore_hint(manifest.created)
    if hint is not None:
        click.echo(f"warning: {hint}", err=True)


@backup.command()
@REPO
@click.option("--keep-last", type=click.IntRange(0), default=0, help="Keep the N newest.")
@click.option("--keep-daily", type=click.IntRange(0), default=0, help="Newest of N last days.")
@click.option("--keep-weekly", type=click.IntRange(0), default=0, help="Newest of N last weeks.")
@click.option("--keep-monthly", type=click.IntRange(0), default=0, help="Newest of N months.")
@click.option("--keep-yearly", type=click.IntRange(0), default=0, help="Newest of N years.")
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@TEXTFILE
@JSON
def prune(
    repo: Path,
    keep_last: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    keep_yearly: int,
    dry_run: bool,
    textfile: Path | None,
    as_json: bool,
) -> None:
    """Remove backups outside the retention policy (GFS); never the newest verified one."""
    from readykit.backup.errors import BackupError
    from readykit.backup.repo import Repository
    from readykit.backup.retention import Decision, Item, Policy, plan

    policy = Policy(keep_last, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    if policy.is_empty():
        raise BackupError("no --keep-* option given: refusing to remove every backup")
    repository = Repository.open(repo)
    with repository.lock("prune"):
        config = repository.read_config()
        manifests = {m.id: m for m in repository.manifests()}
        items = [Item(m.id, m.created, m.verified, m.sequence) for m in manifests.values()]
        # The chain's head (and anything after it) is what `restore latest` trusts: never removed.
        head = config.head.sequence if config is not None and config.head else 0
        decisions = [
            Decision(d.item, True, (*d.reasons, "chain head"))
            if not d.keep and manifests[d.item.id].sequence >= head
            else d
            for d in plan(items, policy)
        ]
        if not dry_run:
            for decision in decisions:
                if not decision.keep:
                    repository.delete(manifests[decision.item.id])
            repository.remove_stale()
            _textfile(textfile, repository)
    if as_json:
        out = [{"id": d.item.id, "keep": d.keep, "reasons": list(d.reasons)} for d in decisions]
        click.echo(json.dumps({"dry_run": dry_run, "backups": out}, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for d in decisions:
        click.echo(f"{'keep' if d.keep else verb:<12}  {d.item.id}  {', '.join(d.reasons)}")
    removed = sum(not d.keep for d in decisions)
    click.echo(f"{verb} {removed} of {len(decisions)} backups")


def _warn(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


def _textfile(path: Path | None, repository: Any) -> None:
    if path is None:
        return
    from readykit.backup.errors import ToolFailure
    from readykit.backup.textfile import write_textfile

    try:
        write_textfile(path, repository)
    except OSError as exc:
        raise ToolFailure(f"cannot write metrics to {path}: {exc.strerror or exc}") from exc


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover
