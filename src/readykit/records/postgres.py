"""The PostgreSQL store on asyncpg: a small pool, short connect timeouts, and the audit chain
extended under a transaction-scoped advisory lock so two instances never fork it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from readykit.records import schema
from readykit.records.store import AUDIT, Head, Store, StoreUnavailable

CONNECT_TIMEOUT_S = 2.0
# a statement that does not finish in this time means a hung server: the writer spills (the
# commit may have landed; replay skips stored ids) instead of holding durable callers forever
WRITE_TIMEOUT_S = 5.0
QUERY_TIMEOUT_S = 60.0  # reads and maintenance (verify pages, retention), through the pool
CHAIN_LOCK = 0x5EAD_1C17  # pg_advisory_xact_lock key of the audit chain
# after another writer moved the head (several workers on one database), how long batches go
# straight to the locked path: an append chained after a stale head inserts nothing, and a
# miss then costs a round trip and a wait on the lock on top of the locked write
CONTENDED_S = 1.0


def _unavailable(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(
        exc,
        OSError
        | asyncio.TimeoutError
        | asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.CannotConnectNowError
        # the server shutting down or out of resources (disk full, too many connections)
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.InsufficientResourcesError
        # refused at login: no such role, a wrong password, no such database (yet): as the
        # server being away, the startup says so naming store_url; with store_required=false
        # the writer spills and retries until it is put right
        | asyncpg.exceptions.InvalidAuthorizationSpecificationError
        | asyncpg.exceptions.InvalidCatalogNameError,
    )


async def _reset(conn: Any) -> None:
    """What a connection needs before it goes back to the pool: only an open transaction closed.

    asyncpg's default reset is a round trip per use (RESET ALL, UNLISTEN ...) for session state
    this store never sets; on the durable audit path every round trip is commit latency.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PostgresStore(Store):
    """Records in a PostgreSQL database (`postgresql://user:password@host:port/db`)."""

    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._writer: Any = None
        self._writer_lock = asyncio.Lock()
        self._migrated = False
        self._closed = False  # after close(): nothing opens a connection again until open()
        self._contended_until = 0.0  # see CONTENDED_S

    async def _pool_or_raise(self) -> Any:
        import asyncpg

        if self._closed:
            raise StoreUnavailable("the store is closed")
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self.url,
                    min_size=0,
                    max_size=4,
                    timeout=CONNECT_TIMEOUT_S,
                    command_timeout=QUERY_TIMEOUT_S,
                    reset=_reset,
                )
            except Exception as exc:
                if _unavailable(exc):
                    raise StoreUnavailable(f"cannot connect to the store: {exc}") from exc
                raise
        return self._pool

    async def _call(self, fn: Any) -> Any:
        pool = await self._pool_or_raise()
        try:
            async with pool.acquire(timeout=CONNECT_TIMEOUT_S) as conn:
                return await fn(conn)
        except Exception as exc:
            if _unavailable(exc):
                raise StoreUnavailable(f"store unreachable: {exc}") from exc
            raise

    async def _write_call(self, fn: Any) -> Any:
        """`fn(conn)` on the store's own writing connection, kept open beside the pool: a pool
        acquire with a timeout and a release each run in a task of their own (asyncpg), four
        extra turns of the event loop per commit, and the durable audit waits on every one."""
        import asyncpg

        async with self._writer_lock:
            if self._closed:
                raise StoreUnavailable("the store is closed")
            try:
                conn = self._writer
                if conn is None or conn.is_closed():
                    self._writer = None
                    conn = self._writer = await asyncpg.connect(
                        self.url, timeout=CONNECT_TIMEOUT_S, command_timeout=WRITE_TIMEOUT_S
                    )
                return await fn(conn)
            except asyncio.CancelledError:
                self._drop_writer()  # its statement may still be running: not reused
                raise
            except Exception as exc:
                # asyncpg's own state errors (a connection the server ended while it was idle
                # can fail its next use this way) mean this connection is done: a new one next
                if _unavailable(exc) or isinstance(exc, asyncpg.exceptions.InternalClientError):
                    self._drop_writer()
                    raise StoreUnavailable(f"store unreachable: {exc}") from exc
                raise

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.terminate()

    async def open(self) -> None:
        from readykit.logging.redact import redact_text

        async def migrate(conn: Any) -> None:
            await conn.execute(schema.META)
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
                current = await conn.fetchval(
                    "SELECT value FROM rk_meta WHERE key = 'schema_version'"
                )
                stored = schema.stored_version(current, redact_text(self.url))
                for version in range(stored + 1, schema.VERSION + 1):
                    for statement in schema.MIGRATIONS[version]:
                        await conn.execute(
                            statement.format(serial="BIGSERIAL", float="DOUBLE PRECISION")
                        )
                    await conn.execute(
                        "INSERT INTO rk_meta (key, value) VALUES ('schema_version', $1)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        str(version),
                    )

        self._closed = False
        await self._call(migrate)
        self._migrated = True

    async def close(self) -> None:
        async with self._writer_lock:
            self._closed = True
            writer, self._writer = self._writer, None
            if writer is not None:
                try:
                    await writer.close(timeout=CONNECT_TIMEOUT_S)
                except Exception:
                    writer.terminate()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def write(self, events: Sequence[dict[str, Any]], *, fresh: bool = False) -> int:
        if not self._migrated:  # not reachable at startup: bring the schema up now
            await self.open()
        head = self.head
        if (
            fresh
            and head is not None
            and self.clock() >= self._contended_until
            and all(e["kind"] == AUDIT for e in events)
        ):
            written = await self._append(events, head)
            if written is not None:
                return written
            self._contended_until = self.clock() + CONTENDED_S  # another writer is at work
        return await self._write_locked(events, fresh=fresh)

    async def _append(self, events: Sequence[dict[str, Any]], head: Head) -> int | None:
        """Fresh audit events chained after the head this store wrote last, in one statement
        (one round trip, committed on its own); None when that head is no longer the newest
        row (another writer got in) and the locked path must read it."""
        import asyncpg

        audits, _, _ = schema.plan(events, set(), set(), head, self.audit_key)
        if not audits:
            return 0
        columns = [list(column) for column in zip(*audits, strict=True)]

        async def append(conn: Any) -> str:
            sql = schema.APPEND_AUDIT_PG
            return str(await conn.execute(sql, *columns, CHAIN_LOCK, head.seq, head.hash))

        try:
            status = await self._write_call(append)
        except asyncpg.exceptions.UniqueViolationError:
            return None  # a seq taken since the head was read (or a repeated id): locked path
        if int(status.rsplit(" ", 1)[-1]) != len(audits):
            return None  # the head moved (another instance wrote, or rows were removed)
        self.head = Head(audits[-1][0], audits[-1][10])
        return len(audits)

    async def _write_locked(self, events: Sequence[dict[str, Any]], *, fresh: bool) -> int:
        """Any batch, in one transaction under the chain lock, after the head read back."""

        async def known(conn: Any, table: str, ids: list[str]) -> set[str]:
            if fresh or not ids:  # a round trip saved per commit on the durable path
                return set()
            sql = f"SELECT id FROM {table} WHERE id = ANY($1::text[])"  # noqa: S608
            return {r[0] for r in await conn.fetch(sql, ids)}

        async def write(conn: Any) -> int:
            audit_ids = [e["id"] for e in events if e["kind"] == AUDIT]
            entry_ids = [e["id"] for e in events if e["kind"] != AUDIT]
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
                last = await conn.fetchrow(schema.LAST_LINK)
                audits, entries, buckets = schema.plan(
                    events,
                    await known(conn, "rk_audit", audit_ids),
                    await known(conn, "rk_entries", entry_ids),
                    Head(last[0], last[1]) if last else None,
                    self.audit_key,
                )
                if audits:
                    await conn.executemany(schema.numbered(schema.INSERT_AUDIT), audits)
                    heads.append(Head(audits[-1][0], audits[-1][10]))
                if entries:
                    await conn.executemany(schema.numbered(schema.INSERT_ENTRY), entries)
                    await conn.executemany(schema.numbered(schema.UPSERT_BUCKET), buckets)
            return len(audits) + len(entries)

        heads: list[Head] = []
        written = int(await self._write_call(write))
        if heads:  # set only once the transaction committed
            self.head = heads[-1]
        return written

    async def audit_page(self, from_seq: int, limit: int) -> list[tuple[Any, ...]]:
        sql = schema.numbered(schema.AUDIT_PAGE)
        rows = await self._call(lambda conn: conn.fetch(sql, from_seq, limit))
        return [tuple(r) for r in rows]

    async def audit_head(self) -> Head | None:
        row = await self._call(lambda conn: conn.fetchrow(schema.LAST_LINK))
        return Head(int(row[0]), str(row[1])) if row is not None else None

    async def audit(self, **filters: Any) -> list[dict[str, Any]]:
        sql, params = schema.audit_query(filters)
        rows = await self._call(lambda conn: conn.fetch(schema.numbered(sql), *params))
        return [schema.audit_event(tuple(r)) for r in rows]

    async def entries(
        self, kind: str, *, since: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        sql, params = schema.entries_query(kind, since, limit)
        rows = await self._call(lambda conn: conn.fetch(schema.numbered(sql), *params))
        return [schema.entry_event(tuple(r)) for r in rows]

    async def buckets(self, kind: str, *, since: float) -> list[dict[str, Any]]:
        sql = (
            "SELECT minute, grp, count, sum_ms, max_ms FROM rk_buckets"
            " WHERE kind = $1 AND minute >= $2 ORDER BY minute, grp"
        )
        rows = await self._call(lambda conn: conn.fetch(sql, kind, int(since // 60)))
        keys = ("minute", "group", "count", "sum_ms", "max_ms")
        return [dict(zip(keys, tuple(r), strict=True)) for r in rows]

    async def put_doc(
        self, kind: str, id: str, body: dict[str, Any], *, key: str | None = None, ts: float
    ) -> None:
        params = (kind, id, key, ts, json.dumps(body, default=repr))
        await self._call(lambda conn: conn.execute(schema.numbered(schema.PUT_DOC), *params))

    async def get_doc(self, kind: str, id: str) -> dict[str, Any] | None:
        body = await self._call(
            lambda conn: conn.fetchval(schema.numbered(schema.GET_DOC), kind, id)
        )
        return json.loads(body) if body is not None else None

    async def docs(
        self, kind: str, *, key: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        sql, params = schema.docs_query(kind, key, since)
        rows = await self._call(lambda conn: conn.fetch(schema.numbered(sql), *params))
        return [json.loads(r[0]) for r in rows]

    async def claim_doc(
        self, kind: str, id: str, body: dict[str, Any], *, until: float, at: float
    ) -> bool:
        params = (kind, id, None, until, json.dumps(body, default=repr), at)
        sql = schema.numbered(schema.CLAIM_DOC)
        status = await self._call(lambda conn: conn.execute(sql, *params))
        return bool(int(status.rsplit(" ", 1)[-1]))

    async def renew_doc(self, kind: str, id: str, body: dict[str, Any], *, until: float) -> bool:
        params = (until, kind, id, json.dumps(body, default=repr))
        sql = schema.numbered(schema.RENEW_DOC)
        status = await self._call(lambda conn: conn.execute(sql, *params))
        return bool(int(status.rsplit(" ", 1)[-1]))

    async def delete_docs(self, kind: str, *, before: float, key: str | None = None) -> int:
        sql, params = schema.DELETE_DOCS, [kind, before]
        if key is not None:
            sql, params = sql + " AND key = ?", [*params, key]
        status = await self._call(lambda conn: conn.execute(schema.numbered(sql), *params))
        return int(status.rsplit(" ", 1)[-1])

    async def trim(self, before: float, *, batch: int = 1000) -> int:
        statements = (
            (
                "DELETE FROM rk_entries WHERE id IN"
                " (SELECT id FROM rk_entries WHERE ts < $1 LIMIT $2)",
                before,
            ),
            (
                "DELETE FROM rk_buckets WHERE ctid IN"
                " (SELECT ctid FROM rk_buckets WHERE minute < $1 LIMIT $2)",
                int(before // 60),
            ),
        )
        total = 0
        for sql, bound in statements:
            while True:
                status = await self._call(lambda conn, s=sql, b=bound: conn.execute(s, b, batch))
                deleted = int(status.rsplit(" ", 1)[-1])
                total += deleted
                if deleted < batch:
                    break
        return total
