"""The ops dashboard at /ops: health, traffic, slow requests and queries, exceptions, stalls,
cache and rate limits, and the audit log, from the store's aggregates (never a full scan)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from readykit.dashboard.auth import OpsAuth
from readykit.dashboard.config import DashboardConfig
from readykit.dashboard.traffic import Traffic
from readykit.dashboard.views import Dashboard

if TYPE_CHECKING:
    from readykit.cache import Cache, CacheFeature
    from readykit.feature import Setup
    from readykit.records import Records, RecordsFeature

__all__ = ["Dashboard", "DashboardFeature", "OpsAuth", "Traffic", "install_dashboard"]

logger = logging.getLogger("readykit.ops")


def install_dashboard(setup: Setup, records: Records | None, cache: Cache) -> Dashboard | None:
    """Serve /ops on the kit (needs records: the dashboard reads the store)."""
    if records is None or not setup.section(DashboardConfig).dashboard:
        return None
    traffic = Traffic(records.store)
    auth = OpsAuth(setup.access, store=records.store)
    dashboard = Dashboard(setup, records.store, cache, auth, traffic)
    setup.add_recorder(traffic)
    for path, handler in dashboard.routes().items():
        setup.add_ops_route(path, handler)

    async def start() -> None:
        if dashboard.pages_missing is not None:
            logger.warning(dashboard.pages_missing)
        traffic.start()

    setup.on_startup(start)
    setup.on_shutdown(traffic.stop)
    return dashboard


class DashboardFeature:
    """The /ops dashboard as a kit feature, on `records` and `cache` (both installed first);
    `dashboard` is None where it is off or records are."""

    name = "dashboard"
    dashboard: Dashboard | None = None

    def __init__(self, records: RecordsFeature, cache: CacheFeature) -> None:
        self._records = records
        self._cache = cache

    def install(self, setup: Setup) -> None:
        self.dashboard = install_dashboard(setup, self._records.records, self._cache.cache)
