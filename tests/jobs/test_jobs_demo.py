"""The demo's exchange-rate refresh is a `@kit.job`: seen, recorded, and failing visibly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from jobs_support import HOUR, T0, park

from readykit import Settings
from readykit.demo import DemoSettings
from readykit.demo.app import build
from readykit.demo.settings import BUNDLED_RATES
from readykit.testing import FakeClock, asgi_request, lifespan

pytestmark = pytest.mark.anyio


async def test_the_demo_rate_refresh_is_a_recorded_job(tmp_path: Path) -> None:
    source = tmp_path / "rates.xml"
    source.write_bytes(BUNDLED_RATES.read_bytes())
    demo = DemoSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.db",
                        rates_url=source.as_uri())  # fmt: skip
    kit, _, app = build(Settings(configure_logging=False), demo)
    clock = FakeClock(T0 + 1000)
    kit.jobs.clock, kit.jobs.sleep = clock, park
    async with lifespan(app):
        clock.advance(HOUR - 1000)
        await asyncio.gather(*await kit.jobs.tick())
        source.write_bytes(b"<not xml")
        clock.advance(HOUR)
        await asyncio.gather(*await kit.jobs.tick())
        [state] = await kit.jobs.status()
        usd = await asgi_request(app, "GET", "/rates/USD")
    assert state["name"] == "rates.refresh"
    assert state["schedule"] == "every 1h, grace 6m"
    failed, ok = state["runs"]
    assert ok["outcome"] == "success"
    assert failed["outcome"] == "failure"
    assert "RatesFileError" in failed["error"]
    assert state["state"] == "failing"
    assert usd.status == 200  # the failed refresh kept the rates loaded before
