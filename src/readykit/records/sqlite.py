"""The SQLite store: one connection used from a worker thread, so the event loop never waits
on the disk; WAL mode, so readers (the dashboard, the CLI) do not block the writer."""

from __future__ import annotations

import asyncio
import contextvars
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from readykit.errors import ConfigurationError
from readykit.records import schema
from readykit.records.store import AUDIT, ChainKey, Head, Store, StoreUnavailable

T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0  # how long a statement waits for another process's write lock


def sqlite_path(url: str) -> Path:
    """The file of `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`."""
    path = url.split("://", 1)[1]
    if not path.startswith("/") or path == "/":
        raise ConfigurationError(f"store_url: {url!r} names no file; write sqlite:///path/to.db")
    if path[1:].startswith(":memory:") or "mode=memory" in path:
        # a database in memory starts empty each time: the audit chain restarts from seq 1
        # and what was acknowledged before the restart is gone
        raise ConfigurationError(
            f"store_url: {url!r} is a database in memory, lost at every restart (audit events "
            "with it); write sqlite:///path/to.db"
        )
    return Path(path[1:])


class SQLiteStore(Store):
    """Records in one SQLite file (created with its directory)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._lock = asyncio.Lock()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            if self._conn is None:
                if self._closed:
                    raise StoreUnavailable(f"{self.url} is closed")
                self._conn = await _unless_cancelled(self._connect)  # unreachable at startup
            conn = self._conn
            try:
                return await _unless_cancelled(lambda: fn(conn))
            except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError):
                raise  # this batch's fault, not the store's
            except sqlite3.DatabaseError as exc:  # locked, full disk, I/O error, corrupt file
                # the error in parentheses, not after `url:`: a path such as /etc/passwd
                # would read as a `passwd: <secret>` pair to the log's redaction
                raise StoreUnavailable(f"{self.url} ({exc})") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            _enter_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")  # a commit is an fsync: audited means on disk
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            migrate(conn, str(self.path))
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open {self.url} ({exc})") from exc
        return conn

    async def open(self) -> None:
        async with self._lock:
            self._closed = False
            if self._conn is None:
                self._conn = await _unless_cancelled(self._connect)

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await _unless_cancelled(conn.close)

    async def write(self, events: Sequence[dict[str, Any]], *, fresh: bool = False) -> int:
        key = self.audit_key
        written, head = await self._run(lambda conn: _write(conn, events, key, fresh))
        if head is not None:
            self.head = head
        return written

    async def audit_page(self, from_seq: int, limit: int) -> list[tuple[Any, ...]]:
        return await self._run(
            lambda conn: conn.execute(schema.AUDIT_PAGE, (from_seq, limit)).fetchall()
        )

    async def audit_head(self) -> Head | None:
        row = await self._run(lambda conn: conn.execute(schema.LAST_LINK).fetchone())
        return Head(int(row[0]), str(row[1])) if row is not None else None

    async def audit(self, **filters: Any) -> list[dict[str, Any]]:
        sql, params = schema.audit_query(filters)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [schema.audit_event(r) for r in rows]

    async def entries(
        self, kind: str, *, since: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        sql, params = schema.entries_query(kind, since, limit)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [schema.entry_event(r) for r in rows]

    async def buckets(self, kind: str, *, since: float) -> list[dict[str, Any]]:
        sql = (
            "SELECT minute, grp, count, sum_ms, max_ms FROM rk_buckets"
            " WHERE kind = ? AND minute >= ? ORDER BY minute, grp"
        )
        rows = await self._run(lambda conn: conn.execute(sql, (kind, int(since // 60))).fetchall())
        keys = ("minute", "group", "count", "sum_ms", "max_ms")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def put_doc(
        self, kind: str, id: str, body: dict[str, Any], *, key: str | None = None, ts: float
    ) -> None:
        params = (kind, id, key, ts, json.dumps(body, default=repr))
        await self._run(lambda conn: conn.execute(schema.PUT_DOC, params))

    async def get_doc(self, kind: str, id: str) -> dict[str, Any] | None:
        row = await self._run(lambda conn: conn.execute(schema.GET_DOC, (kind, id)).fetchone())
        return json.loads(row[0]) if row else None

    async def docs(
        self, kind: str, *, key: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        sql, params = schema.docs_query(kind, key, since)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [json.loads(r[0]) for r in rows]

    async def claim_doc(
        self, kind: str, id: str, body: dict[str, Any], *, until: float, at: float
    ) -> bool:
        params = (kind, id, None, until, json.dumps(body, default=repr), at)
        taken = await self._run(lambda conn: conn.execute(schema.CLAIM_DOC, params).rowcount)
        return bool(taken)

    async def renew_doc(self, kind: str, id: str, body: dict[str, Any], *, until: float) -> bool:
        params = (until, kind, id, json.dumps(body, default=repr))
        renewed = await self._run(lambda conn: conn.execute(schema.RENEW_DOC, params).rowcount)
        return bool(renewed)

    async def delete_docs(self, kind: str, *, before: float, key: str | None = None) -> int:
        sql, params = schema.DELETE_DOCS, [kind, before]
        if key is not None:
            sql, params = sql + " AND key = ?", [*params, key]
        return int(await self._run(lambda conn: conn.execute(sql, params).rowcount))

    async def trim(self, before: float, *, batch: int = 1000) -> int:
        entries = (
            "DELETE FROM rk_entries WHERE id IN (SELECT id FROM rk_entries WHERE ts < ? LIMIT ?)"
        )
        buckets = (
            "DELETE FROM rk_buckets WHERE rowid IN"
            " (SELECT rowid FROM rk_buckets WHERE minute < ? LIMIT ?)"
        )
        statements = ((entries, (before, batch)), (buckets, (int(before // 60), batch)))
        total = 0
        for sql, params in statements:
            while True:  # small batches: each a short transaction, the writer never waits long
                deleted = await self._run(_delete(sql, params))
                total += deleted
                if deleted < batch:
                    break
        return total


def _delete(sql: str, params: tuple[Any, ...]) -> Callable[[sqlite3.Connection], int]:
    return lambda conn: conn.execute(sql, params).rowcount


async def _unless_cancelled(fn: Callable[[], T]) -> T:
    """Run `fn` in a thread; if the caller is cancelled, still wait for the thread to finish.

    The connection must never be closed (or used by another call) while a thread is inside it:
    sqlite3 would crash the process. So a cancelled call keeps the lock until its thread ends.

    The thread starts at once and hands its outcome straight to the caller's future: the caller
    wakes two turns of the event loop after the thread is done, not five (`to_thread` in a task
    of its own, behind `shield`); on the durable audit path every turn is commit latency.
    """
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def work() -> None:
        try:
            result = context.run(fn)
        except BaseException as exc:  # handed to the caller
            loop.call_soon_threadsafe(_settle, outcome, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, outcome, result, None)

    ran = loop.run_in_executor(None, work)
    try:
        return await outcome
    except asyncio.CancelledError:
        await asyncio.wait([ran])
        raise


def _settle(future: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    if future.done():  # the caller was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode, waiting out the others that are switching it.

    Processes that open a new file together (the workers of one server) race to convert it,
    and SQLite answers the losers "database is locked" at once, without its busy handler: try
    again for as long as the busy timeout would have waited.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # in the store's worker thread, never on the event loop


def migrate(conn: sqlite3.Connection, name: str = "the store") -> None:
    """Bring the schema to schema.VERSION, one transaction per version.

    StoreUnavailable naming `name` (the file) when the stored version is not a number.

    The version is read inside the write lock, as the PostgreSQL store reads it under its
    advisory lock: processes that open one file together (the workers of one server) migrate
    it once, each version applied by whichever takes the lock first.
    """
    conn.execute(schema.META)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM rk_meta WHERE key = 'schema_version'").fetchone()
            version = schema.stored_version(row[0] if row else None, name) + 1
            if version > schema.VERSION:
                conn.execute("COMMIT")
                return
            for statement in schema.MIGRATIONS[version]:
                conn.execute(statement.format(serial="INTEGER", float="REAL"))
            conn.execute(
                "INSERT INTO rk_meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(version),),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _write(
    conn: sqlite3.Connection, events: Sequence[dict[str, Any]], key: ChainKey | None, fresh: bool
) -> tuple[int, Head | None]:
    audit_ids = [] if fresh else [e["id"] for e in events if e["kind"] == AUDIT]
    entry_ids = [] if fresh else [e["id"] for e in events if e["kind"] != AUDIT]
    conn.execute("BEGIN IMMEDIATE")  # one writer: the chain's last hash cannot move under us
    try:
        last = conn.execute(schema.LAST_LINK).fetchone()
        audits, entries, buckets = schema.plan(
            events,
            _known(conn, "rk_audit", audit_ids),
            _known(conn, "rk_entries", entry_ids),
            Head(*last) if last else None,
            key,
        )
        conn.executemany(schema.INSERT_AUDIT, audits)
        conn.executemany(schema.INSERT_ENTRY, entries)
        conn.executemany(schema.UPSERT_BUCKET, buckets)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    head = Head(audits[-1][0], audits[-1][10]) if audits else None
    return len(audits) + len(entries), head


def _known(conn: sqlite3.Connection, table: str, ids: list[str]) -> set[str]:
    known: set[str] = set()
    if not ids:
        return known
    for i in range(0, len(ids), 500):  # SQLite caps the number of parameters
        chunk = ids[i : i + 500]
        rows = conn.execute(schema.existing_ids_sql(table, len(chunk)), chunk).fetchall()
        known.update(r[0] for r in rows)
    return known
