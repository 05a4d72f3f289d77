"""A store that hangs (a frozen PostgreSQL, a stuck disk) neither holds durable callers forever
nor hangs the shutdown: the writer spills past its statement timeout, and the dashboard's last
traffic flush gives up after its bound."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from readykit.dashboard.traffic import Traffic
from readykit.record import RequestRecord
from readykit.records import ChainKey, store_from_url
from readykit.records.batch import BatchMetrics, BatchWriter

pytestmark = pytest.mark.anyio


def _server_pids(data: Path) -> list[int]:
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
    ).stdout.split()
    return [postmaster, *map(int, children)]


async def test_a_frozen_postgres_makes_durable_events_spill_not_wait_forever(
    own_postgres: Any, tmp_path: Path, audit_key: ChainKey
) -> None:
    store = store_from_url(own_postgres.url, audit_key=audit_key)
    await store.open()
    spill = tmp_path / "spill.jsonl"
    writer = BatchWriter(store, BatchMetrics(CollectorRegistry()), spill_path=spill)
    event = {"id": "e1", "kind": "audit", "ts": 1_800_000_000.0, "action": "POST /quotes"}
    await writer.put_durable({**event, "id": "e0"})  # the writing connection is open
    pids = _server_pids(own_postgres.data)
    for pid in pids:  # SIGSTOP: the server accepts bytes and never answers
        os.kill(pid, signal.SIGSTOP)
    try:
        # the guard is only against a hang of the test run, not a measure of anything
        await asyncio.wait_for(writer.put_durable(event), 120)
        assert b'"id": "e1"' in spill.read_bytes()  # durable: on disk, in the spill file
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        await writer.stop()
        await store.close()


class _Hung:
    """A store whose document writes never return."""

    async def put_doc(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.Event().wait()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


async def test_the_last_traffic_flush_cannot_hang_the_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    traffic = Traffic(_Hung(), stop_timeout_s=0.01)  # type: ignore[arg-type]
    traffic.start()
    traffic(RequestRecord("r1", "GET", "/x", "/x", 200, 1_800_000_000.0, 0.001, 0, 2, None,
                          None, "http", None))  # fmt: skip
    with caplog.at_level(logging.WARNING, "readykit.dashboard"):
        await traffic.stop()
    assert "last minute's traffic is not saved" in caplog.text
