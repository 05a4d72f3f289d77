"""The store on SQLite and PostgreSQL: idempotent writes, the audit chain, aggregates, trims."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest

from readykit import ConfigurationError
from readykit.records import ChainKey, Store, StoreUnavailable, store_from_url, verify_chain

pytestmark = pytest.mark.anyio


def audit_event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"a{n:04d}",
        "kind": "audit",
        "ts": 1_800_000_000.0 + n,
        "actor": "user:7",
        "action": "quote.create",
        "resource": f"quote:{n}",
        "status": 201,
        "request_id": f"r{n}",
        "details": {"amount": n, "nested": {"ok": True}},
        **extra,
    }


def apm_event(kind: str, group: str, ts: float, ms: float) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "kind": kind, "ts": ts, "group": group, "duration_ms": ms,
            "data": {"path": "/x"}}  # fmt: skip


async def test_audit_chain_and_idempotent_writes(store: Store, audit_key: ChainKey) -> None:
    first = [audit_event(n) for n in range(5)]
    assert await store.write(first) == 5
    assert await store.write([*first[2:], audit_event(5)]) == 1  # replayed ids are skipped
    events = await store.audit()
    assert [e["id"] for e in events] == [f"a{n:04d}" for n in range(6)]
    assert verify_chain(events, audit_key) is None
    assert store.head is not None
    assert (store.head.seq, store.head.hash) == (6, events[-1]["hash"])
    assert events[0]["details"] == {"amount": 0, "nested": {"ok": True}}
    assert await store.audit(resource="quote:3") == [events[3]]
    assert [e["id"] for e in await store.audit(since=1_800_000_004.0)] == ["a0004", "a0005"]
    assert [e["id"] for e in await store.audit(limit=2, offset=1)] == ["a0001", "a0002"]


async def test_an_edited_or_deleted_row_breaks_the_chain(
    store_url: str, store: Store, audit_key: ChainKey
) -> None:
    await store.write([audit_event(n) for n in range(4)])
    sql = "UPDATE rk_audit SET actor = 'user:8' WHERE id = 'a0002'"
    await _execute(store_url, sql)
    broken = verify_chain(await store.audit(), audit_key)
    assert broken is not None
    assert (broken.seq, broken.id) == (3, "a0002")
    assert broken.reason.startswith("content does not match its MAC")
    await _execute(store_url, "UPDATE rk_audit SET actor = 'user:7' WHERE id = 'a0002'")
    assert verify_chain(await store.audit(), audit_key) is None
    await _execute(store_url, "DELETE FROM rk_audit WHERE id = 'a0001'")
    broken = verify_chain(await store.audit(), audit_key)
    assert broken is not None
    assert (broken.seq, broken.reason) == (2, "seq 2 is missing (deleted)")


async def _execute(url: str, sql: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split(":///", 1)[1]) as conn:
            conn.execute(sql)
        return
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_entries_feed_per_minute_aggregates_and_trim_in_batches(store: Store) -> None:
    t0 = 1_800_000_000.0  # a minute boundary
    events = [
        apm_event("slow_request", "GET /a", t0 + 1, 1200),
        apm_event("slow_request", "GET /a", t0 + 30, 1800),
        apm_event("slow_request", "GET /b", t0 + 61, 1100),
        apm_event("stall", "app.py:3 in handler", t0 + 5, 300),
    ]
    assert await store.write(events) == 4
    assert await store.write(events) == 0
    buckets = await store.buckets("slow_request", since=t0)
    minute = int(t0 // 60)
    assert buckets == [
        {"minute": minute, "group": "GET /a", "count": 2, "sum_ms": 3000.0, "max_ms": 1800.0},
        {"minute": minute + 1, "group": "GET /b", "count": 1, "sum_ms": 1100.0, "max_ms": 1100.0},
    ]
    newest = await store.entries("slow_request", limit=1)
    assert newest[0]["group"] == "GET /b"
    assert newest[0]["data"] == {"path": "/x"}
    assert len(await store.entries("stall")) == 1
    assert await store.trim(t0 + 60, batch=1) == 5  # 3 entries and 2 buckets, a row at a time
    assert [e["group"] for e in await store.entries("slow_request")] == ["GET /b"]


async def test_schema_is_migrated_once(store_url: str, audit_key: ChainKey) -> None:
    for _ in range(2):  # a second open finds the schema current and changes nothing
        s = store_from_url(store_url, audit_key=audit_key)
        await s.open()
        await s.write([audit_event(1)])
        await s.close()
    s = store_from_url(store_url)
    await s.open()
    try:
        assert len(await s.audit()) == 1
    finally:
        await s.close()


def test_unknown_scheme_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="store_url: unknown scheme 'mongodb'"):
        store_from_url("mongodb://x")


async def test_documents(store: Store) -> None:
    await store.put_doc("job", "j1", {"state": "queued"}, key="s1", ts=10.0)
    await store.put_doc("job", "j2", {"state": "queued"}, key="s2", ts=11.0)
    await store.put_doc("job", "j1", {"state": "done"}, key="s1", ts=12.0)
    assert await store.get_doc("job", "j1") == {"state": "done"}
    assert await store.get_doc("job", "nope") is None
    assert await store.docs("job", key="s1") == [{"state": "done"}]
    assert await store.docs("job", since=11.5) == [{"state": "done"}]
    assert len(await store.docs("job")) == 2


def _open_sqlite(path: str, start: Any) -> str:
    """In a process of its own: wait for the others, then open (and migrate) the store."""
    import asyncio

    start.wait()
    store = store_from_url(f"sqlite:///{path}")

    async def run() -> None:
        await store.open()
        await store.close()

    try:
        asyncio.run(run())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def test_processes_opening_a_new_file_together_migrate_it_once(tmp_path: Any) -> None:
    """The workers of one server open the same SQLite file at the same moment: every one
    starts, and the schema is at the current version once (a version read outside the write
    lock let two workers apply the same migration: 'duplicate column name'; the switch to WAL
    mode answered the losers of the race 'database is locked' without waiting)."""
    import multiprocessing

    from readykit.records import schema

    context = multiprocessing.get_context("spawn")  # real, separate processes
    workers, rounds = 6, 8  # a new file each round: the race is lost only now and then
    paths = [str(tmp_path / f"records-{n}.db") for n in range(rounds)]
    with context.Manager() as manager, context.Pool(workers) as pool:
        outcomes = [
            pool.starmap(_open_sqlite, [(path, manager.Barrier(workers))] * workers)
            for path in paths
        ]
    assert outcomes == [["ok"] * workers] * rounds
    for path in paths:
        conn = sqlite3.connect(path)
        try:
            (version,) = conn.execute(
                "SELECT value FROM rk_meta WHERE key = 'schema_version'"
            ).fetchone()
            columns = [row[1] for row in conn.execute("PRAGMA table_info(rk_audit)")]
        finally:
            conn.close()
        assert int(version) == schema.VERSION
        assert columns.count("key_id") == 1


async def test_a_closed_store_refuses_writes_instead_of_reconnecting(
    store_url: str, audit_key: ChainKey
) -> None:
    """A late write after shutdown (a request completing as the kit closes) must not open a
    connection that nothing will close: the store says it is unavailable (the writer spills)."""
    store = store_from_url(store_url, audit_key=audit_key)
    await store.open()
    await store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.write([{"id": "late", "kind": "audit", "ts": 1.0, "action": "x"}], fresh=True)
    await store.open()  # opened again, it works again
    try:
        await store.write([{"id": "again", "kind": "audit", "ts": 1.0, "action": "x"}], fresh=True)
        assert [e["id"] for e in await store.audit()] == ["again"]
    finally:
        await store.close()
