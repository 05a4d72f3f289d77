"""BatchWriter: every recorder's events reach the store in batches, and none is lost silently.

Recorders call `put` (never blocks: the request path must not wait on a database). A flusher
task writes a batch every `batch_size` events or `interval_s` seconds; `put_durable` wakes it at
once, so concurrent durable callers share one write and one commit (group commit). When the
store is down, batches go to an append-only spill file (fsync per batch, in a worker thread) and
are replayed, in order, before anything newer once the store answers; inserts are idempotent by
event id, so a batch written just before a failure is not duplicated by its replay.

What the spill cannot promise is said out loud: a corrupt or torn spill line is moved to a
quarantine file (counted, logged, a health warning) while the rest replays; a spill file that
cannot be written (full or read-only disk) drops the batch, counts every event in
`readykit_records_dropped_total`, fails readiness with the path and the errno, and durable
callers get `RecordsUnavailable` at once. `stop` is bounded: a store that does not answer makes
it spill what is left and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from readykit._eager import resume, step
from readykit.errors import ReadykitError
from readykit.logging.redact import Redactor
from readykit.records.store import Store, StoreUnavailable

logger = logging.getLogger("readykit.records")

FullPolicy = Literal["spill", "drop"]
STOP_TIMEOUT_S = 10.0


class RecordsUnavailable(ReadykitError):
    """An event could not be made durable: the store is down and the spill file refused it."""


class BatchMetrics:
    """Queue depth, flush latency, and events spilled, replayed, quarantined and dropped."""

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
            "readykit_records_dropped",
            "Events lost: a full queue, or neither the store nor the spill file took them.",
            registry=registry,
        )
        self.quarantined = Counter(
            "readykit_records_quarantined",
            "Corrupt spill lines moved to the quarantine file.",
            registry=registry,
        )
        self.head = Gauge(
            "readykit_audit_head_seq",
            "Sequence number of the newest audit event this process wrote (the chain's anchor).",
            registry=registry,
        )


def _call(hooks: list[Callable[[], None]]) -> list[Callable[[], None]]:
    """Call each on-durable hook (one failing does not stop the rest); an empty list."""
    for hook in hooks:
        try:
            hook()
        except Exception:
            logger.exception("records: an on-durable hook failed")
    return []


def quarantine_path(spill_path: Path) -> Path:
    """Where corrupt spill lines go: next to the spill file."""
    return spill_path.with_name(spill_path.name + ".quarantine")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`'s lock file, between the processes (a server's workers) that
    share one spill file: an append, and the replay's last look before it deletes the file,
    never interleave (a line appended after that look would be deleted unread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and with it the lock


def _append(path: Path, data: bytes) -> None:
    """Append `data` and fsync, under the spill lock; on failure cut the file back, so no torn
    line is left. A torn last line left by a crash is ended first, so `data` never joins it."""
    with _locked(path):
        _append_locked(path, data)


def _append_locked(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # the torn line stays one corrupt line, quarantined at replay
        try:
            view = memoryview(data)
            while view:  # unbuffered: a failed write leaves nothing queued to flush later
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # once per batch: spilled means on disk
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than a parser goes
        return None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("kind"), str)
    ):
        return None
    return event


Position = tuple[int, int]
"""Where a replay is in a spill file: (the file's inode, the offset read up to)."""


def _read_spill(
    path: Path, at: Position | None, max_lines: int
) -> tuple[list[dict[str, Any]], list[bytes], Position | None]:
    """Up to `max_lines` whole lines from `at`: the events, the corrupt lines, the position
    after them (None: no spill file). A last line without its newline may be an append still
    under way in another process: it is left for `_finish_replay`, which looks under the lock.
    A file that is not the one `at` was in (another process replayed and deleted it, and a new
    one began) is read from its start."""
    events: list[dict[str, Any]] = []
    bad: list[bytes] = []
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return events, bad, None
    with f:
        stat = os.fstat(f.fileno())
        inode = stat.st_ino
        offset = at[1] if at is not None and at[0] == inode and at[1] <= stat.st_size else 0
        f.seek(offset)
        for _ in range(max_lines):
            line = f.readline()
            if not line.endswith(b"\n"):
                break  # the end, or a line not yet complete
            offset += len(line)
            if not line.strip():
                continue
            event = _parse(line)
            if event is None:
                bad.append(line)
            else:
                events.append(event)
        return events, bad, (inode, offset)


def _finish_replay(path: Path, at: Position) -> tuple[bool, bytes]:
    """Delete the spill file if nothing came after `at`, under the spill lock; (done, a torn
    last line to quarantine). Not done: another process appended meanwhile, read on."""
    with _locked(path):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return True, b""  # another process replayed it to the end
        try:
            stat = os.fstat(fd)
            if stat.st_ino != at[0] or stat.st_size < at[1]:
                return False, b""  # a new file: read it from its start
            rest = os.pread(fd, stat.st_size - at[1], at[1])
        finally:
            os.close(fd)
        if b"\n" in rest:
            return False, b""  # whole lines appended since the last read
        # no append is under way (we hold the lock): what is left is a line a crash tore
        path.unlink()
        return True, rest + b"\n" if rest else b""


def _describe(path: Path, exc: Exception, doing: str = "write") -> str:
    if not isinstance(exc, OSError):
        return f"cannot {doing} the spill file {path} ({type(exc).__name__}: {exc})"
    errno_name = f"errno {exc.errno}" if exc.errno is not None else "no errno"
    return f"cannot {doing} the spill file {path} ({errno_name}: {exc.strerror or exc})"


class BatchWriter:
    """Buffers events and writes them to `store` in batches.

    Args:
        spill_path: the append-only file for batches the store could not take.
        max_queue: events held in memory; past it `full_policy` decides.
        full_policy: "spill" (the overflow goes to the spill file at the next flush) or
            "drop" (counted in `readykit_records_dropped_total`).
        stop_timeout_s: how long `stop` waits for the store before spilling what is left.
        on_flush: awaited after each flush that reached the store (it anchors the audit head),
            and at least every `interval_s` during a flush that the queue keeps busy.
        redactor: what the recorders that build events redact them with before `put`.
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
        stop_timeout_s: float = STOP_TIMEOUT_S,
        on_flush: Callable[[], Awaitable[None]] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.spill_path = spill_path
        self.quarantine_path = quarantine_path(spill_path)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_queue = max_queue
        self.full_policy = full_policy
        self.clock = clock
        self.stop_timeout_s = stop_timeout_s
        self.on_flush = on_flush
        self._flushed_at = clock()  # when on_flush last ran: at most interval_s apart under load
        self.redactor = redactor if redactor is not None else Redactor()
        self.quarantined = 0
        self.spill_error: str | None = None
        self._queue: deque[dict[str, Any]] = deque()
        # ids of events whose write was cancelled midway: maybe stored, so written as a replay
        self._unsure: set[str] = set()
        self._overflow: deque[dict[str, Any]] = deque()
        self._inflight: list[dict[str, Any]] = []
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._on_durable: dict[str, Callable[[], None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._lock = asyncio.Lock()
        self._outage = False
        self._retry_at = 0.0
        self._replay_at: Position | None = None
        self.replay_error: str | None = None  # the spill file exists but cannot be read
        self._maybe_spilled = True  # a spill file from an earlier run is looked for once

    def __len__(self) -> int:
        return len(self._queue) + len(self._overflow)

    @property
    def running(self) -> bool:
        """True while the flusher task runs (between `start` and `stop`)."""
        return self._task is not None and not self._stopping

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
        """Queue one event and return once it is committed to the store (or spilled to disk).

        Raises RecordsUnavailable when neither can take it, at once if that is already known.
        """
        future = self.put_committing(event)
        if not self.running:  # no flusher (no lifespan, or shutting down): write it now
            await self.flush()
        await future

    def put_committing(
        self, event: dict[str, Any], on_durable: Callable[[], None] | None = None
    ) -> asyncio.Future[None]:
        """Queue one event for the next commit and return at once: a future that is done once
        the event is committed to the store (or spilled to disk), or failed with
        RecordsUnavailable. Raises RecordsUnavailable at once when that is already known.

        Without a running flusher the caller must `flush` (as `put_durable` does).
        `on_durable` is called by the writer itself, at once, when the event is durable (before
        the future's waiters run, which is a turn of the event loop later); it must not raise.
        """
        if self.spill_error is not None and self._outage:
            self.metrics.dropped.inc()
            raise RecordsUnavailable(
                f"not durable: the store is unreachable and {self.spill_error}"
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[event["id"]] = future
        if on_durable is not None:
            self._on_durable[event["id"]] = on_durable
        self._queue.append(event)  # durable events are never dropped for a full queue
        self._wake.set()
        return future

    def start(self) -> None:
        """Start the flusher task (at lifespan startup)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="readykit-records-writer")

    async def stop(self) -> None:
        """Stop the flusher and write everything still queued (at lifespan shutdown).

        Bounded by `stop_timeout_s`: if the store hangs, what is left goes to the spill file
        (replayed at the next start; ids make the replay idempotent) and `stop` returns.
        """
        self._stopping = True
        self._wake.set()
        drain = asyncio.ensure_future(self._drain())
        done, _ = await asyncio.wait({drain}, timeout=self.stop_timeout_s)
        if done:
            drain.result()
            return
        left = [*self._inflight, *self._take_all()]
        logger.error(
            "records: the store did not finish within %.0fs at shutdown; %d events go to %s",
            self.stop_timeout_s,
            len(left),
            self.spill_path,
        )
        data = "".join(json.dumps(e, default=repr) + "\n" for e in left).encode()
        self._maybe_spilled = True
        spill = asyncio.ensure_future(asyncio.to_thread(_append, self.spill_path, data))
        done, _ = await asyncio.wait({spill}, timeout=self.stop_timeout_s)
        failure = RecordsUnavailable("the records writer stopped before this event was written")
        if not done or spill.exception() is not None:
            self.metrics.dropped.inc(len(left))
            self._fail(left, failure)
        else:
            self.metrics.spilled.inc(len(left))
            self._release(left)
        self._fail_all(failure)

    async def _drain(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while len(self):
            before = len(self)
            await self.flush()
            if len(self) >= before:  # nothing moved: the store and the disk both refused
                break
        self._fail_all(RecordsUnavailable("the records writer stopped before this was written"))

    async def _run(self) -> None:
        while not self._stopping:
            if not self._wake.is_set():
                # asyncio.timeout, not wait_for: wait_for runs the wait in a task of its own,
                # two extra turns of the event loop per commit (each a full pass over the
                # requests in flight) before the flush even starts
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the writer must outlive any one bad batch
                logger.exception("records: a flush failed")

    async def flush(self) -> int:
        """Write what is queued (spilled batches first); the number of events taken off."""
        self.metrics.depth.set(len(self))  # sampled here, not on every put: puts are hot
        async with self._lock:
            if self._outage and self.clock() < self._retry_at:
                return await self._spill_queue()  # do not hammer a store that just failed
            if not await self._replay():
                return await self._spill_queue()
            taken = 0
            # the on-durable hooks of a committed batch (they send its held answers) run once
            # the next batch's write is on its way, so the two overlap
            hooks: list[Callable[[], None]] = []
            try:
                while self._queue or self._overflow:
                    batch = [self._take() for _ in range(min(self.batch_size, len(self)))]
                    taken += len(batch)
                    self._inflight = batch
                    started = time.perf_counter()
                    fresh = not self._unsure or self._unsure.isdisjoint(e["id"] for e in batch)
                    writing = self._write(batch, fresh=fresh)
                    try:
                        finished, rejected = step(writing)
                        hooks = _call(hooks)
                        if not finished:
                            rejected = await resume(writing, rejected)
                    except StoreUnavailable as exc:
                        hooks = _call(hooks)  # the batch before was committed: answer it now
                        self._note_outage(exc)
                        await self._spill(batch)
                        return taken + await self._spill_queue()
                    except BaseException:  # cancelled midway: the batch goes back to the head
                        # of the queue, its waiters keep waiting, and it is written next time
                        # as a replay (the store may have committed it: stored ids skipped)
                        self._queue.extendleft(reversed(batch))
                        self._unsure.update(e["id"] for e in batch)
                        raise
                    finally:
                        self._inflight = []
                    if not fresh:
                        self._unsure.difference_update(e["id"] for e in batch)
                    self.metrics.flush.observe(time.perf_counter() - started)
                    if rejected:
                        self.metrics.dropped.inc(len(rejected))
                        self._fail(rejected, RecordsUnavailable("the store rejected this event"))
                    hooks = self._release(batch, defer=True)
                    self._note_back()
                    if (self._queue or self._overflow) and (
                        self.clock() - self._flushed_at >= self.interval_s
                    ):  # under sustained load the queue never empties: anchor as time passes
                        hooks = _call(hooks)
                        await self._flushed()
            finally:
                _call(hooks)
            self.metrics.depth.set(len(self))
            await self._flushed()
            return taken

    async def _flushed(self) -> None:
        self._flushed_at = self.clock()
        if self.on_flush is not None:
            try:
                await self.on_flush()
            except Exception:
                logger.exception("records: the after-flush hook failed")

    async def _write(
        self, batch: list[dict[str, Any]], *, fresh: bool = False
    ) -> list[dict[str, Any]]:
        """Write `batch`; the events the store rejected (one bad event must not sink the rest).

        StoreUnavailable propagates: the caller spills.
        """
        try:
            await self.store.write(batch, fresh=fresh)
            return []
        except StoreUnavailable:
            raise
        except Exception:
            if len(batch) == 1:
                logger.exception("records: the store rejected event %s", batch[0].get("id"))
                return batch
        rejected: list[dict[str, Any]] = []
        for event in batch:
            rejected.extend(await self._write([event]))
        return rejected

    def _take(self) -> dict[str, Any]:
        return self._queue.popleft() if self._queue else self._overflow.popleft()

    def _take_all(self) -> list[dict[str, Any]]:
        batch = [*self._queue, *self._overflow]
        self._queue.clear()
        self._overflow.clear()
        return batch

    async def _spill_queue(self) -> int:
        batch = self._take_all()
        if batch:
            await self._spill(batch)
        self.metrics.depth.set(0)
        return len(batch)

    async def _spill(self, batch: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(e, default=repr) + "\n" for e in batch).encode()
        self._maybe_spilled = True
        try:
            await asyncio.to_thread(_append, self.spill_path, data)
        except OSError as exc:
            error = _describe(self.spill_path, exc)
            if self.spill_error != error:
                logger.error("records: %s; %d events dropped, readiness fails", error, len(batch))
            self.spill_error = error
            self.metrics.dropped.inc(len(batch))
            self._fail(batch, RecordsUnavailable(f"not durable: the store is down and {error}"))
            return
        if self.spill_error is not None:
            logger.info("records: the spill file %s is writable again", self.spill_path)
            self.spill_error = None
        self.metrics.spilled.inc(len(batch))
        self._release(batch)  # a durable event is safe once it is on disk

    async def _replay(self) -> bool:
        """Write the spill file to the store, in order; False if the store is still down.

        Streamed `batch_size` lines at a time; corrupt lines go to the quarantine file once the
        lines around them are stored. Several processes may share the file: inserts are
        idempotent by id, and it is deleted only under the spill lock with nothing left unread.
        A spill file that cannot be read (a directory, no permission) fails readiness and is
        left alone: the queue still reaches the store.
        """
        if not self._maybe_spilled:  # no thread hop per commit when nothing was spilled
            return True
        while True:
            try:
                events, bad, at = await asyncio.to_thread(
                    _read_spill, self.spill_path, self._replay_at, self.batch_size
                )
                if at is not None and at == self._replay_at:  # read to the end
                    done, torn = await asyncio.to_thread(_finish_replay, self.spill_path, at)
                    if torn:
                        await self._quarantine([torn])
                    if not done:
                        continue
                    at = None
            except Exception as exc:  # unreadable (a directory, no permission), or anything
                self._replay_failed(exc)  # else: readiness fails, the queue reaches the store
                return True
            if events:
                try:
                    rejected = await self._write(events)
                except StoreUnavailable as exc:
                    self._note_outage(exc)
                    return False  # read again from the same place: stored ids are skipped
                if rejected:
                    bad += [json.dumps(e, default=repr).encode() + b"\n" for e in rejected]
                self.metrics.replayed.inc(len(events) - len(rejected))
            if bad:
                await self._quarantine(bad)
            self._replay_at = at
            if at is None:
                break
        self._maybe_spilled = False
        self.replay_error = None
        self._note_back()
        return True

    def _replay_failed(self, exc: Exception) -> None:
        error = _describe(self.spill_path, exc, "read")
        if self.replay_error != error:
            logger.error("records: %s; its events are not replayed, readiness fails", error)
        self.replay_error = error

    async def _quarantine(self, lines: list[bytes]) -> None:
        try:
            await asyncio.to_thread(_append, self.quarantine_path, b"".join(lines))
        except OSError as exc:
            logger.error("records: %d corrupt spill lines lost (%s)", len(lines), exc)
            self.metrics.dropped.inc(len(lines))
            return
        self.quarantined += len(lines)
        self.metrics.quarantined.inc(len(lines))
        logger.warning(
            "records: %d corrupt spill lines moved to %s; the rest of the spill file replays",
            len(lines),
            self.quarantine_path,
        )

    def check_spill(self) -> None:
        """Readiness: fails while the store is down and the spill file cannot be written."""
        if self.spill_error is not None:
            raise RecordsUnavailable(self.spill_error)
        if self.replay_error is not None:
            raise RecordsUnavailable(self.replay_error)

    def check_quarantine(self) -> None:
        """Health warning: corrupt spill lines wait in the quarantine file for a person."""
        if self.quarantine_path.exists():
            count = self.quarantined or "some"
            raise RecordsUnavailable(
                f"{count} corrupt spill lines in {self.quarantine_path}; inspect, then delete it"
            )

    def _note_outage(self, exc: Exception) -> None:
        self._retry_at = self.clock() + self.interval_s
        if not self._outage:
            self._outage = True
            logger.warning("records store unreachable (%s); spilling to %s", exc, self.spill_path)

    def _note_back(self) -> None:
        self.spill_error = None  # the store takes writes: nothing needs the spill file
        if self._outage:
            self._outage = False
            logger.info("records store is back; spilled events replayed")

    def _release(
        self, batch: list[dict[str, Any]], *, defer: bool = False
    ) -> list[Callable[[], None]]:
        """Mark `batch` durable: its waiters' futures done, its on-durable hooks called (or,
        with `defer`, returned for the caller to call)."""
        waiters, on_durable = self._waiters, self._on_durable
        hooks: list[Callable[[], None]] = []
        for event in batch:
            id_ = event.get("id", "")
            future = waiters.pop(id_, None)
            hook = on_durable.pop(id_, None) if on_durable else None
            if future is not None and not future.done():
                future.set_result(None)
                if hook is not None:
                    hooks.append(hook)
        return hooks if defer else _call(hooks)

    def _fail(self, batch: list[dict[str, Any]], error: Exception) -> None:
        for event in batch:
            self._on_durable.pop(event.get("id", ""), None)
            future = self._waiters.pop(event.get("id", ""), None)
            if future is not None and not future.done():
                future.set_exception(error)

    def _fail_all(self, error: Exception) -> None:
        self._on_durable.clear()
        waiters, self._waiters = self._waiters, {}
        for future in waiters.values():
            if not future.done():
                future.set_exception(error)
