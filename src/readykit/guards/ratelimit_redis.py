"""Redis rate limits, coalesced: the hits queued in one event-loop iteration go out as one pipeline.

Each hit runs `limits`' own Lua scripts on `limits`' own keys (`LIMITS:` + `item.key_for(...)`;
the sliding window counter's `{key}` and `{key}/-1`), so counters are shared with `limits` and
with every other instance. Per item the pipeline carries the strategy's write (the script
`limits`' `hit()` runs) then its read (what `get_window_stats()` reads), and each waiting caller
gets its own results. When the round trip fails, every caller of that batch gets None and
`on_error` is called once.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from math import floor, inf
from typing import Any, cast

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.storage.redis.bridge import RedisBridge
from redis.asyncio import Connection, ConnectionPool, Redis
from redis.connection import HiredisRespSerializer
from redis.exceptions import NoScriptError, RedisError
from redis.utils import HIREDIS_AVAILABLE

from readykit.guards.ratelimit_memory import WindowHit

# Commands are built of bytes: redis-py passes bytes through as they are, where it would
# otherwise test and encode every argument (the largest client cost per hit)
Command = tuple[bytes, ...]
Pair = tuple[Command, Command]
EVALSHA, TTL, ONE = b"EVALSHA", b"TTL", b"1"


class _Script:
    """A `limits` Lua script, called by its SHA1 (loaded once per connection to a server)."""

    def __init__(self, text: bytes) -> None:
        self.text = text
        self.sha = hashlib.sha1(text).hexdigest().encode()  # noqa: S324 — Redis names it so

    def call(self, keys: Sequence[bytes], *args: bytes) -> Command:
        return (EVALSHA, self.sha, b"%d" % len(keys), *keys, *args)


INCR_EXPIRE = _Script(RedisBridge.SCRIPT_INCR_EXPIRE)
ACQUIRE_MOVING_WINDOW = _Script(RedisBridge.SCRIPT_ACQUIRE_MOVING_WINDOW)
MOVING_WINDOW = _Script(RedisBridge.SCRIPT_MOVING_WINDOW)
ACQUIRE_SLIDING_WINDOW = _Script(RedisBridge.SCRIPT_ACQUIRE_SLIDING_WINDOW)
SLIDING_WINDOW = _Script(RedisBridge.SCRIPT_SLIDING_WINDOW)
PREFIX = f"{RedisStorage.PREFIX}:"

# redis-py's own hiredis packer (its synchronous client's), when hiredis is installed; called
# through Any: redis-py 8.2 left its constructor untyped, earlier releases typed it
_SERIALIZER: Any = cast(Any, HiredisRespSerializer)() if HIREDIS_AVAILABLE else None


class PackedConnection(Connection):
    """redis-py's asyncio connection packing commands as its synchronous client does: with
    redis-py's hiredis serializer (hiredis' C packer; split command names, bytes-like
    arguments and DataError as redis-py's own packer has them).

    redis-py's asyncio connection packs every argument in Python. That was the largest cost of
    a batched round trip. Everything else stays redis-py's: the pipeline, the reply parser, the
    errors. Without hiredis, redis-py's Python packer.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        if _SERIALIZER is None:
            return super().pack_command(*args)
        return _SERIALIZER.pack(*args)  # type: ignore[no-any-return]


class _Strategy:
    """How one `limits` strategy hits and reads a window on Redis, as pipeline commands."""

    scripts: tuple[_Script, ...] = ()

    def commands(self, item: RateLimitItem, name: str, key: str, now: float) -> Pair:
        """The write (the hit) and the read (the window stats)."""
        raise NotImplementedError

    def parse(self, item: RateLimitItem, wrote: Any, read: Any, now: float) -> WindowHit:
        raise NotImplementedError


class _FixedWindow(_Strategy):
    # limits: storage.incr() (incr_expire.lua); stats: GET and TTL. The count incr returns is
    # the GET's answer, so the read is the TTL alone.
    scripts = (INCR_EXPIRE,)

    def commands(self, item: RateLimitItem, name: str, key: str, now: float) -> Pair:
        storage_key = (PREFIX + item.key_for(name, key)).encode()
        return (
            INCR_EXPIRE.call((storage_key,), b"%d" % item.get_expiry(), ONE),
            (TTL, storage_key),
        )

    def parse(self, item: RateLimitItem, wrote: Any, read: Any, now: float) -> WindowHit:
        count = int(wrote)
        return count <= item.amount, max(0, item.amount - count), max(int(read), 0) + now


