"""BatchWriter: batches by count, drains at stop, spills when the store is down, replays in
order with nothing lost and nothing duplicated, durable writes wait for the commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from readykit.records import Store, StoreUnavailable
from readykit.records.batch import BatchMetrics, BatchWriter
from readykit.testing import FakeClock
from support import eventually

pytestmark = pytest.mark.anyio


class Switchable(Store):
    """A real store behind a switch that makes it unreachable."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.audit_key = inner.audit_key
        self.down = False
        self.batches: list[int] = []

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def write(self, events: Sequence[dict[str, Any]], *, fresh: bool = False) -> int:
        if self.down:
            raise StoreUnavailable("switched off")
        self.batches.append(len(events))
        return await self.inner.write(events, fresh=fresh)

    async def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return await self.inner.audit(**filters)

    async def audit_page(self, after_seq: int, limit: int) -> list[tuple[Any, ...]]:
        return await self.inner.audit_page(after_seq, limit)

    async def entries(self, kind: str, **kw: Any) -> list[dict[str, Any]]:
        return await self.inner.entries(kind, **kw)

    async def buckets(self, kind: str, *, since: float) -> list[dict[str, Any]]:
        return await self.inner.buckets(kind, since=since)

    async def trim(self, before: float, *, batch: int = 1000) -> int:
        return await self.inner.trim(before, batch=batch)

    async def put_doc(self, kind: str, id: str, body: dict[str, Any], **kw: Any) -> None:
        await self.inner.put_doc(kind, id, body, **kw)

    async def get_doc(self, kind: str, id: str) -> dict[str, Any] | None:
        return await self.inner.get_doc(kind, id)

    async def docs(self, kind: str, **kw: Any) -> list[dict[str, Any]]:
        return await self.inner.docs(kind, **kw)


def event(n: int) -> dict[str, Any]:
    return {"id": f"e{n:05d}", "kind": "audit", "ts": 1_800_000_000.0 + n, "action": "x",
            "details": {"n": n}}  # fmt: skip


def make_writer(store: Store, tmp_path: Path, **kw: Any) -> tuple[BatchWriter, CollectorRegistry]:
    registry = CollectorRegistry()
    writer = BatchWriter(store, BatchMetrics(registry), spill_path=tmp_path / "spill.jsonl", **kw)
    return writer, registry


async def test_batches_by_count_and_drains_at_stop(store: Store, tmp_path: Path) -> None:
    switch = Switchable(store)
    writer, registry = make_writer(switch, tmp_path, batch_size=10, interval_s=3600)
    writer.start()
    for n in range(25):
        writer.put(event(n))
    # a full batch wakes the flusher: it writes long before its one-hour timer would
    await eventually(lambda: bool(switch.batches), "a full batch written before the timer")
    await writer.stop()  # drains everything, in batches of at most 10
    assert [e["id"] for e in await store.audit()] == [f"e{n:05d}" for n in range(25)]
    assert max(switch.batches) <= 10
    assert registry.get_sample_value("readykit_records_queue_depth") == 0


async def test_outage_spills_then_replays_in_order_without_loss_or_duplicates(
    store: Store, tmp_path: Path
) -> None:
    switch = Switchable(store)
    clock = FakeClock()
    writer, registry = make_writer(switch, tmp_path, batch_size=4, interval_s=1.0, clock=clock)
    for n in range(6):
        writer.put(event(n))
    await writer.flush()
    switch.down = True
    for n in range(6, 15):
        writer.put(event(n))
    await writer.flush()
    spilled = [json.loads(line)["id"] for line in writer.spill_path.read_text().splitlines()]
    assert spilled == [f"e{n:05d}" for n in range(6, 15)]
    switch.down = False
    writer.put(event(15))
    await writer.flush()  # within the retry pause: still spills, the store is not hammered
    assert writer.spill_path.exists()
    clock.advance(1.5)
    writer.put(event(16))
    await writer.flush()
    assert not writer.spill_path.exists()
    ids = [e["id"] for e in await store.audit()]
    assert ids == [f"e{n:05d}" for n in range(17)]  # in order, none lost, none twice
    assert registry.get_sample_value("readykit_records_spilled_total") == 10
    assert registry.get_sample_value("readykit_records_replayed_total") == 10


async def test_a_replay_cut_short_is_not_duplicated(store: Store, tmp_path: Path) -> None:
    switch = Switchable(store)
    writer, _ = make_writer(switch, tmp_path, batch_size=2)
    # the spill file holds events that partly reached the store before it went down
    await store.write([event(0), event(1)])
    writer.spill_path.write_text("".join(json.dumps(event(n)) + "\n" for n in range(4)))
    await writer.flush()
    assert [e["id"] for e in await store.audit()] == [f"e{n:05d}" for n in range(4)]


