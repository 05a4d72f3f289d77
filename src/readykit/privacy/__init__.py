"""Personal data: exporters and erasers, "download my data" jobs, erasure with a replay log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Counter

from readykit._tasks import cancel_and_wait
from readykit.privacy.config import PrivacyConfig
from readykit.privacy.endpoints import PREFIX, PrivacyEndpoints, privacy_own_path
from readykit.privacy.jobs import Jobs
from readykit.privacy.keys import Keys, load_or_create_key
from readykit.privacy.registry import ErasureReport, Privacy
from readykit.records.store import StoreUnavailable
from readykit.route_table import route_path

if TYPE_CHECKING:
    from readykit.feature import Setup
    from readykit.records import Records, RecordsFeature

__all__ = ["ErasureReport", "Jobs", "Keys", "Privacy", "PrivacyFeature", "install_privacy"]

logger = logging.getLogger("readykit.privacy")
ORDER_PRIVACY = 60  # inside the guards: limits and headers apply to these endpoints too
EXPIRE_EVERY_S = 3600.0


def install_privacy(setup: Setup, records: Records | None, registry: Privacy) -> Jobs | None:
    """Serve /privacy/... with the kit's store, audit log and principal resolver.

    Needs records (the store keeps the jobs and the erasure log); without them the registry
    still works for code that calls it, but no endpoints are served.
    """
    settings = setup.section(PrivacyConfig)
    if records is None or not settings.privacy_endpoints:
        return None
    secret = settings.privacy_secret.get_secret_value() if settings.privacy_secret else None
    keys = Keys(load_or_create_key(secret, Path(settings.privacy_key_path)))
    jobs = Jobs(
        records.store,
        registry,
        keys,
        records.audit,
        archive_dir=Path(settings.privacy_archive_dir),
        link_ttl_s=settings.privacy_link_ttl_h * 3600,
        exports_per_day=settings.privacy_exports_per_day,
    )
    refusals = Counter(
        "readykit_privacy_refusals",
        "Requests to /privacy/... refused without an audit event (no login, a subject id "
        "that is not text), by status.",
        ["status"],
        registry=setup.metrics.registry,
    )
    # every request these endpoints answer is audited by them, by the subject's keyed hash:
    # auto-audit, which would name the raw principal, leaves them alone
    records.audit.leave(lambda path: bool(registry.exporters or registry.erasers)
                        and privacy_own_path(path))  # fmt: skip
    setup.add_guard(
        ORDER_PRIVACY,
        lambda app: PrivacyEndpoints(
            app,
            jobs=jobs,
            keys=keys,
            audit=records.audit,
            principal=setup.resolve_principal,
            refusals=refusals,
        ),
        when=lambda scope: route_path(scope).startswith(PREFIX),
    )
    housekeeping: list[asyncio.Task[None]] = []

    async def expire_hourly() -> None:
        while True:
            with contextlib.suppress(StoreUnavailable):  # the next hour will do
                await jobs.expire()
            await asyncio.sleep(EXPIRE_EVERY_S)
            with contextlib.suppress(StoreUnavailable):
                # an export whose owner died (its lease lapsed) is taken over every hour, not
                # only when some instance starts (start() resumes at once)
                await jobs.resume()

    async def start() -> None:
        try:
            await jobs.resume()
        except StoreUnavailable:  # started without its store (store_required=false)
            logger.warning("privacy: store unreachable; unfinished exports resume later")
        housekeeping.append(asyncio.create_task(expire_hourly(), name="readykit-privacy-expire"))

    async def stop() -> None:
        await cancel_and_wait(housekeeping)
        housekeeping.clear()

    setup.on_startup(start)
    setup.on_shutdown(stop)
    return jobs


class PrivacyFeature:
    """The /privacy endpoints as a kit feature, on the store of `records` (installed first);
    `jobs` is the export and erasure runner, None where no endpoints are served."""

    name = "privacy"
    jobs: Jobs | None = None

    def __init__(self, records: RecordsFeature, registry: Privacy) -> None:
        self._records = records
        self.registry = registry

    def install(self, setup: Setup) -> None:
        self.jobs = install_privacy(setup, self._records.records, self.registry)
