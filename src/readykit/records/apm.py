"""APM records: slow requests, exceptions, slow SQL, and event-loop stalls with the culprit.

Each is an event on the BatchWriter: `kind`, `group` (what the dashboard aggregates by),
`duration_ms` and `data`. The stall watchdog is a thread: the loop bumps a heartbeat every few
milliseconds; when the beat is older than the threshold, the watchdog reads the loop thread's
stack at that moment, which names the file, line and function that is blocking it.
"""

from __future__ import annotations

import asyncio
import queue
import random
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from readykit.logging.redact import Redactor
from readykit.record import RequestRecord
from readykit.records.audit import storable
from readykit.records.batch import BatchWriter
from readykit.records.store import new_id

STACK_FRAMES = 30
PRIVACY = "/privacy/"  # in a request's path (behind any root_path): personal-data requests


def _event(
    redactor: Redactor, kind: str, group: str, duration_ms: float, data: dict[str, Any]
) -> dict[str, Any]:
    """An APM event as stored: its group and data redacted (paths, messages, stacks, SQL)."""
    return {
        "id": new_id(),
        "kind": kind,
        "ts": time.time(),
        "group": storable(redactor.text(group[:1000])[:300]),
        "duration_ms": round(duration_ms, 3),
        "data": redactor.redact(data),
    }


class SlowRequests:
    """Recorder: requests slower than `threshold_ms`, or their route's own threshold.

    Args:
        routes: regex on the route template -> threshold in ms (first match wins), as in Pulse.
        sample_rate: the share of slow requests recorded (1.0 = all).
    """

    def __init__(
        self,
        writer: BatchWriter,
        threshold_ms: float,
        routes: Mapping[str, float] | None = None,
        *,
        sample_rate: float = 1.0,
    ) -> None:
        self.writer = writer
        self.threshold_ms = threshold_ms
        self.routes = [(re.compile(p), ms) for p, ms in (routes or {}).items()]
        self.sample_rate = sample_rate
        self._thresholds: dict[str, float] = {}

    def threshold_for(self, route: str) -> float:
        """The threshold of `route` (cached: the route space is bounded)."""
        known = self._thresholds.get(route)
        if known is None:
            known = next((ms for rx, ms in self.routes if rx.search(route)), self.threshold_ms)
            if len(self._thresholds) < 10_000:
                self._thresholds[route] = known
        return known

    def __call__(self, record: RequestRecord) -> None:
        duration_ms = record.duration_s * 1000
        if duration_ms < self.threshold_for(record.route):
            return
        if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
            return
        self.writer.put(
            _event(
                self.writer.redactor,
                "slow_request",
                f"{record.method} {record.route}",
                duration_ms,
                {
                    "path": record.path,
                    "status": record.status,
                    "request_id": record.request_id,
                    # a privacy request's principal is the person it exports or erases:
                    # never stored (erasure would not remove it; audit names them by a hash)
                    "principal": None if PRIVACY in record.path else record.principal,
                },
            )
        )


