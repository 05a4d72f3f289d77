"""A PostgreSQL server the test owns is stopped mid-run and started again: 0 lost, 0 twice."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from readykit.records import store_from_url, verify_chain
from readykit.records.batch import BatchMetrics, BatchWriter
from readykit.serve import free_port
from readykit.testing import FakeClock
from support import need

pytestmark = pytest.mark.anyio


class OwnPostgres:
    """initdb + pg_ctl on a free port, run as the `postgres` user when we are root."""

    def __init__(self, bin_dir: Path, data: Path, port: int) -> None:
        self.bin_dir, self.data, self.port = bin_dir, data, port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=60)

    def initdb(self) -> None:
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.data / "log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        need("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        need("running as root without runuser: initdb refuses root")
    # not under pytest's tmp dirs: they are private to root, and initdb must run as postgres
    base = Path(tempfile.mkdtemp(prefix="readykit-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    server = OwnPostgres(versions[-1].parent, data, free_port())
    server.initdb()
    server.start()
    try:
        yield server
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(server.bin_dir / "pg_ctl"),
                        "-D", str(data), "-m", "immediate", "stop"] if os.geteuid() == 0 else
                       [str(server.bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, check=False, timeout=60)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def event(n: int) -> dict[str, Any]:
    return {"id": f"e{n:05d}", "kind": "audit", "ts": 1_800_000_000.0 + n, "action": "x"}


async def test_postgres_stopped_mid_run_loses_nothing(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    store = store_from_url(own_postgres.url)
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
    assert verify_chain(rows) is None
    assert registry.get_sample_value("readykit_records_spilled_total") >= 120
