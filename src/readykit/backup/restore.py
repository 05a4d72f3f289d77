"""`backup restore`: check the backup, then put it in place — never over data without --force."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from readykit.backup import postgres, sqlite
from readykit.backup.crypto import Key
from readykit.backup.datafile import checksum, unpack
from readykit.backup.drill import require_key
from readykit.backup.errors import BackupError, IntegrityFailure, ToolFailure
from readykit.backup.manifest import Manifest
from readykit.backup.repo import Repository
from readykit.backup.source import SQLITE, Source, parse_source


@dataclass
class Restored:
    """What `restore` did."""

    id: str
    target: str
    tables: int
    rows: int
    warnings: list[str] = field(default_factory=list)


def restore_backup(
    repo: Repository, manifest: Manifest, to_url: str, key: Key | None, force: bool
) -> Restored:
    """Restore `manifest` (authenticated by `Repository.resolve`) into the database at `to_url`."""
    key = require_key(manifest, key)
    target = parse_source(to_url)
    if target.kind != manifest.kind:
        raise BackupError(
            f"backup {manifest.id} is a {manifest.kind} backup; --to must be a {manifest.kind} URL"
        )
    data = repo.data_path(manifest)
    try:
        digest, size = checksum(data, manifest.size)
    except FileNotFoundError:
        raise IntegrityFailure(
            "checksum", f"{data}: checksum failed: the data file is missing: not restored"
        ) from None
    except IntegrityFailure as exc:  # no regular file, or larger than the manifest says
        raise IntegrityFailure("checksum", f"{data}: checksum failed: {exc}: not restored") from exc
    except OSError as exc:
        raise ToolFailure(f"{data}: unreadable ({exc.strerror}): not restored") from exc
    if digest != manifest.sha256 or size != manifest.size:
        raise IntegrityFailure(
            "checksum",
            f"{data}: checksum failed (SHA-256 differs from the authenticated manifest of "
            f"backup {manifest.id}): not restored",
        )
    repo.remove_abandoned_scratch()
    try:
        if target.kind == SQLITE:
            return _restore_sqlite(repo, manifest, target, key, force)
        return _restore_postgres(repo, manifest, target, key, force)
    except IntegrityFailure as exc:
        raise IntegrityFailure(
            exc.step, f"{data}: {exc.step} check failed: {exc}: not restored"
        ) from exc


def _unpack(repo: Repository, manifest: Manifest, out: BinaryIO, key: Key | None) -> int:
    """The backup's plaintext into `out`, its checksum checked on the bytes decrypted."""
    data = repo.data_path(manifest)
    return unpack(data, out, manifest.compression, key, (manifest.sha256, manifest.size))


def _restore_sqlite(
    repo: Repository, manifest: Manifest, target: Source, key: Key | None, force: bool
) -> Restored:
    assert target.path is not None
    path = target.path
    if not path.parent.is_dir():
        raise BackupError(f"directory {path.parent} does not exist")
    if not force and not sqlite.is_empty(path):
        raise BackupError(f"{target.redacted_url} is not empty: use --force to replace it")
    temp = path.with_name(f".{path.name}.rk-restore-{secrets.token_hex(4)}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            _unpack(repo, manifest, out, key)
            out.flush()
            os.fsync(out.fileno())
        problems = sqlite.integrity_problems(temp)
        if problems:
            raise IntegrityFailure("restore", "PRAGMA integrity_check: " + "; ".join(problems[:3]))
        tables, _ = sqlite.inspect(temp)
        if tables != manifest.tables:
            raise IntegrityFailure("row_counts", "restored row counts differ from the manifest")
        sqlite.swap_in(temp, path)
    except OSError as exc:
        raise ToolFailure(f"cannot restore into {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return Restored(manifest.id, target.redacted_url, len(tables), sum(tables.values()))


def _restore_postgres(
    repo: Repository, manifest: Manifest, target: Source, key: Key | None, force: bool
) -> Restored:
    conn = _connect_or_create(target)
    with conn, postgres.database_errors(f"PostgreSQL error on {target.redacted_url}"):
        major = postgres.server_major(conn)
        if not force and not postgres.is_empty(conn):
            raise BackupError(f"{target.redacted_url} is not empty: use --force to replace it")
    pg_restore, _ = postgres.find_binary(
        "pg_restore", max(major, postgres.major_of(manifest.tools.get("pg_dump", "")))
    )
    with repo.scratch() as scratch:
        archive = scratch / "archive.dump"
        try:
            with archive.open("wb") as out:
                _unpack(repo, manifest, out, key)
        except OSError as exc:
            raise ToolFailure(f"cannot write scratch file {archive}: {exc.strerror}") from exc
        extra = ["--clean", "--if-exists"] if force else []
        try:
            postgres.run_restore(pg_restore, archive, target, extra, postgres.LOCK_TIMEOUT_S)
        except postgres.RestoreFailed as exc:
            raise ToolFailure(f"pg_restore failed, target left unchanged: {exc}") from exc
    with (
        postgres.connect(target) as check,
        postgres.database_errors(f"PostgreSQL error on {target.redacted_url}"),
    ):
        tables, schema = postgres.inspect(check)
    warnings = [
        f"{name}: {count} rows, backup had {manifest.tables[name]}"
        for name, count in sorted(tables.items())
        if name in manifest.tables and manifest.tables[name] != count
    ]
    if schema != manifest.schema_fingerprint:
        warnings.append("schema fingerprint differs from the backup (objects outside the backup?)")
    return Restored(manifest.id, target.redacted_url, len(tables), sum(tables.values()), warnings)


def _connect_or_create(target: Source) -> Any:
    try:
        return postgres.connect(target)
    except ToolFailure as exc:
        if "does not exist" not in str(exc):
            raise
    admin_db = target.with_database("postgres")
    with (
        postgres.connect(admin_db, autocommit=True) as admin,
        postgres.database_errors(f"cannot create database {target.database}"),
    ):
        postgres.create_database(admin, target.database)
    return postgres.connect(target)