async def test_durable_put_returns_after_commit(store: Store, tmp_path: Path) -> None:
    writer, _ = make_writer(store, tmp_path, interval_s=3600)
    writer.start()
    try:
        await asyncio.wait_for(writer.put_durable(event(1)), 10)
        assert [e["id"] for e in await store.audit()] == ["e00001"]
    finally:
        await writer.stop()


async def test_full_queue_spills_or_drops(store: Store, tmp_path: Path) -> None:
    writer, registry = make_writer(store, tmp_path, max_queue=3, full_policy="drop")
    for n in range(5):
        writer.put(event(n))
    assert len(writer) == 3
    assert registry.get_sample_value("readykit_records_dropped_total") == 2
    spilling, _ = make_writer(store, tmp_path, max_queue=3, full_policy="spill")
    for n in range(5):
        spilling.put(event(n))
    await spilling.flush()
    assert len(await store.audit()) == 5


def committed_ids(url: str) -> list[str]:
    """The audit ids another connection sees: only what is committed."""
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.split(":///", 1)[1]) as conn:
            return [r[0] for r in conn.execute("SELECT id FROM rk_audit ORDER BY seq")]
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM rk_audit ORDER BY seq")]


async def test_on_durable_hooks_run_once_their_event_is_committed(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    # one event a batch: each hook runs while the next batch is being written
    writer, _ = make_writer(store, tmp_path, batch_size=1)
    seen: list[tuple[str, list[str]]] = []
    futures = []
    for n in range(4):
        e = event(n)
        futures.append(
            writer.put_committing(e, lambda i=e["id"]: seen.append((i, committed_ids(store_url))))
        )
    await writer.flush()
    await asyncio.gather(*futures)
    ids = [f"e{n:05d}" for n in range(4)]
    assert [i for i, _ in seen] == ids  # each once, in order
    for i, committed in seen:
        assert i in committed


async def test_on_durable_hooks_run_once_their_event_is_spilled(
    store: Store, tmp_path: Path
) -> None:
    switch = Switchable(store)
    switch.down = True
    writer, _ = make_writer(switch, tmp_path)
    spill = tmp_path / "spill.jsonl"
    seen: list[list[str]] = []

    def hook() -> None:
        seen.append([json.loads(line)["id"] for line in spill.read_text().splitlines()])

    durable = writer.put_committing(event(1), hook)
    await writer.flush()
    await durable
    assert seen == [["e00001"]]  # on disk when the hook ran


class Slow(Switchable):
    """A store whose every write takes a second of the fake clock."""

    def __init__(self, inner: Store, clock: FakeClock) -> None:
        super().__init__(inner)
        self.clock = clock

    async def write(self, events: Sequence[dict[str, Any]], *, fresh: bool = False) -> int:
        self.clock.advance(1.0)
        return await super().write(events, fresh=fresh)


async def test_a_queue_that_never_empties_is_still_anchored_every_interval(
    store: Store, tmp_path: Path
) -> None:
    """The audit head is anchored after each flush; under sustained load one flush can run for
    as long as events keep coming, so it anchors as time passes too, not only at its end."""
    clock = FakeClock()
    anchors: list[tuple[float, int]] = []
    slow = Slow(store, clock)

    async def anchor() -> None:
        anchors.append((clock(), len(await store.audit())))

    writer, _ = make_writer(
        slow, tmp_path, batch_size=1, interval_s=2.0, clock=clock, on_flush=anchor
    )
    for n in range(5):
        writer.put(event(n))
    assert await writer.flush() == 5
    # one write a second: anchored after the 2nd and 4th writes while the queue was busy,
    # and at the end of the flush
    assert anchors == [(1002.0, 2), (1004.0, 4), (1005.0, 5)]


class CommitsThenWaits(Switchable):
    """The store commits, and its answer never comes (the flush is then cancelled)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.hang = True
        self.committed = asyncio.Event()

    async def write(self, events: Sequence[dict[str, Any]], *, fresh: bool = False) -> int:
        written = await super().write(events, fresh=fresh)
        if self.hang:
            self.committed.set()
            await asyncio.Event().wait()
        return written


async def test_a_flush_cancelled_midway_writes_its_batch_once_later_and_answers_its_waiters(
    store: Store, tmp_path: Path
) -> None:
    slow = CommitsThenWaits(store)
    writer, _ = make_writer(slow, tmp_path)
    first, second = writer.put_committing(event(1)), writer.put_committing(event(2))
    flushing = asyncio.ensure_future(writer.flush())
    await slow.committed.wait()
    flushing.cancel()  # e.g. a request that flushed itself (no writer task) is cancelled
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert not first.done()
    assert not second.done()
    assert len(writer) == 2  # back in the queue, not lost with the cancelled flush
    slow.hang = False
    await writer.flush()
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert [e["id"] for e in await store.audit()] == ["e00001", "e00002"]  # once each
