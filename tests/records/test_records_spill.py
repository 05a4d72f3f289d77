"""The spill file never wedges the writer: a torn line is quarantined while the rest replays; a
full or read-only disk fails readiness, counts every dropped event and fails durable callers at
once; a store that hangs cannot hang the shutdown."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from readykit import ReadyKit, Settings
from readykit.records import ChainKey, RecordsUnavailable, Store, store_from_url
from readykit.records.batch import BatchMetrics, BatchWriter
from readykit.testing import asgi_request
from support import need

pytestmark = pytest.mark.anyio


def event(n: int, pad: int = 0) -> dict[str, Any]:
    return {"id": f"e{n:05d}", "kind": "audit", "ts": 1_800_000_000.0 + n, "action": "x",
            "details": {"n": n, "pad": "p" * pad}}  # fmt: skip


def make_writer(store: Store, spill: Path, **kw: Any) -> tuple[BatchWriter, CollectorRegistry]:
    registry = CollectorRegistry()
    return BatchWriter(store, BatchMetrics(registry), spill_path=spill, **kw), registry


async def test_a_torn_spill_line_is_quarantined_and_the_rest_replays(
    store: Store, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    good = [json.dumps(event(n)) for n in range(5)]
    # a crash mid-write leaves a torn last line; a stray middle line is corrupt too
    spill.write_text("\n".join([*good[:2], "{not json", *good[2:]]) + '\n{"id": "e00005", "ki')
    writer, registry = make_writer(store, spill, batch_size=2)
    await writer.flush()
    assert [e["id"] for e in await store.audit()] == [f"e{n:05d}" for n in range(5)]
    assert not spill.exists()
    assert writer.quarantine_path.read_text().splitlines() == ["{not json", '{"id": "e00005", "ki']
    assert registry.get_sample_value("readykit_records_quarantined_total") == 2
    assert registry.get_sample_value("readykit_records_replayed_total") == 5
    with pytest.raises(RecordsUnavailable, match=r"2 corrupt spill lines in .*quarantine"):
        writer.check_quarantine()
    writer.put(event(6))  # not wedged: later events are written
    await writer.flush()
    assert [e["id"] for e in await store.audit()][-1] == "e00006"


async def test_a_line_nested_deeper_than_json_reads_is_quarantined_too(
    store: Store, tmp_path: Path
) -> None:
    """`json.loads` raises RecursionError (not a ValueError) on 100,000 `[`: the writer retried
    the same line at every flush, so no event was stored again and durable callers hung."""
    spill = tmp_path / "spill.jsonl"
    spill.write_text("\n".join([json.dumps(event(1)), "[" * 100_000, json.dumps(event(2))]) + "\n")
    writer, registry = make_writer(store, spill)
    await writer.flush()
    assert [e["id"] for e in await store.audit()] == ["e00001", "e00002"]
    assert registry.get_sample_value("readykit_records_quarantined_total") == 1
    writer.put(event(3))
    await writer.flush()
    assert [e["id"] for e in await store.audit()][-1] == "e00003"


async def test_a_torn_spill_line_shows_as_a_health_warning(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    spill.write_text(json.dumps(event(1)) + '\n{"id": "e2", "kind": "au')
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            ops_trust_loopback=True,  # the test reads health details and /ops from loopback
            access_log=False,
            store_url=f"sqlite:///{tmp_path}/records.db",
            spill_path=str(spill),
        )
    )
    app = kit.wrap(lambda scope, receive, send: None)  # type: ignore[arg-type,return-value]
    await kit.startup()
    try:
        assert kit.records is not None
        await kit.records.writer.flush()
        response = await asgi_request(app, "GET", "/health")
        body = json.loads(response.body)
        assert response.status == 200
        assert body["status"] == "warn"  # the check fails, but it is not critical
        (check,) = body["checks"]["records-quarantine:responseTime"]
        assert "1 corrupt spill lines" in check["output"]
    finally:
        await kit.shutdown()


@pytest.fixture(params=["full", "read-only"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (full after a few batches), or one mounted read-only."""
    disk = tmp_path / "disk"
    disk.mkdir()
    options = "size=64k" + (",ro" if request.param == "read-only" else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        need(f"cannot mount a tmpfs for the full-disk test: {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)


async def test_a_full_or_read_only_disk_fails_readiness_and_counts_every_drop(
    small_disk: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the store's directory should be: the store is down")
    spill = small_disk / "spill.jsonl"
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            ops_trust_loopback=True,  # the test reads health details and /ops from loopback
            access_log=False,
            store_url=f"sqlite:///{blocked}/r.db",
            store_required=False,
            spill_path=str(spill),
            audit_key="test-audit-key-0123456789",  # the key file cannot live on that disk
        )
    )
    app = kit.wrap(lambda scope, receive, send: None)  # type: ignore[arg-type,return-value]
    assert kit.records is not None
    writer = kit.records.writer
    registry = kit.metrics.registry
    await kit.startup()
    try:
        total = 0
        while writer.spill_error is None:  # 4 KiB batches until the disk refuses one
            for _ in range(4):
                writer.put(event(total, pad=1000))
                total += 1
            await writer.flush()
        lines = spill.read_text().splitlines() if spill.exists() else []
        assert all(json.loads(line)["kind"] == "audit" for line in lines)  # no torn line left
        spilled = registry.get_sample_value("readykit_records_spilled_total") or 0
        dropped = registry.get_sample_value("readykit_records_dropped_total")
        assert len(lines) == spilled
        assert spilled + dropped == total  # every event is either on disk or counted as lost

        assert (await asgi_request(app, "GET", "/health/ready")).status == 503
        response = await asgi_request(app, "GET", "/health")
        assert response.status == 503
        (check,) = json.loads(response.body)["checks"]["records-spill:responseTime"]
        assert str(spill) in check["output"]
        assert any(f"errno {n}" in check["output"] for n in (28, 30))  # ENOSPC, EROFS

        with pytest.raises(RecordsUnavailable, match="store is unreachable and cannot write"):
            await kit.audit.record("x.durable", durable=True)  # fails at once, queues nothing
        assert len(writer) == 0
        assert registry.get_sample_value("readykit_records_dropped_total") == dropped + 1
    finally:
        await kit.shutdown()


async def test_a_hung_store_cannot_hang_the_shutdown(
    postgres_url: str, tmp_path: Path, audit_key: ChainKey
) -> None:
    import asyncpg

    store = store_from_url(postgres_url, audit_key=audit_key)
    await store.open()
    # another session holds the chain's lock: every write blocks, for as long as it holds it
    holder = await asyncpg.connect(postgres_url)
    await holder.execute("BEGIN")
    await holder.execute("SELECT pg_advisory_xact_lock($1)", 0x5EAD_1C17)
    spill = tmp_path / "spill.jsonl"
    writer, _ = make_writer(store, spill, stop_timeout_s=0.5)
    writer.start()
    for n in range(10):
        writer.put(event(n))
    await writer.stop()  # returns although the write it started never finishes
    assert [json.loads(line)["id"] for line in spill.read_text().splitlines()] == [
        f"e{n:05d}" for n in range(10)
    ]
    await holder.close()  # the stuck write now goes through; the replay must not duplicate it
    again, _ = make_writer(store, spill)
    await again.flush()
    try:
        assert [e["id"] for e in await store.audit()] == [f"e{n:05d}" for n in range(10)]
    finally:
        await asyncio.wait_for(store.close(), 30)
