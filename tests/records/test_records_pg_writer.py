"""The PostgreSQL store's commit path: a batch of fresh audit events goes in as one statement
chained after the head this store wrote last; when another writer moved the head (another
instance, or rows removed) the statement inserts nothing or fails on the sequence number and
the batch is written under the chain lock after the head read back. The chain never forks,
has no gap and loses no event; a writing connection the server dropped is replaced."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import asyncpg
import pytest

from readykit.records import ChainKey, Store, StoreUnavailable, verify_chain
from readykit.records.postgres import CONTENDED_S
from readykit.testing import FakeClock
from support import opened

pytestmark = pytest.mark.anyio


def audit(prefix: str, n: int) -> dict[str, Any]:
    return {"id": f"{prefix}{n:05d}", "kind": "audit", "ts": 1_800_000_000.0 + n,
            "actor": f"user:{prefix}", "action": "quote.create", "resource": f"quote:{n}",
            "status": 201, "request_id": None, "details": {"n": n}}  # fmt: skip


async def as_admin(url: str, sql: str) -> None:
    """`sql` on a connection of its own, as an operator or another process would."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def check_chain(store: Store, key: ChainKey, ids: list[str]) -> None:
    stored = await store.audit()
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))  # no gap, no fork
    assert sorted(e["id"] for e in stored) == sorted(ids)  # every event, once
    assert verify_chain(stored, key) is None


async def test_two_instances_taking_turns_keep_one_chain(
    postgres_url: str, audit_key: ChainKey
) -> None:
    async with opened(postgres_url, audit_key) as a, opened(postgres_url, audit_key) as b:
        ids: list[str] = []
        for turn in range(6):
            for prefix, store in (("a", a), ("b", b)):
                batch = [audit(prefix, turn * 10 + n) for n in range(3)]
                assert await store.write(batch, fresh=True) == 3
                ids += [e["id"] for e in batch]
        await check_chain(a, audit_key, ids)
        assert b.head is not None
        assert b.head.seq == len(ids)  # the last writer knows the head


async def test_two_instances_writing_at_once_keep_one_chain(
    postgres_url: str, audit_key: ChainKey
) -> None:
    async with opened(postgres_url, audit_key) as a, opened(postgres_url, audit_key) as b:
        await a.write([audit("a", 0)], fresh=True)  # both now hold a head: the fast path
        await b.write([audit("b", 0)], fresh=True)

        async def writer(prefix: str, store: Store) -> list[str]:
            ids = []
            for n in range(1, 31):
                batch = [audit(prefix, n * 10 + k) for k in range(n % 4 + 1)]
                assert await store.write(batch, fresh=True) == len(batch)
                ids += [e["id"] for e in batch]
            return ids

        written = await asyncio.gather(writer("a", a), writer("b", b))
        await check_chain(a, audit_key, ["a00000", "b00000", *written[0], *written[1]])


async def test_a_removed_tail_is_not_hidden_behind_a_gap(
    postgres_url: str, audit_key: ChainKey
) -> None:
    async with opened(postgres_url, audit_key) as store:
        await store.write([audit("a", n) for n in range(5)], fresh=True)
        await as_admin(postgres_url, "DELETE FROM rk_audit WHERE seq > 3")
        await store.write([audit("a", 9)], fresh=True)
        stored = await store.audit()
        # chained after the row that is there, as the locked path always did: the cut tail
        # is for the anchors to report, not a gap that the cached head would have made
        assert [(e["seq"], e["id"]) for e in stored][-2:] == [(3, "a00002"), (4, "a00009")]
        assert verify_chain(stored, audit_key) is None


async def test_a_dropped_writing_connection_fails_one_write_and_is_replaced(
    postgres_url: str, audit_key: ChainKey
) -> None:
    async with opened(postgres_url, audit_key) as store:
        await store.write([audit("a", 0)], fresh=True)
        await as_admin(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        # a new connection if the drop was seen in time, else the batch is refused (the
        # writer spills it and replays it, not fresh, once the store answers)
        with contextlib.suppress(StoreUnavailable):
            await store.write([audit("a", 1)], fresh=True)
        assert await store.write([audit("a", 1), audit("a", 2)]) >= 1
        assert await store.write([audit("a", 3)], fresh=True) == 1
        await check_chain(store, audit_key, ["a00000", "a00001", "a00002", "a00003"])


async def test_a_mixed_or_replayed_batch_takes_the_locked_path_and_skips_stored_ids(
    postgres_url: str, audit_key: ChainKey
) -> None:
    async with opened(postgres_url, audit_key) as store:
        await store.write([audit("a", 0), audit("a", 1)], fresh=True)
        apm = {"id": "s1", "kind": "slow_request", "ts": 1_800_000_000.0, "group": "GET /",
               "duration_ms": 900.0, "data": {}}  # fmt: skip
        # a replay (not fresh): the stored id is skipped, the new ones are chained after it
        assert await store.write([audit("a", 1), audit("a", 2), apm]) == 2
        await check_chain(store, audit_key, ["a00000", "a00001", "a00002"])
        assert [e["id"] for e in await store.entries("slow_request")] == ["s1"]


def counted(store: Store) -> Counter[str]:
    """How `store` writes: one-statement appends that landed or missed, locked writes."""
    calls: Counter[str] = Counter()
    append, locked = store._append, store._write_locked  # type: ignore[attr-defined]

    async def counting_append(*args: Any) -> int | None:
        written = await append(*args)
        calls["missed" if written is None else "appended"] += 1
        return written  # type: ignore[no-any-return]

    async def counting_locked(*args: Any, **kw: Any) -> int:
        calls["locked"] += 1
        return await locked(*args, **kw)  # type: ignore[no-any-return]

    store._append = counting_append  # type: ignore[attr-defined]
    store._write_locked = counting_locked  # type: ignore[attr-defined]
    return calls


async def test_one_writer_appends_in_one_statement_and_writers_in_turn_stop_missing(
    postgres_url: str, audit_key: ChainKey
) -> None:
    clock = FakeClock()
    async with opened(postgres_url, audit_key) as a, opened(postgres_url, audit_key) as b:
        a.clock = b.clock = clock  # type: ignore[attr-defined]
        calls_a, calls_b = counted(a), counted(b)
        for n in range(10):  # one writer: after the first (locked: no head yet), one statement
            await a.write([audit("a", n)], fresh=True)
        assert calls_a == {"locked": 1, "appended": 9}
        calls_a.clear()
        for n in range(10):  # two writers in turn (two workers): each misses once, then
            await b.write([audit("b", n)], fresh=True)  # goes straight to the locked path
            await a.write([audit("a", 100 + n)], fresh=True)
        assert calls_a == {"missed": 1, "locked": 10}
        assert calls_b == {"missed": 1, "locked": 10}  # its first: no head of its own yet
        clock.advance(CONTENDED_S)  # a while later the one-statement append is tried again
        await a.write([audit("a", 999)], fresh=True)
        assert calls_a["appended"] == 1
        ids = [f"a{n:05d}" for n in (*range(10), *range(100, 110), 999)]
        await check_chain(a, audit_key, [*ids, *(f"b{n:05d}" for n in range(10))])
