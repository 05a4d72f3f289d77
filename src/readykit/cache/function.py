"""`@kit.cached(ttl=..., tags=...)`: an async function's results, cached and computed once.

Values are stored as JSON, never pickled: a shared Redis must not be able to make the service
run code. Concurrent callers of a cold key wait for one computation (single-flight); a raised
exception is not cached.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import enum
import functools
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from readykit.cache.store import Cache
from readykit.errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")


_VALUES = (str, int, float, bool, type(None), enum.Enum, uuid.UUID, decimal.Decimal,
           datetime.date, datetime.time, datetime.timedelta)  # fmt: skip


def _unstable(value: Any, depth: int = 0) -> type | None:
    """The type of the first part of `value` that has no value-based key, or None."""
    if isinstance(value, _VALUES):
        return None
    if isinstance(value, list | tuple | frozenset | set) and depth < 8:
        return next((t for v in value if (t := _unstable(v, depth + 1)) is not None), None)
    if isinstance(value, dict) and depth < 8:
        for k, v in value.items():
            found = _unstable(k, depth + 1) or _unstable(v, depth + 1)
            if found is not None:
                return found
        return None
    return type(value)


def _default_key(label: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The arguments as the key, when they are values; anything else is refused: an object's
    default repr differs per instance (a database session, a request), so it would never hit."""
    if not args and not kwargs:
        return ""
    for value in (*args, *kwargs.values()):
        unstable = _unstable(value)
        if unstable is not None:
            raise ConfigurationError(
                f"cached: {label} was called with a {unstable.__name__}, which makes no stable "
                "cache key; pass key= to build one from the arguments that matter, e.g. "
                "@kit.cached(ttl=60, key=lambda session, code: code)"
            )
    return ":" + json.dumps([args, kwargs], sort_keys=True, default=str)


class SingleFlight:
    """At most one computation per key at a time; the others await its result."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[Any]] = {}

    async def run(self, key: str, compute: Callable[[], Awaitable[R]]) -> R:
        """The result of `compute()`, shared with every caller that asks while it runs.

        A computing caller that is cancelled (its time limit, its client gone) cancels nobody
        else: the callers waiting on it compute again, one of them for the others."""
        while (running := self._running.get(key)) is not None:
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not running.cancelled() or (task is not None and task.cancelling()):
                    raise  # this caller is the one cancelled
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await compute()
        except asyncio.CancelledError:
            future.cancel()  # the waiters try again
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(result)
            return result
        finally:
            if self._running.get(key) is future:
                del self._running[key]


def cached(
    cache: Cache,
    *,
    ttl: float,
    tags: Iterable[str] = (),
    key: Callable[..., str] | None = None,
    name: str | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate an async function so its JSON-able results are cached for `ttl` seconds.

    Args:
        tags: names that `invalidate(tag)` drops the entries by.
        key: builds the cache key from the call's arguments; default: the arguments as JSON.
        name: the key prefix and metrics label; default: the function's qualified name.
    """
    if ttl <= 0:
        raise ConfigurationError(f"cached: ttl must be positive, not {ttl!r}")
    tag_tuple = tuple(tags)

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if not asyncio.iscoroutinefunction(fn):
            raise ConfigurationError(f"cached: {fn!r} is not an async function")
        label = name or f"{fn.__module__}.{fn.__qualname__}"
        hits, misses = cache.metrics.hits.labels(label), cache.metrics.misses.labels(label)
        flights = SingleFlight()

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            cache_key = f"fn:{label}:" + (
                key(*args, **kwargs) if key is not None else _default_key(label, args, kwargs)
            )
            stored = await cache.get(cache_key)
            if stored is not None:
                hits.inc()
                return json.loads(stored)  # type: ignore[no-any-return]

            async def compute() -> R:
                again = await cache.get(cache_key)  # another flight may have just stored it
                if again is not None:
                    hits.inc()
                    return json.loads(again)  # type: ignore[no-any-return]
                misses.inc()
                result = await fn(*args, **kwargs)
                try:
                    encoded = json.dumps(result, separators=(",", ":")).encode()
                except (TypeError, ValueError) as exc:
                    raise ConfigurationError(
                        f"cached: {label} returned a {type(result).__name__}, which is not "
                        "JSON; return dicts, lists, strings and numbers"
                    ) from exc
                await cache.set(cache_key, encoded, ttl, tag_tuple)
                return result

            return await flights.run(cache_key, compute)

        return wrapper

    return decorate
