"""Store fixtures: every store test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from readykit.records import ChainKey, Store
from readykit.serve import free_port
from support import need, opened


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/records.db"
    return str(request.getfixturevalue("postgres_url"))


AUDIT_SECRET = "test-audit-key-0123456789"


@pytest.fixture
def audit_key() -> ChainKey:
    """The key the `store` fixture chains audit events with (READYKIT_AUDIT_KEY=AUDIT_SECRET)."""
    return ChainKey.from_secret(AUDIT_SECRET)


@pytest.fixture
async def store(store_url: str, audit_key: ChainKey) -> AsyncIterator[Store]:
    async with opened(store_url, audit_key) as s:
        yield s


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


# the audit key of the `state` fixture's kit
SECRET = "test-audit-key-0123456789"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kit's settings (SQLite store, key, spill path) in the environment; its state dir."""
    monkeypatch.setenv("READYKIT_AUDIT_KEY", SECRET)
    monkeypatch.setenv("READYKIT_SPILL_PATH", str(tmp_path / "state" / "spill.jsonl"))
    monkeypatch.setenv("READYKIT_STORE_URL", f"sqlite:///{tmp_path}/records.db")
    return tmp_path / "state"
