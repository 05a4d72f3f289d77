"""The dashboard's traffic recorder: per-minute cells, bounded by method, and a flusher that
outlives a long store outage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import time_machine

from readykit.dashboard.traffic import TRAFFIC, Traffic
from readykit.record import RequestRecord
from readykit.records import StoreUnavailable
from readykit.records.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

START = 1_800_000_000.0


class Outage(SQLiteStore):
    """A real SQLite store whose documents can be made unreachable."""

    down = False

    async def put_doc(self, kind: str, id: str, body: dict[str, Any], **kw: Any) -> None:
        if self.down:
            raise StoreUnavailable("switched off")
        await super().put_doc(kind, id, body, **kw)


def served(method: str, at: float) -> RequestRecord:
    return RequestRecord("r", method, "/quotes", "/quotes", 200, at, 0.002, 0, 2, None, None,
                         "http", None)  # fmt: skip


async def test_a_store_out_for_over_an_hour_does_not_stop_the_flusher(tmp_path: Path) -> None:
    store = Outage(f"sqlite:///{tmp_path}/r.db")
    await store.open()
    traffic = Traffic(store)
    try:
        with time_machine.travel(START, tick=False) as clock:
            traffic(served("GET", START))
            store.down = True
            await traffic.flush()  # kept for the next flush
            clock.shift(62 * 60)  # the minute is now older than the hour kept
            await traffic.flush()  # raised KeyError here, and the flusher task died
            store.down = False
            traffic(served("GET", START + 62 * 60))
            await traffic.flush()
        docs = await store.docs(TRAFFIC)
        assert [doc["minute"] for doc in docs] == [int(START // 60) + 62]
    finally:
        await store.close()


async def test_made_up_methods_share_one_cell(tmp_path: Path) -> None:
    store = Outage(f"sqlite:///{tmp_path}/r.db")
    await store.open()
    traffic = Traffic(store)
    try:
        for n in range(50):
            traffic(served(f"MADEUP{n}", START))
        traffic(served("GET", START))
        await traffic.flush()
        routes = sorted(doc["route"] for doc in await store.docs(TRAFFIC))
        assert routes == ["GET /quotes", "_OTHER /quotes"]
    finally:
        await store.close()
