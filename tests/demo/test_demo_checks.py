"""The demo's readiness checks: each fails for its own reason and passes once fixed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from readykit import ReadyKit, Settings
from readykit.demo.checks import register_checks
from readykit.demo.db import create_engine, ensure_sqlite_dir
from readykit.demo.migrate import alembic_config, upgrade
from readykit.demo.rates import refresh_rates
from readykit.demo.settings import BUNDLED_RATES

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fresh_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database file: no schema yet."""
    ensure_sqlite_dir(database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def test_register_checks_adds_three_readiness_checks(
    database_url: str, fresh_engine: AsyncEngine
) -> None:
    kit = ReadyKit(Settings(health_cache_s=0, records=False))
    config = alembic_config(database_url)
    register_checks(kit, fresh_engine, config)

    assert kit.health.names(("readiness",)) == ["database", "migrations", "rates"]
    before = {r.name: r for r in await kit.health.run(("readiness",))}
    assert {name: r.status for name, r in before.items()} == {
        "database": "pass",
        "migrations": "fail",
        "rates": "fail",
    }
    assert "run `alembic upgrade head`" in (before["migrations"].output or "")

    upgrade(config)
    await refresh_rates(fresh_engine, str(BUNDLED_RATES))
    after = {r.name: r for r in await kit.health.run(("readiness",))}
    assert {name: r.status for name, r in after.items()} == {
        "database": "pass",
        "migrations": "pass",
        "rates": "pass",
    }
    assert after["rates"].observed_unit == "rows"
    assert isinstance(after["rates"].observed_value, int)
    assert after["rates"].observed_value > 0
