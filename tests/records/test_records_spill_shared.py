"""The spill file against what real deployments do to it: a crash leaves a torn last line and the
next process appends after it; the workers of one server share one file and replay it while
another still appends; the path is a directory; the store stays down while a corrupt line
waits. An acknowledged durable event is never lost, and the writer never wedges."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import readykit.records.batch as batch
from readykit.records import ChainKey, RecordsUnavailable, Store, store_from_url
from readykit.records.batch import BatchMetrics, BatchWriter, Position
from readykit.records.store import StoreUnavailable

pytestmark = pytest.mark.anyio


def event(name: str) -> dict[str, Any]:
    return {"id": name, "kind": "audit", "ts": 1_800_000_000.0, "action": "POST /quotes"}


class Switchable:
    """A real store that this worker sees as down while `down` is set."""

    def __init__(self, inner: Store) -> None:
        self.inner, self.down = inner, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def write(self, events: Any, *, fresh: bool = False) -> int:
        if self.down:
            raise StoreUnavailable("connection refused")
        return await self.inner.write(events, fresh=fresh)


def writer(store: Any, spill: Path, clock: list[float]) -> tuple[BatchWriter, CollectorRegistry]:
    registry = CollectorRegistry()
    w = BatchWriter(store, BatchMetrics(registry), spill_path=spill, clock=lambda: clock[0])
    return w, registry


async def ids(store: Store) -> list[str]:
    return [e["id"] for e in await store.audit()]


async def test_an_event_appended_after_a_torn_line_is_not_glued_to_it(
    store: Store, tmp_path: Path
) -> None:
    """A crash mid-append left half a line; the next process spills an acknowledged event
    while the store is still down: the event gets a line of its own and is stored later."""
    spill = tmp_path / "spill.jsonl"
    spill.write_bytes(json.dumps(event("old-1")).encode() + b'\n{"id": "old-2", "ki')
    down = Switchable(store)
    clock = [0.0]
    w, _ = writer(down, spill, clock)
    await w.put_durable(event("acked-1"))  # spilled: on disk, acknowledged
    down.down = False
    clock[0] += 2.0  # past the back-off
    await w.flush()
    assert await ids(store) == ["old-1", "acked-1"]
    assert w.quarantine_path.read_bytes() == b'{"id": "old-2", "ki\n'
    assert not spill.exists()


async def test_a_worker_never_deletes_a_line_another_appended_after_its_last_read(
    store_url: str, audit_key: ChainKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers share the spill file. A replays it; between A's last read and the moment
    it would delete the file, B (still backing off) spills an acknowledged event."""
    spill = tmp_path / "spill.jsonl"
    a_store = Switchable(store_from_url(store_url, audit_key=audit_key))
    b_store = Switchable(store_from_url(store_url, audit_key=audit_key))
    await a_store.inner.open()
    await b_store.inner.open()
    a_clock, b_clock = [100.0], [100.0]
    a, _ = writer(a_store, spill, a_clock)
    b, _ = writer(b_store, spill, b_clock)
    try:
        await a.put_durable(event("a-1"))
        await b.put_durable(event("b-1"))
        a_store.down = b_store.down = False
        a_clock[0] += 1.5  # A's back-off is over: it replays
        b_clock[0] += 0.5  # B's is not: it still spills
        read = batch._read_spill
        at_end, b_appended = threading.Event(), threading.Event()

        def last_read(path: Path, at: Position | None, n: int) -> Any:
            out = read(path, at, n)
            if at is not None and out[2] == at:  # nothing more: the next step deletes
                at_end.set()
                b_appended.wait(10)
            return out

        monkeypatch.setattr(batch, "_read_spill", last_read)
        a_flush = asyncio.ensure_future(a.flush())
        assert await asyncio.to_thread(at_end.wait, 10)
        monkeypatch.setattr(batch, "_read_spill", read)
        await b.put_durable(event("b-2"))  # spilled and fsynced: B answers its client
        b_appended.set()
        await a_flush
        assert sorted(await ids(a_store.inner)) == ["a-1", "b-1", "b-2"]
        assert not spill.exists()
    finally:
        await a_store.inner.close()
        await b_store.inner.close()


async def test_a_spill_path_that_is_a_directory_fails_readiness_and_wedges_nothing(
    store: Store, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    spill.mkdir()
    w, _ = writer(store, spill, [0.0])
    await w.flush()  # the durable caller below is answered by this writer's next flush
    w.put(event("e1"))
    await w.flush()
    assert await ids(store) == ["e1"]
    with pytest.raises(RecordsUnavailable, match=r"cannot read the spill file .*spill\.jsonl"):
        w.check_spill()
    await w.stop()


async def test_a_corrupt_line_is_quarantined_once_however_long_the_store_is_down(
    store: Store, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    spill.write_bytes(json.dumps(event("e1")).encode() + b"\n{not json}\n")
    down = Switchable(store)
    clock = [0.0]
    w, registry = writer(down, spill, clock)
    for _ in range(5):  # five retries through an outage
        clock[0] += 2.0
        await w.flush()
    down.down = False
    clock[0] += 2.0
    await w.flush()
    assert await ids(store) == ["e1"]
    assert w.quarantine_path.read_bytes() == b"{not json}\n"
    assert registry.get_sample_value("readykit_records_quarantined_total") == 1
