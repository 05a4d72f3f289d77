"""A PostgreSQL server the test owns is stopped mid-run and started again: 0 lost, 0 twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from readykit.records import ChainKey, store_from_url, verify_chain
from readykit.records.batch import BatchMetrics, BatchWriter
from readykit.testing import FakeClock

pytestmark = pytest.mark.anyio


def event(n: int) -> dict[str, Any]:
    return {"id": f"e{n:05d}", "kind": "audit", "ts": 1_800_000_000.0 + n, "action": "x"}


async def test_postgres_stopped_mid_run_loses_nothing(
    own_postgres: Any, tmp_path: Path, audit_key: ChainKey
) -> None:
    store = store_from_url(own_postgres.url, audit_key=audit_key)
    await store.open()
    clock = FakeClock()
    registry = CollectorRegistry()
    writer = BatchWriter(
        store, BatchMetrics(registry), spill_path=tmp_path / "spill.jsonl", batch_size=50,
        interval_s=1.0, clock=clock,
    )  # fmt: skip
    n = 0
    try:
        for phase in ("up", "down", "up again"):
            if phase == "down":
                own_postgres.stop()
            elif phase == "up again":
                own_postgres.start()
                clock.advance(2)
            for _ in range(120):
                writer.put(event(n))
                n += 1
                if n % 40 == 0:
                    await writer.flush()
        await writer.stop()
        rows = await store.audit()
    finally:
        await store.close()
    assert [r["id"] for r in rows] == [f"e{i:05d}" for i in range(n)]
    assert verify_chain(rows, audit_key) is None
    assert registry.get_sample_value("readykit_records_spilled_total") >= 120
