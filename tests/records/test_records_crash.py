"""`kill -9` of a real uvicorn under concurrent POSTs: every POST whose 201 reached the client has
its audit row after a restart (SQLite, PostgreSQL, and PostgreSQL stopped mid-run: the spill)."""

from __future__ import annotations

import asyncio
import http.client
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from readykit.records import ChainKey, store_from_url, verify_chain
from readykit.serve import ServerProcess, serve

APPS = Path(__file__).parents[1] / "apps"
SECRET = "test-audit-key-0123456789"
ARGV = [sys.executable, "-m", "uvicorn", "--port", "{port}", "--app-dir", str(APPS),
        "records_app:app"]  # fmt: skip
CLIENTS = 8


def post(url: str, request_id: str) -> bool:
    """True only if the whole 201 response arrived: the client saw the mutation succeed."""
    request = urllib.request.Request(
        url, data=b"{}", method="POST", headers={"X-Request-Id": request_id}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status == 201 and resp.read() == b'{"ok":true}'
    except (OSError, http.client.HTTPException):
        return False  # refused, cut, or an incomplete body: not acknowledged


def env_for(store_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "READYKIT_STORE_URL": store_url,
        "READYKIT_SPILL_PATH": str(tmp_path / "spill.jsonl"),
        "READYKIT_AUDIT_KEY": SECRET,
        "READYKIT_RECORDS_FLUSH_S": "30",  # the timer never flushes: only the commit path does
        "READYKIT_LOG_LEVEL": "warning",
        "READYKIT_RATE_LIMITS": "{}",
    }


def hammer(server: ServerProcess, until: Callable[[int], bool]) -> set[str]:
    """POST from CLIENTS threads until `until(acknowledged)` says stop; acknowledged ids."""
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    url = f"{server.url}/quotes"

    def client() -> None:
        while not stop.is_set():
            request_id = uuid.uuid4().hex
            if post(url, request_id):
                with lock:
                    acked.add(request_id)
                    if until(len(acked)):
                        stop.set()
            elif server.process.poll() is not None:
                return

    with ThreadPoolExecutor(CLIENTS) as pool:
        for _ in range(CLIENTS):
            pool.submit(client)
    return acked


def audited(store_url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        store = store_from_url(store_url)
        await store.open()
        try:
            return await store.audit(action="POST /quotes")
        finally:
            await store.close()

    return asyncio.run(read())


def kill_under_load(server: ServerProcess, acks: int) -> set[str]:
    """POSTs until `acks` are acknowledged, then SIGKILL while the clients keep posting."""

    def until(n: int) -> bool:
        if n == acks:
            server.process.kill()
        return False  # keep posting: requests are in flight when the process dies

    acked = hammer(server, until)
    server.process.wait(30)
    return acked


def test_kill_9_under_load_loses_no_acknowledged_audit_row(store_url: str, tmp_path: Path) -> None:
    with serve(ARGV, env=env_for(store_url, tmp_path)) as server:
        acked = kill_under_load(server, 300)
    assert len(acked) >= 300
    rows = audited(store_url)
    missing = acked - {r["request_id"] for r in rows}
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged POSTs have no audit row"
    assert all(r["status"] == 201 for r in rows if r["request_id"] in acked)
    assert verify_chain(rows, ChainKey.from_secret(SECRET)) is None


def test_kill_9_during_a_store_outage_loses_no_acknowledged_audit_row(
    own_postgres: Any, tmp_path: Path
) -> None:
    env = env_for(own_postgres.url, tmp_path)
    spill = tmp_path / "spill.jsonl"
    with serve(ARGV, env=env) as server:
        before = hammer(server, lambda n: n >= 100)
        own_postgres.stop()  # the store goes away mid-run: acknowledged means spilled
        during = kill_under_load(server, 200)
    assert spill.exists()
    own_postgres.start()
    with serve(ARGV, env=env) as server:
        # the restarted server replays the spill at its first flush; a POST wakes the writer
        while spill.exists():
            assert post(f"{server.url}/quotes", uuid.uuid4().hex)
        assert server.stop() in (0, -15)
    rows = audited(own_postgres.url)
    missing = (before | during) - {r["request_id"] for r in rows}
    assert len(during) >= 200
    assert not missing, f"{len(missing)} acknowledged POSTs have no audit row"
    assert verify_chain(rows, ChainKey.from_secret(SECRET)) is None
