"""The dashboard in a real browser (Playwright driving Debian's Chromium) against a real demo
with traffic: login, every page with data, filters, no console errors, refused without token."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from readykit.records import store_from_url
from readykit.serve import ServerProcess, serve
from support import CHROMIUM, playwright

TOKEN = "browser-test-token"
DOCS = Path(__file__).parents[2] / "docs"


def call(url: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ServerProcess]:
    store_url = f"sqlite:///{tmp_path}/records.db"
    env = {
        "READYKIT_STORE_URL": store_url,
        "READYKIT_OPS_TOKEN": TOKEN,
        "READYKIT_DEMO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/demo.db",
        "READYKIT_SLOW_REQUEST_MS": "1",  # every request is "slow": the APM pages get rows
        "READYKIT_LOG_LEVEL": "warning",
        # a loaded machine stalls the demo for real; only the seeded stall may be listed
        "READYKIT_STALL_THRESHOLD_MS": "60000",
    }
    code = "import sys; from readykit.cli import main; main(sys.argv[1:])"
    argv = [sys.executable, "-c", code, "demo", "--host", "127.0.0.1", "--port", "{port}"]
    with serve(argv, env=env, cwd=tmp_path) as server:
        login = call(f"{server.url}/login", {"username": "demo", "password": "demo"})
        user = login["access_token"]
        for i in range(3):
            call(f"{server.url}/customers", {"name": f"Customer {i}", "email": f"c{i}@example.com"},
                 token=user)  # fmt: skip
        for _ in range(5):
            call(f"{server.url}/rates")
        seed_apm(store_url)  # the demo neither raises nor stalls: give those pages rows
        yield server


def seed_apm(store_url: str) -> None:
    now = time.time()
    events = [
        {"id": "x1", "kind": "exception", "ts": now, "duration_ms": 3.0,
         "group": "builtins.KeyError at app.py:12 in handler", "data": {"request_id": "r1"}},
        {"id": "s1", "kind": "stall", "ts": now, "duration_ms": 310.0,
         "group": "app.py:40 in blocking", "data": {"stack": ["app.py:40 in blocking"]}},
        {"id": "q1", "kind": "slow_query", "ts": now, "duration_ms": 150.0,
         "group": "SELECT * FROM quotes WHERE id = ?", "data": {}},
    ]  # fmt: skip

    async def write() -> None:
        store = store_from_url(store_url)
        await store.open()
        await store.write(events)
        await store.close()

    asyncio.run(write())


def test_dashboard_in_chromium(demo: ServerProcess, tmp_path: Path) -> None:
    with playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = chromium.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{demo.url}/ops")
            assert page.url.endswith("/ops/login")  # refused without the token
            page.fill("input[name=token]", "wrong")
            page.click("button[type=submit]")
            assert "not the ops token" in page.inner_text("#error")
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{demo.url}/ops")
            health = page.inner_text("#health")
            assert "database" in health
            assert "migrations" in health
            page.wait_for_selector("#chart .uplot", timeout=10_000)  # the vendored chart drew
            routes = page.inner_text("#routes")
            assert "GET /rates" in routes
            assert "POST /customers" in routes
            page.screenshot(path=str(tmp_path / "ops-overview.png"), full_page=True)
            page.goto(f"{demo.url}/ops/apm?kind=slow_request")
            assert page.locator("#groups tbody tr").count() >= 2
            assert "GET /rates" in page.inner_text("#groups")
            for kind, where in (
                ("slow_query", "SELECT * FROM quotes"),
                ("exception", "KeyError"),
                ("stall", "app.py:40 in blocking"),
            ):
                page.goto(f"{demo.url}/ops/apm?kind={kind}")
                assert where in page.inner_text("#groups")
            page.click("#latest summary")  # the stall's stack, folded open
            assert "app.py:40 in blocking" in page.inner_text("#latest pre")
            page.goto(f"{demo.url}/ops/audit")
            all_rows = page.locator("#events tbody tr").count()
            assert all_rows >= 3
            page.fill("input[name=action]", "POST /login")
            page.click("form.filters button[type=submit]")
            assert page.locator("#events tbody tr").count() == 1
            assert "POST /login" in page.inner_text("#events")
            csv = page.get_attribute("#csv", "href") or ""
            assert "format=csv" in csv
            page.click("#pause")
            assert page.inner_text("#pause") == "Resume refresh"
        finally:
            chromium.close()
    assert errors == []
    if os.environ.get("READYKIT_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(tmp_path / "ops-overview.png", DOCS / "ops-overview.png")


def test_api_refused_without_token_from_the_browser(demo: ServerProcess) -> None:
    with playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            response = chromium.new_page().goto(f"{demo.url}/ops/api/overview")
            assert response is not None
            assert response.status == 401
        finally:
            chromium.close()
