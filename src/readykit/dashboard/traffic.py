"""Traffic per route and minute: counts, errors and a latency histogram, for the overview.

A recorder adds each request to the current minute in memory (a few additions); a flush task
writes the minutes it touched to the store every few seconds as small documents, one per
minute, route and process, so the dashboard reads at most an hour of those, never requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from readykit._tasks import cancel_and_wait
from readykit.metrics.http import normalise_method
from readykit.record import RequestRecord
from readykit.records.store import Store, StoreUnavailable, new_id

logger = logging.getLogger("readykit.dashboard")

STOP_TIMEOUT_S = 5.0
"""How long shutdown waits for the last minute's traffic to be saved: a store that hangs must
not hang the shutdown (the records writer bounds its own drain the same way)."""

TRAFFIC = "traffic"
# OpenTelemetry's HTTP duration buckets, in ms; the last bucket is everything slower
BOUNDS_MS = (5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)
FLUSH_EVERY_S = 5.0


_OWN_ROUTES = ("/ops", "/health", "/metrics")


class _Cell:
    """One minute of one route: counts, errors, summed ms, and a histogram whose bucket i
    counts durations <= BOUNDS_MS[i] (the last: slower than all)."""

    __slots__ = ("count", "dirty", "errors", "hist", "sum_ms")

    def __init__(self) -> None:
        self.count = self.errors = 0
        self.sum_ms = 0.0
        self.hist = [0] * (len(BOUNDS_MS) + 1)
        self.dirty = False

    def document(self) -> dict[str, Any]:
        return {"count": self.count, "errors": self.errors, "sum_ms": self.sum_ms,
                "hist": list(self.hist)}  # fmt: skip


def percentile(counts: list[int], q: float) -> float | None:
    """The q-quantile (0..1) of a histogram, as its bucket's upper bound in ms."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return float(BOUNDS_MS[i]) if i < len(BOUNDS_MS) else float(BOUNDS_MS[-1] * 2)
    return float(BOUNDS_MS[-1] * 2)


class Traffic:
    """Recorder and flusher of per-minute, per-route traffic."""

    def __init__(self, store: Store, *, stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
        self.store = store
        self.stop_timeout_s = stop_timeout_s
        self.instance = new_id()
        # (minute, method, route) -> its counts; the keys changed since the last flush
        self._minutes: dict[tuple[int, str, str], _Cell] = {}
        self._dirty: list[tuple[int, str, str]] = []
        self._task: asyncio.Task[None] | None = None

    def __call__(self, record: RequestRecord) -> None:
        """Recorder: count the request in its minute."""
        route = record.route
        if route.startswith(_OWN_ROUTES):
            return
        # a made-up method is one `_OTHER` cell, not a cell and a document a minute each
        key = (int(record.started_at // 60), normalise_method(record.method), route)
        cell = self._minutes.get(key)
        if cell is None:
            cell = self._minutes[key] = _Cell()
        if not cell.dirty:
            cell.dirty = True
            self._dirty.append(key)
        ms = record.duration_s * 1000
        cell.count += 1
        cell.errors += record.status >= 500
        cell.sum_ms += ms
        cell.hist[bisect_left(BOUNDS_MS, ms)] += 1

    async def flush(self) -> None:
        """Write the minutes changed since the last flush; forget minutes older than an hour."""
        dirty, self._dirty = self._dirty, []
        for key in sorted(dirty):
            minute, method, route = key
            cell = self._minutes.get(key)
            if cell is None:  # forgotten while the store was out for over an hour
                continue
            cell.dirty = False
            label = f"{method} {route}"
            body = {"minute": minute, "route": label, **cell.document()}
            doc_id = f"{minute}:{self.instance}:{label}"
            try:
                await self.store.put_doc(TRAFFIC, doc_id, body, key=str(minute), ts=minute * 60.0)
            except StoreUnavailable:
                if not cell.dirty:  # try again next time
                    cell.dirty = True
                    self._dirty.append(key)
        horizon = int(time.time() // 60) - 61
        for key in [k for k in self._minutes if k[0] < horizon]:
            del self._minutes[key]

    def start(self) -> None:
        """Flush every few seconds (lifespan startup)."""

        async def run() -> None:
            while True:
                await asyncio.sleep(FLUSH_EVERY_S)
                await self.flush()

        self._task = asyncio.create_task(run(), name="readykit-dashboard-traffic")

    async def stop(self) -> None:
        """Stop flushing, after a last flush (lifespan shutdown)."""
        await cancel_and_wait([self._task])
        self._task = None
        last = asyncio.ensure_future(self.flush())
        # not cancelled past the bound: a thread inside SQLite must finish before the store
        # closes, and the process is exiting anyway
        done, _ = await asyncio.wait({last}, timeout=self.stop_timeout_s)
        if not done:
            logger.warning(
                "traffic: the store did not answer within %.0fs at shutdown; the last minute's "
                "traffic is not saved",
                self.stop_timeout_s,
            )
            return
        with contextlib.suppress(StoreUnavailable):
            last.result()


def summarise(docs: Iterable[dict[str, Any]], now: float) -> dict[str, Any]:
    """Totals, per route and per minute from traffic documents of the last hour."""
    width = len(BOUNDS_MS) + 1
    routes: dict[str, dict[str, Any]] = {}
    minutes: dict[int, dict[str, Any]] = {}
    total: dict[str, Any] = {"count": 0, "errors": 0, "hist": [0] * width}
    for doc in docs:
        for agg in (
            routes.setdefault(doc["route"], {"count": 0, "errors": 0, "hist": [0] * width}),
            minutes.setdefault(doc["minute"], {"count": 0, "errors": 0, "hist": [0] * width}),
            total,
        ):
            agg["count"] += doc["count"]
            agg["errors"] += doc["errors"]
            agg["hist"] = [a + b for a, b in zip(agg["hist"], doc["hist"], strict=True)]
    span_s = 3600.0

    def stats(agg: dict[str, Any]) -> dict[str, Any]:
        count = agg["count"]
        return {
            "requests": count,
            "rps": round(count / span_s, 3),
            "error_rate": round(agg["errors"] / count, 4) if count else 0.0,
            "p50_ms": percentile(agg["hist"], 0.50),
            "p95_ms": percentile(agg["hist"], 0.95),
            "p99_ms": percentile(agg["hist"], 0.99),
        }

    first = int(now // 60) - 59
    series = [minutes.get(m, {"count": 0, "errors": 0, "hist": [0] * width}) for m in
              range(first, first + 60)]  # fmt: skip
    return {
        "total": stats(total),
        "routes": sorted(
            ({"route": r, **stats(a)} for r, a in routes.items()), key=lambda r: -r["requests"]
        ),
        "series": {
            "minutes": [(first + i) * 60 for i in range(60)],
            "requests": [m["count"] for m in series],
            "errors": [m["errors"] for m in series],
            "p95_ms": [percentile(m["hist"], 0.95) for m in series],
        },
    }
