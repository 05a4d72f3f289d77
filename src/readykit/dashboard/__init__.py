"""The ops dashboard at /ops: health, traffic, slow requests and queries, exceptions, stalls,
cache and rate limits, and the audit log, from the store's aggregates (never a full scan)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from readykit.access import OpsAccess
from readykit.dashboard.auth import OpsAuth
from readykit.dashboard.traffic import Traffic
from readykit.dashboard.views import Dashboard

if TYPE_CHECKING:
    from readykit.kit import ReadyKit

__all__ = ["Dashboard", "OpsAuth", "Traffic", "install_dashboard"]


def install_dashboard(kit: ReadyKit) -> Dashboard | None:
    """Serve /ops on the kit (needs records: the dashboard reads the store)."""
    if kit.records is None or not kit.settings.dashboard:
        return None
    traffic = Traffic(kit.records.store)
    auth = OpsAuth(OpsAccess.from_settings(kit.settings), store=kit.records.store)
    dashboard = Dashboard(kit, auth, traffic)
    kit.add_recorder(traffic)
    kit._ops_routes.update(dashboard.routes())

    async def start() -> None:
        traffic.start()

    kit.on_startup(start)
    kit.on_shutdown(traffic.stop)
    return dashboard