class _MovingWindow(_Strategy):
    # limits: acquire_entry() (acquire_moving_window.lua); stats: get_moving_window()
    scripts = (ACQUIRE_MOVING_WINDOW, MOVING_WINDOW)

    def commands(self, item: RateLimitItem, name: str, key: str, now: float) -> Pair:
        storage_key = (PREFIX + item.key_for(name, key)).encode()
        expiry = item.get_expiry()
        amount = b"%d" % item.amount
        return (
            ACQUIRE_MOVING_WINDOW.call(
                (storage_key,), repr(now).encode(), amount, b"%d" % expiry, ONE
            ),
            MOVING_WINDOW.call((storage_key,), repr(now - expiry).encode(), amount),
        )

    def parse(self, item: RateLimitItem, wrote: Any, read: Any, now: float) -> WindowHit:
        start, count = (float(read[0]), int(read[1])) if read else (now, 0)
        return bool(wrote), item.amount - count, start + item.get_expiry()


class _SlidingWindowCounter(_Strategy):
    # limits: acquire_sliding_window_entry() (acquire_sliding_window.lua); stats:
    # get_sliding_window() (sliding_window.lua), then the arithmetic of
    # SlidingWindowCounterRateLimiter.get_window_stats, which has no storage-free entry point
    scripts = (ACQUIRE_SLIDING_WINDOW, SLIDING_WINDOW)

    def commands(self, item: RateLimitItem, name: str, key: str, now: float) -> Pair:
        current = f"{PREFIX}{{{item.key_for(name, key)}}}".encode()
        keys = (current + b"/-1", current)
        expiry = b"%d" % item.get_expiry()
        return (
            ACQUIRE_SLIDING_WINDOW.call(keys, b"%d" % item.amount, expiry, ONE),
            SLIDING_WINDOW.call(keys, expiry),
        )

    def parse(self, item: RateLimitItem, wrote: Any, read: Any, now: float) -> WindowHit:
        window = read or (0, 0, 0, 0)
        previous_count = int(window[0] or 0)
        previous_expires_in = max(0.0, float(window[1] or 0)) / 1000
        current_count = int(window[2] or 0)
        current_expires_in = max(0.0, float(window[3] or 0)) / 1000
        expiry = item.get_expiry()
        weighted = previous_count * previous_expires_in / expiry + current_count
        remaining = max(0, item.amount - floor(weighted))
        if not (previous_count or current_count):
            return bool(wrote), remaining, now
        previous_reset_in, current_reset_in = inf, inf
        if previous_count:
            previous_reset_in = previous_expires_in % (expiry / previous_count)
        if current_count:
            current_reset_in = current_expires_in % expiry
        return bool(wrote), remaining, now + min(previous_reset_in, current_reset_in)


STRATEGIES: dict[str, type[_Strategy]] = {
    "fixed-window": _FixedWindow,
    "moving-window": _MovingWindow,
    "sliding-window-counter": _SlidingWindowCounter,
}

Waiter = tuple[
    "asyncio.Future[list[WindowHit] | None]", Sequence[str], Sequence[RateLimitItem], str
]
# the most commands one round trip carries: Redis runs a pipeline's scripts at ~10 µs a command
# here, so 1,000 answer in ~10 ms (0.05-0.2 s for 1,300-2,000 on this 2-core machine under
# load), inside the storage timeout; a larger burst goes as several round trips, in turn
MAX_BATCH_COMMANDS = 1_000


def _settle(batch: list[Waiter], hits: list[WindowHit] | None) -> None:
    for future, *_ in batch:
        if not future.done():
            future.set_result(hits)