def _location(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return "unknown"
    frame = tb[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


class Exceptions:
    """Recorder: unhandled exceptions, grouped by type and the line that raised them."""

    def __init__(self, writer: BatchWriter) -> None:
        self.writer = writer

    def __call__(self, record: RequestRecord) -> None:
        exc = record.exception
        if exc is None:
            return
        group = f"{type(exc).__module__}.{type(exc).__qualname__} at {_location(exc)}"
        self.writer.put(
            _event(
                self.writer.redactor,
                "exception",
                group,
                record.duration_s * 1000,
                {
                    # redacted before the cut, so a cut never leaves half a secret behind
                    "message": self.writer.redactor.text(str(exc)[:5000])[:500],
                    "request_id": record.request_id,
                    "route": f"{record.method} {record.route}",
                },
            )
        )


class StallWatchdog:
    """Notices when the event loop has not run for `threshold_ms`, and records what held it.

    One record per stall (taken once the stall passes the threshold), with the loop thread's
    stack at that moment. `beat_s` is how often the loop bumps its heartbeat.
    """

    def __init__(
        self,
        writer: BatchWriter,
        threshold_ms: float = 100.0,
        *,
        beat_s: float = 0.01,
        on_stall: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.writer = writer
        self.threshold_s = threshold_ms / 1000
        self.beat_s = beat_s
        self.on_stall = on_stall
        self._last_beat = time.monotonic()
        self._loop_thread: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        self._hand_over()  # stalls the thread saw go to the writer here, on the loop
        assert self._loop is not None
        self._handle = self._loop.call_later(self.beat_s, self._beat)

    def start(self) -> None:
        """Start beating on the running loop and watching from a daemon thread."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._last_beat = time.monotonic()
        self._stop.clear()
        self._handle = self._loop.call_later(self.beat_s, self._beat)
        self._thread = threading.Thread(target=self._watch, name="readykit-stall-watchdog")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; stalls not yet handed over are queued now."""
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        self._hand_over()

    def _hand_over(self) -> None:
        while True:
            try:
                self.writer.put(self._pending.get_nowait())
            except queue.Empty:
                return

    def _watch(self) -> None:
        reported_beat = 0.0
        interval = min(self.threshold_s / 4, 0.025)
        while not self._stop.wait(interval):
            beat = self._last_beat
            lag = time.monotonic() - beat
            if lag < self.threshold_s or beat == reported_beat:
                continue
            reported_beat = beat  # one record per stall
            frame = sys._current_frames().get(self._loop_thread or 0)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)[-STACK_FRAMES:]
            culprit = stack[-1]
            event = _event(
                self.writer.redactor,
                "stall",
                f"{culprit.filename}:{culprit.lineno} in {culprit.name}",
                lag * 1000,
                {
                    "stack": [f"{f.filename}:{f.lineno} in {f.name}" for f in stack],
                    "threshold_ms": self.threshold_s * 1000,
                },
            )
            self._pending.put(event)  # the loop hands it over at its next beat
            if self.on_stall is not None:
                self.on_stall(event)


class SlowQueries:
    """SQLAlchemy engine listener: statements slower than `threshold_ms`, without parameters."""

    def __init__(self, writer: BatchWriter, threshold_ms: float = 100.0) -> None:
        self.writer = writer
        self.threshold_ms = threshold_ms

    def watch(self, engine: Any) -> None:
        """Listen on `engine` (sync or async SQLAlchemy engine)."""
        from sqlalchemy import event

        sync_engine = getattr(engine, "sync_engine", engine)
        event.listen(sync_engine, "before_cursor_execute", self._before)
        event.listen(sync_engine, "after_cursor_execute", self._after)

    @staticmethod
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("readykit_query_start", []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        starts = conn.info.get("readykit_query_start")
        if not starts:
            return
        duration_ms = (time.perf_counter() - starts.pop()) * 1000
        if duration_ms < self.threshold_ms:
            return
        group = normalise_sql(statement)
        self.writer.put(_event(self.writer.redactor, "slow_query", group, duration_ms, {}))


_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_SPACE = re.compile(r"\s+")
_IN_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")


def normalise_sql(statement: str) -> str:
    """A statement without literal values or layout, so equal queries group together."""
    text = _LITERALS.sub("?", statement)
    text = _IN_LIST.sub("(?)", text)
    return _SPACE.sub(" ", text).strip()[:1000]


def summarise(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries grouped: count, max and p95 of duration, first and last seen, a sample request.

    Busiest group first. p95 is the nearest-rank percentile of the entries given.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(entry["group"], []).append(entry)
    out = []
    for group, items in groups.items():
        durations = sorted(float(e.get("duration_ms") or 0.0) for e in items)
        rank = max(0, -(-95 * len(durations) // 100) - 1)  # nearest rank, 1-based -> index
        newest = max(items, key=lambda e: e["ts"])
        out.append(
            {
                "group": group,
                "kind": items[0]["kind"],
                "count": len(items),
                "max_ms": durations[-1],
                "p95_ms": durations[rank],
                "first_seen": min(e["ts"] for e in items),
                "last_seen": newest["ts"],
                "sample_request_id": newest.get("data", {}).get("request_id"),
            }
        )
    return sorted(out, key=lambda g: (-g["count"], g["group"]))
