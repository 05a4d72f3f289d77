"""SQLite: consistent copies through the online backup API, inspection, integrity, swap-in."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from readykit.backup.atomic import fsync_dir
from readykit.backup.errors import BackupError, ToolFailure
from readykit.backup.fingerprint import fingerprint

BUSY_TIMEOUT_S = 30.0


@contextlib.contextmanager
def _connect(path: Path, mode: str) -> Iterator[sqlite3.Connection]:
    uri = f"file:{quote(str(path))}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def snapshot(source: Path, dest: Path) -> dict[str, str]:
    """Copy the live database `source` to `dest` in one consistent step; return tool versions."""
    if not source.is_file():
        raise ToolFailure(f"cannot open SQLite database {source}: no such file")
    try:
        with _connect(source, "ro") as src, _connect(dest, "rwc") as dst:
            # pages=-1: one step under one read lock, so concurrent writers cannot make the
            # copy restart forever or mix two states.
            src.backup(dst, pages=-1)
    except sqlite3.Error as exc:
        raise ToolFailure(f"cannot back up SQLite database {source}: {exc}") from exc
    os.chmod(dest, 0o600)
    return {"sqlite": sqlite3.sqlite_version}


def inspect(path: Path) -> tuple[dict[str, int], str]:
    """Per-table row counts and the schema fingerprint of the database file at `path`."""
    with _connect(path, "ro") as conn:
        schema = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        tables = [
            name
            for kind, name, _, _ in schema
            if kind == "table" and not str(name).startswith("sqlite_")
        ]
        counts = {
            name: int(conn.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0])  # noqa: S608 -- quoted identifier
            for name in tables
        }
    return counts, fingerprint([list(row) for row in schema])


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` reports; empty when the file is sound."""
    try:
        with _connect(path, "ro") as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    result = [str(row[0]) for row in rows]
    return [] if result == ["ok"] else result


def is_empty(path: Path) -> bool:
    """True when `path` is missing, zero bytes, or a database without any schema objects."""
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return True
    try:
        with _connect(path, "ro") as conn:
            return int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]) == 0
    except sqlite3.DatabaseError:
        return False  # not a database we understand: treat it as precious


def swap_in(restored: Path, target: Path) -> None:
    """Atomically replace `target` by `restored` (same directory), leaving no stale WAL behind."""
    if target.exists():
        with contextlib.suppress(OSError):
            os.chmod(restored, stat.S_IMODE(target.stat().st_mode))
        _release_wal(target)
    os.replace(restored, target)
    fsync_dir(target.parent)


def _release_wal(target: Path) -> None:
    # A -wal file left next to the new main file would be replayed into it: checkpoint it away.
    try:
        with _connect(target, "rw") as conn:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            return
        raise BackupError(f"cannot take over {target}: {exc} (is it in use?)") from exc
    if str(mode).lower() != "delete":
        raise BackupError(f"cannot take over {target}: it is in use by another process")
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