class RedisBatcher:
    """Queues hits from concurrent requests and sends each loop iteration's as one pipeline.

    Args:
        url: `redis://` or `rediss://` URL.
        strategy: a `limits` strategy name.
        timeout_s: connect and socket timeout, so a dead Redis costs a batch that long at most.
        on_error: called once per failed round trip with the exception.

    `round_trips` counts pipelines sent (a retry after a script cache flush counts too).
    """

    def __init__(
        self,
        url: str,
        strategy: str,
        *,
        timeout_s: float,
        on_error: Callable[[Exception], None],
    ) -> None:
        # our own pools, so the kit can close them at shutdown. The batches' pool has no
        # socket timeout: one timeout bounds a whole round trip instead of one per reply read
        self.timeout_s = timeout_s
        packed: dict[str, Any] = {}
        if url.startswith("redis://"):  # rediss:// and unix:// keep their own classes
            packed["connection_class"] = PackedConnection
        self.pool = ConnectionPool.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=None, **packed
        )
        self.client = Redis(connection_pool=self.pool)
        # limits' own storage, for what is not on the request path (readiness, reset)
        self._storage_pool = ConnectionPool.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        options: dict[str, Any] = {"connection_pool": self._storage_pool}  # typed narrowly
        self.storage = RedisStorage(
            f"async+{url}", wrap_exceptions=True, implementation="redispy", **options
        )
        self.strategy = STRATEGIES[strategy]()
        self.on_error = on_error
        self.round_trips = 0
        self._queue: list[Waiter] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self._scripts_loaded = False

    def hit(
        self, names: Sequence[str], items: Sequence[RateLimitItem], key: str
    ) -> asyncio.Future[list[WindowHit] | None]:
        """Queue one hit on each item; the future gives one WindowHit per item, or None."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[WindowHit] | None] = loop.create_future()
        self._queue.append((future, names, items, key))
        if len(self._queue) == 1:
            # the task's first step runs in the loop's next iteration, after every callback
            # already ready in this one has had its chance to queue a hit; a batch still in
            # flight does not hold this one back (waiting for it measured slower)
            task = loop.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        return future

    async def _flush(self) -> None:
        batch, self._queue = self._queue, []
        chunks = self._chunks(batch)
        try:
            for at, (waiters, commands) in enumerate(chunks):
                if not await self._round_trip(waiters, commands):
                    for later, _ in chunks[at + 1 :]:  # the storage failed: not tried again now
                        _settle(later, None)
                    return
        except BaseException:
            for future, *_ in batch:
                future.cancel()
            raise

    def _chunks(self, batch: list[Waiter]) -> list[tuple[list[Waiter], list[Command]]]:
        """The batch's commands in round trips of at most MAX_BATCH_COMMANDS: a burst of
        thousands of concurrent requests in one pipeline outran the storage timeout, and a
        late answer is an outage (fail open: everything let through) an attacker could cause
        by load alone."""
        strategy = self.strategy
        now = time.time()
        chunks: list[tuple[list[Waiter], list[Command]]] = [([], [])]
        for waiter in batch:
            _, names, items, key = waiter
            commands = [
                command
                for name, item in zip(names, items, strict=True)
                for command in strategy.commands(item, name, key, now)
            ]
            if chunks[-1][1] and len(chunks[-1][1]) + len(commands) > MAX_BATCH_COMMANDS:
                chunks.append(([], []))
            chunks[-1][0].append(waiter)
            chunks[-1][1].extend(commands)
        return chunks

    async def _round_trip(self, batch: list[Waiter], commands: list[Command]) -> bool:
        """Send `commands` and answer `batch`'s callers; False if the storage failed."""
        strategy = self.strategy
        try:
            replies = await self._send(commands)
        except (RedisError, OSError) as exc:  # TimeoutError included
            self._scripts_loaded = False  # the server may come back without them
            self.on_error(exc)
            _settle(batch, None)
            return False
        now = time.time()
        failed: Exception | None = None
        at = 0
        for future, _, items, _ in batch:
            hits: list[WindowHit] | None = []
            for item in items:
                wrote, read = replies[at], replies[at + 1]
                at += 2
                if isinstance(wrote, Exception) or isinstance(read, Exception):
                    failed = failed or (wrote if isinstance(wrote, Exception) else read)
                    hits = None
                elif hits is not None:
                    hits.append(strategy.parse(item, wrote, read, now))
            if not future.done():
                future.set_result(hits)
        if failed is not None:
            self.on_error(failed)
        return True

    async def _send(self, commands: list[Command]) -> list[Any]:
        """Replies to `commands` in order, a command's error as its reply."""
        replies = await self._pipeline(commands)
        # Redis lost its script cache (a restart between two connections, SCRIPT FLUSH):
        # a write that found no script did nothing, so it and its read go again; a read alone
        # is safe to repeat
        again: list[int] = []
        for at in range(0, len(commands), 2):
            if isinstance(replies[at], NoScriptError):
                again += (at, at + 1)
            elif isinstance(replies[at + 1], NoScriptError):
                again.append(at + 1)
        if again:
            self._scripts_loaded = False
            retried = await self._pipeline([commands[at] for at in again])
            for at, reply in zip(again, retried, strict=True):
                replies[at] = reply
        return replies

    async def _pipeline(self, commands: list[Command]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        load = not self._scripts_loaded
        if load:  # in the same round trip, ahead of the commands that call them
            for script in self.strategy.scripts:
                pipe.execute_command(b"SCRIPT", b"LOAD", script.text)
        for command in commands:
            pipe.execute_command(*command)
        self.round_trips += 1
        async with asyncio.timeout(self.timeout_s):  # cancelled, redis-py drops the connection
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if load:
            loaded = len(self.strategy.scripts)
            self._scripts_loaded = not any(isinstance(r, Exception) for r in replies[:loaded])
            replies = replies[loaded:]
        return replies

    async def check(self) -> bool:
        """True if Redis answers a PING."""
        return bool(await self.storage.check())

    async def reset(self) -> None:
        """Delete every `limits` counter on this Redis (all `LIMITS:*` keys)."""
        await self.storage.reset()

    async def aclose(self) -> None:
        """Close the pools' connections."""
        await self.pool.aclose()
        await self._storage_pool.aclose()
