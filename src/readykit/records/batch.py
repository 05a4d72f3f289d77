"""BatchWriter: every recorder's events reach the store in batches, and none is lost.

Recorders call `put` (never blocks: the request path must not wait on a database). A flusher
task writes a batch every `batch_size` events or `interval_s` seconds. When the store is down,
batches go to an append-only spill file (fsync per batch) and are replayed, in order, before
anything newer once the store answers; inserts are idempotent by event id, so a batch that was
written just before a failure is not duplicated by its replay. At shutdown the queue is drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from readykit._tasks import cancel_and_wait
from readykit.records.store import Store, StoreUnavailable

logger = logging.getLogger("readykit.records")

FullPolicy = Literal["spill", "drop"]


class BatchMetrics:
    """Queue depth, flush latency, and events spilled, replayed and dropped."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "readykit_records_queue_depth", "Events waiting to be written.", registry=registry
        )
        self.flush = Histogram(
            "readykit_records_flush_seconds", "Time to write one batch.", registry=registry
        )
        self.spilled = Counter(
            "readykit_records_spilled", "Events written to the spill file.", registry=registry
        )
        self.replayed = Counter(
            "readykit_records_replayed", "Spilled events written to the store.", registry=registry
        )
        self.dropped = Counter(
            "readykit_records_dropped", "Events lost to a full queue.", registry=registry
        )


class BatchWriter:
    """Buffers events and writes them to `store` in batches.

    Args:
        spill_path: the append-only file for batches the store could not take.
        max_queue: events held in memory; past it `full_policy` decides.
        full_policy: "spill" (the overflow goes to the spill file at the next flush) or
            "drop" (counted in `readykit_records_dropped_total`).
    """

    def __init__(
        self,
        store: Store,
        metrics: BatchMetrics,
        *,
        spill_path: Path,
        batch_size: int = 500,
        interval_s: float = 1.0,
        max_queue: int = 100_000,
        full_policy: FullPolicy = "spill",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.spill_path = spill_path
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_queue = max_queue
        self.full_policy = full_policy
        self.clock = clock
        self._queue: deque[dict[str, Any]] = deque()
        self._overflow: deque[dict[str, Any]] = deque()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._outage = False
        self._retry_at = 0.0

    def __len__(self) -> int:
        return len(self._queue) + len(self._overflow)

    def put(self, event: dict[str, Any]) -> None:
        """Queue one event (it must carry a unique `id`); never blocks, never raises."""
        if len(self._queue) >= self.max_queue:
            if self.full_policy == "spill" and len(self._overflow) < self.max_queue:
                self._overflow.append(event)
            else:
                self.metrics.dropped.inc()
                return
        else:
            self._queue.append(event)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    async def put_durable(self, event: dict[str, Any]) -> None:
        """Queue one event and return once it is committed to the store (or spilled to disk)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[event["id"]] = future
        self._queue.append(event)  # durable events are never dropped for a full queue
        self._wake.set()
        await future

    def start(self) -> None:
        """Start the flusher task (at lifespan startup)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="readykit-records-writer")

    async def stop(self) -> None:
        """Stop the flusher and write everything still queued (at lifespan shutdown)."""
        await cancel_and_wait([self._task])
        self._task = None
        while len(self):
            before = len(self)
            await self.flush()
            if len(self) >= before:  # nothing moved: the store and the disk both refused
                break

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the writer must outlive any one bad batch
                logger.exception("records: a flush failed")

    async def flush(self) -> int:
        """Write what is queued (spilled batches first); the number of events taken off."""
        self.metrics.depth.set(len(self))  # sampled here, not on every put: puts are hot
        async with self._lock:
            taken = 0
            if not await self._replay():
                return await self._spill_queue()
            while self._queue or self._overflow:
                batch = [self._take() for _ in range(min(self.batch_size, len(self)))]
                taken += len(batch)
                started = time.perf_counter()
                try:
                    await self.store.write(batch)
                except StoreUnavailable as exc:
                    self._note_outage(exc)
                    self._spill(batch)
                    return taken + await self._spill_queue()
                self.metrics.flush.observe(time.perf_counter() - started)
                self._release(batch)
                self._note_back()
            self.metrics.depth.set(len(self))
            return taken

    def _take(self) -> dict[str, Any]:
        return self._queue.popleft() if self._queue else self._overflow.popleft()

    async def _spill_queue(self) -> int:
        batch = [self._take() for _ in range(len(self))]
        if batch:
            self._spill(batch)
        self.metrics.depth.set(0)
        return len(batch)

    def _spill(self, batch: list[dict[str, Any]]) -> None:
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(e, default=repr) + "\n" for e in batch)
        with self.spill_path.open("a", encoding="utf-8") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())  # once per batch: spilled means on disk
        self.metrics.spilled.inc(len(batch))
        self._release(batch)  # a durable event is safe once it is on disk

    async def _replay(self) -> bool:
        """Write the spill file to the store, in order; False if the store is still down."""
        if not self.spill_path.exists():
            return True
        if self._outage and self.clock() < self._retry_at:
            return False
        spilled = [json.loads(line) for line in self.spill_path.read_text("utf-8").splitlines()]
        for start in range(0, len(spilled), self.batch_size):
            try:
                await self.store.write(spilled[start : start + self.batch_size])
            except StoreUnavailable as exc:
                self._note_outage(exc)
                # keep what is left; what was written is skipped on the next replay (by id)
                return False
            self.metrics.replayed.inc(len(spilled[start : start + self.batch_size]))
        self.spill_path.unlink()
        self._note_back()
        return True

    def _note_outage(self, exc: Exception) -> None:
        self._retry_at = self.clock() + self.interval_s
        if not self._outage:
            self._outage = True
            logger.warning("records store unreachable (%s); spilling to %s", exc, self.spill_path)

    def _note_back(self) -> None:
        if self._outage:
            self._outage = False
            logger.info("records store is back; spilled events replayed")

    def _release(self, batch: list[dict[str, Any]]) -> None:
        for event in batch:
            future = self._waiters.pop(event.get("id", ""), None)
            if future is not None and not future.done():
                future.set_result(None)
