"""Records: the durable store, the BatchWriter, the audit log and APM, wired into a kit."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Counter

from readykit._tasks import cancel_and_wait
from readykit._types import Scope
from readykit.errors import ConfigurationError
from readykit.logging.config import LoggingConfig
from readykit.logging.redact import Redactor, redact_text
from readykit.records.anchor import Anchor, checkpoint_path, key_path, load_key, read_checkpoint
from readykit.records.apm import Exceptions, SlowQueries, SlowRequests, StallWatchdog
from readykit.records.audit import ORDER_AUDIT, Audit, audited
from readykit.records.batch import BatchMetrics, BatchWriter, RecordsUnavailable
from readykit.records.config import RecordsConfig
from readykit.records.store import (
    ChainKey,
    Head,
    Store,
    StoreUnavailable,
    store_from_url,
    verify_chain,
)

if TYPE_CHECKING:
    from readykit.feature import Setup

TRIM_EVERY_S = 3600.0
logger = logging.getLogger("readykit.records")

__all__ = [
    "Audit",
    "BatchWriter",
    "ChainKey",
    "Records",
    "RecordsFeature",
    "RecordsUnavailable",
    "Store",
    "StoreUnavailable",
    "install_records",
    "store_from_url",
    "verify_chain",
]


@dataclass
class Records:
    """What the kit records with: `store`, `writer`, `audit`, and the APM parts."""

    store: Store
    writer: BatchWriter
    audit: Audit
    slow_requests: SlowRequests
    exceptions: Exceptions
    slow_queries: SlowQueries
    stalls: StallWatchdog


def install_records(setup: Setup) -> Records:
    """Build the records parts from the kit's settings and hook them into its lifecycle."""
    settings = setup.section(RecordsConfig)
    spill_path = Path(settings.spill_path)
    secret = settings.audit_key.get_secret_value() if settings.audit_key is not None else None
    key = load_key(secret, key_path(spill_path))
    assert key is not None  # created when missing
    store = store_from_url(settings.store_url, audit_key=key)
    anchor = Anchor(checkpoint_path(spill_path), key.id, log_every_s=settings.records_flush_s)
    metrics = BatchMetrics(setup.metrics.registry)
    redactor = Redactor(setup.section(LoggingConfig).redact_keys)
    anchored: list[Head] = []
    anchoring: list[asyncio.Task[None]] = []

    async def anchor_head() -> None:
        # after every flush that moved the head; the file is written by one task at a time,
        # always with the newest head, so a commit never waits on the checkpoint's disk.
        # Not before the store's chain was compared with the checkpoint (a store unreachable
        # at startup: at its first flush), and never over a chain found behind it: moving the
        # checkpoint onto a cut chain would erase the evidence (`audit verify` said intact)
        if not compared and not await compare_with_checkpoint():
            return
        if behind:
            return
        head = store.head
        if head is None or (anchored and anchored[-1] == head):
            return
        anchored[:] = [head]
        metrics.head.set(head.seq)
        anchor.log(head)
        if not anchoring or anchoring[-1].done():
            anchoring[:] = [asyncio.create_task(write_anchor(), name="readykit-audit-anchor")]

    async def write_anchor() -> None:
        written = None
        while anchored and anchored[-1] != written:
            written = anchored[-1]
            await asyncio.to_thread(anchor.write, written)

    def principal(scope: Scope) -> str | None:
        return setup.resolve_principal(scope)

    writer = BatchWriter(
        store,
        metrics,
        spill_path=spill_path,
        batch_size=settings.records_batch_size,
        interval_s=settings.records_flush_s,
        max_queue=settings.records_max_queue,
        full_policy=settings.records_full_policy,
        on_flush=anchor_head,
        redactor=redactor,
    )
    records = Records(
        store=store,
        writer=writer,
        audit=Audit(writer, redactor),
        slow_requests=SlowRequests(
            writer,
            settings.slow_request_ms,
            settings.slow_request_routes,
            sample_rate=settings.apm_sample_rate,
        ),
        exceptions=Exceptions(writer),
        slow_queries=SlowQueries(writer, settings.slow_query_ms),
        stalls=StallWatchdog(writer, settings.stall_threshold_ms),
    )
    stalls_total = Counter(
        "readykit_event_loop_stalls",
        "Event-loop stalls longer than stall_threshold_ms (each also an APM entry).",
        registry=setup.metrics.registry,
    )
    records.stalls.on_stall = lambda _event: stalls_total.inc()
    if settings.audit_mutations:
        setup.add_guard(
            ORDER_AUDIT,
            records.audit.guard(principal, settings.audit_durability, route_of=setup.route_of),
            ops=records.audit.guard(principal, settings.audit_durability, ops=True),
            when=audited,
        )
    setup.add_recorder(records.slow_requests)
    setup.add_recorder(records.exceptions)

    anchor_behind = Counter(
        "readykit_audit_anchor_behind",
        "Startups that found the store's audit chain behind (or other than) the head in the "
        "checkpoint file: its newest events are gone (restored, cut, or another database).",
        registry=setup.metrics.registry,
    )
    behind: list[str] = []  # what the startup found; readiness fails while it holds a line

    async def open_store() -> None:
        try:
            await store.open()
        except (StoreUnavailable, ConfigurationError):
            raise
        except Exception as exc:  # the driver refused the URL itself: no retry mends that
            raise ConfigurationError(
                f"store_url: cannot open the store {redact_text(store.url)} "
                f"({_reason(exc, store.url)}); fix READYKIT_STORE_URL"
            ) from exc

    async def start() -> None:
        try:
            await open_store()
            await store.trim(time.time() - settings.records_retention_days * 86400)
        except StoreUnavailable as exc:
            if settings.store_required:
                raise ConfigurationError(
                    f"store_url: the store is unreachable ({_reason(exc, store.url)}); fix "
                    "READYKIT_STORE_URL, or set READYKIT_STORE_REQUIRED=false to start anyway "
                    "and spill until it is back"
                ) from exc
        else:
            await compare_with_checkpoint()
        writer.start()
        records.stalls.start()
        trimming.append(asyncio.create_task(trim_hourly(), name="readykit-records-trim"))

    async def trim_hourly() -> None:
        while True:
            await asyncio.sleep(TRIM_EVERY_S)
            try:
                await store.trim(time.time() - settings.records_retention_days * 86400)
            except StoreUnavailable:
                continue  # the next hour will do

    trimming: list[asyncio.Task[None]] = []

    compared: list[bool] = []  # [True] once the comparison below ran against the store

    async def compare_with_checkpoint() -> bool:
        """The store's chain must reach the head the checkpoint saved at the last run: a store
        behind it lost acknowledged audit events (restored from an older backup, its tail cut,
        or another database than before), and the chain would silently go on from there.
        False if the store could not be read (compared again at the next flush)."""
        try:
            saved = await asyncio.to_thread(read_checkpoint, anchor.path)
            head = saved[0] if saved is not None else None
            if head is not None:
                rows = await store.audit_page(head.seq, 1)
                stored = await store.audit_head()
        except StoreUnavailable:
            return False
        except (OSError, ValueError):  # an unreadable checkpoint is logged and replaced at
            head = None  # the next anchor
        compared[:] = [True]
        if head is None or (rows and rows[0][0] == head.seq and rows[0][10] == head.hash):
            return True
        now = f"ends at seq {stored.seq}" if stored is not None else "is empty"
        if rows and rows[0][0] == head.seq:
            what = f"holds another event at seq {head.seq} than"
        else:
            what = f"{now}, behind"
        line = (
            f"the store's audit chain {what} the checkpoint {anchor.path} (seq {head.seq}): "
            "acknowledged audit events are gone (a restored backup, a cut tail, or another "
            "database than READYKIT_STORE_URL named before); run `readykit audit verify`, and "
            "once it is accounted for move the checkpoint aside and restart"
        )
        behind[:] = [line]
        anchor_behind.inc()
        logger.error("records: %s", line)
        return True

    def check_anchor() -> None:
        """Readiness: fails while the store's chain is behind the checkpoint (see above)."""
        if behind:
            raise RecordsUnavailable(behind[0])

    async def stop() -> None:
        await cancel_and_wait(trimming)
        trimming.clear()
        records.stalls.stop()
        await writer.stop()
        if anchoring:
            await asyncio.wait(anchoring, timeout=writer.stop_timeout_s)
        if store.head is not None:
            anchor.log(store.head, force=True)
        # bounded: a store stuck in a call must not hang the shutdown (the writer has spilled)
        closing = asyncio.ensure_future(store.close())
        done, _ = await asyncio.wait({closing}, timeout=writer.stop_timeout_s)
        if not done:
            logger.error("records: the store did not close within %.0fs", writer.stop_timeout_s)

    setup.on_startup(start)
    setup.on_shutdown(stop)
    setup.add_check("store", store.check, component_type="datastore", critical=False)
    setup.add_check("records-spill", writer.check_spill, component_type="system")
    setup.add_check(
        "records-quarantine", writer.check_quarantine, component_type="system", critical=False
    )
    setup.add_check("audit-anchor", check_anchor, component_type="system")
    return records


def _reason(exc: BaseException, url: str) -> str:
    """What the driver said, with the URL's password (wherever it is quoted) redacted and
    nothing else: the whole text through the log's redaction turned `/etc/passwd: file is not
    a database` into `/etc/passwd: [REDACTED] is not a database`."""
    from urllib.parse import urlsplit

    reason = str(exc) or type(exc).__name__
    shown = redact_text(url)
    if shown != url:
        reason = reason.replace(url, shown)
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        reason = reason.replace(password, "[REDACTED]")
    return reason


class RecordsFeature:
    """The records as a kit feature; `records` is what it built, None with records off."""

    name = "records"
    records: Records | None = None

    def install(self, setup: Setup) -> None:
        if setup.section(RecordsConfig).records:
            self.records = install_records(setup)
