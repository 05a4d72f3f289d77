"""The demo runs with the guards on: its login is rate limited, every answer carries headers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from readykit.demo import DemoSettings, build
from readykit.demo.rates import refresh_forever
from readykit.testing import lifespan

pytestmark = pytest.mark.anyio


async def test_login_is_limited_and_headers_are_set(
    demo_settings: DemoSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("READYKIT_RATE_LIMITS", raising=False)
    kit, _, app = build(None, demo_settings)
    assert kit.settings.rate_limits["POST /login"] == "5/minute"
    transport = httpx.ASGITransport(app, client=("192.0.2.10", 1234))
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://d") as c:
        wrong = {"username": "demo", "password": "guess"}
        statuses = [(await c.post("/login", json=wrong)).status_code for _ in range(6)]
        assert statuses == [401] * 5 + [429]
        refused = await c.post("/login", json={"username": "demo", "password": "demo"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        rates = await c.get("/rates")
        assert rates.status_code == 200
        assert rates.headers["ratelimit-policy"] == '"default";q=60000;w=60'
        assert rates.headers["x-content-type-options"] == "nosniff"
        assert (
            rates.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        )


async def test_environment_still_wins(
    demo_settings: DemoSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("READYKIT_RATE_LIMITS", '{"default": "1000/minute"}')
    kit, _, _ = build(None, demo_settings)
    assert kit.settings.rate_limits == {"default": "1000/minute"}
    assert kit.settings.service_name == "readykit-demo"


@pytest.mark.parametrize(
    "body",
    [b'[null, 1e999, "\\ud800"]', b'{"name": 1e999, "email": "a@b.c"}', b'{"name": "\\ud800"}'],
)
async def test_bad_json_is_422_problem_without_echoing_input(
    demo_settings: DemoSettings, body: bytes
) -> None:
    _, _, app = build(None, demo_settings)
    transport = httpx.ASGITransport(app)
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://d") as c:
        r = await c.post("/customers", content=body, headers={"content-type": "application/json"})
        wrong_password = await c.post("/login", json={"username": "demo", "password": 12345678})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"]
    assert "input" not in r.text
    assert wrong_password.status_code == 422
    assert "12345678" not in wrong_password.text


async def test_rates_are_cached_and_a_refresh_drops_them(
    demo_settings: DemoSettings, tmp_path: Path, make_xml: Callable[..., bytes]
) -> None:
    source = tmp_path / "rates.xml"
    source.write_bytes(make_xml())
    demo = demo_settings.model_copy(update={"rates_url": source.as_uri()})
    kit, fastapi_app, app = build(None, demo)
    transport = httpx.ASGITransport(app)
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://d") as c:
        first, second = await c.get("/rates"), await c.get("/rates")
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
        assert (await c.get("/rates/usd")).headers["x-cache"] == "MISS"
        assert (await c.get("/rates/usd")).headers["x-cache"] == "HIT"

        source.write_bytes(make_xml([("USD", "840", "1", "Доллар США", "90,0000")]))
        sleeps = 0

        async def sleep(seconds: float) -> None:
            nonlocal sleeps
            sleeps += 1
            if sleeps == 2:
                raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            await refresh_forever(
                fastapi_app.state.demo.engine,
                source.as_uri(),
                1.0,
                sleep=sleep,
                on_refresh=lambda: kit.invalidate("rates"),
            )
        fresh = await c.get("/rates/usd")
        assert fresh.headers["x-cache"] == "MISS"
        assert fresh.json()["value"] == "90.0000"


async def test_demo_user_can_export_and_erase(demo_settings: DemoSettings) -> None:
    kit, _, app = build(None, demo_settings)
    transport = httpx.ASGITransport(app)
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://d") as c:
        login = await c.post("/login", json={"username": "demo", "password": "demo"})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = await c.post("/customers", json={"name": "Иван", "email": "ivan@example.com"},
                               headers=auth)  # fmt: skip
        assert created.status_code == 201
        job = await c.post("/privacy/export", headers=auth)
        assert job.status_code == 202
        assert kit.privacy_jobs is not None
        await kit.privacy_jobs.wait()
        status = (await c.get(job.json()["status_url"], headers=auth)).json()
        assert status["counts"] == {"customers": 1, "quotes": 0}
        assert (await c.post("/privacy/export")).status_code == 401
        token = (await c.post("/privacy/erase", headers=auth)).json()["confirm"]
        erased = await c.post("/privacy/erase", json={"confirm": token}, headers=auth)
        report = erased.json()["report"]
        assert report["customers"]["removed"] == 1
        assert report["quotes"]["reasons"]
        customer = (await c.get(f"/customers/{created.json()['id']}", headers=auth)).json()
        assert customer["name"] == "erased"
