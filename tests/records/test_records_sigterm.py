"""SIGTERM to a real uvicorn under concurrent POSTs: every 2xx the clients got is audited."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from readykit.records import ChainKey, store_from_url, verify_chain
from readykit.serve import serve

APPS = Path(__file__).parents[1] / "apps"
SECRET = "test-audit-key-0123456789"


def post(url: str) -> int:
    request = urllib.request.Request(url, data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # refused or cut: the server is going away


def test_sigterm_under_load_loses_no_audit_row(store_url: str, tmp_path: Path) -> None:
    env = {
        "READYKIT_STORE_URL": store_url,
        "READYKIT_SPILL_PATH": str(tmp_path / "spill.jsonl"),
        "READYKIT_AUDIT_KEY": SECRET,
        "READYKIT_RECORDS_FLUSH_S": "5",  # nothing is flushed by the timer: shutdown must drain
        "READYKIT_LOG_LEVEL": "warning",
        "READYKIT_RATE_LIMITS": "{}",
    }
    argv = [sys.executable, "-m", "uvicorn", "--port", "{port}", "--app-dir", str(APPS),
            "records_app:app"]  # fmt: skip
    statuses: list[int] = []
    lock = threading.Lock()
    with serve(argv, env=env) as server:
        url = f"{server.url}/quotes"
        stop = threading.Event()
        enough = threading.Event()  # 200 created: time to ask the server to stop

        def client() -> None:
            while not stop.is_set():
                status = post(url)
                with lock:
                    statuses.append(status)
                    if sum(s == 201 for s in statuses) >= 200:
                        enough.set()
                if status == 0:
                    return

        with ThreadPoolExecutor(8) as pool:
            for _ in range(8):
                pool.submit(client)
            if not enough.wait(120):  # a bound against hanging, not a speed
                stop.set()
                pytest.fail(f"only {statuses.count(201)} requests created", pytrace=False)
            server.process.send_signal(signal.SIGTERM)
            # uvicorn drains, runs the lifespan shutdown, then re-raises the signal
            assert server.process.wait(30) in (0, -signal.SIGTERM)
            assert "Finished server process" in server.output()
            stop.set()
    created = sum(s == 201 for s in statuses)
    assert created >= 200

    async def audited() -> list[dict[str, object]]:
        store = store_from_url(store_url)
        await store.open()
        try:
            return await store.audit(action="POST /quotes")
        finally:
            await store.close()

    rows = asyncio.run(audited())
    assert sum(1 for r in rows if r["status"] == 201) == created
    assert verify_chain(rows, ChainKey.from_secret(SECRET)) is None
