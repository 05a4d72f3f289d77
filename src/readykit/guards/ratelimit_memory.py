"""In-process rate limits, answered without awaiting.

Each hit returns what the caller needs to pick the reported item: allowed, requests left in the
window and the window's reset time (epoch seconds), the same values `limits` gives from
`hit()` then `get_window_stats()` on its `MemoryStorage`.

The fixed window and the sliding window counter (the default) are counted here, in ordered
dicts, with `limits`' own arithmetic: its `MemoryStorage` takes a lock per key, formats two key
strings per sliding-window hit and starts a `threading.Timer` thread every 10 ms while hits come
in, to expire keys. Inside a busy server that thread's GIL hand-offs cost more than the counting
(see docs/decisions.md). Here, keys expire as they are hit: the keys of one window length are
kept in one dict in the order their windows end, and each hit drops expired keys from the front
of its dict, so memory follows the clients active within a window (a long window elsewhere
holds nothing up) and no pass over all keys ever runs. `tests/guards/test_ratelimit_memory.py`
pins the answers against `limits`' storage, step by step, over random clients, limits and
clocks. The moving window (a log of every hit) stays on `limits`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from math import floor, inf
from typing import Any

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

WindowHit = tuple[bool, int, float]
"""One item's outcome: (allowed, remaining, reset time in epoch seconds)."""

STRATEGIES: dict[str, type[RateLimiter]] = {
    "fixed-window": FixedWindowRateLimiter,
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}

_SWEEP_PER_HIT = 2  # expired keys dropped from the front per hit: enough to keep up with arrivals
MAX_KEYS = 100_000
"""Clients counted at once per window length (~35 MB at most); past it the client whose window
ends first (fixed) or who was seen longest ago (sliding) is forgotten, so a flood of made-up
addresses cannot grow memory without bound (a forgotten client starts counting afresh)."""

Slot = tuple[str, str, int]  # (item name, client key, amount), within one window length


class _Windows:
    """The keys of each window length in a dict of their own, in the order their windows end."""

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = MAX_KEYS) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self.by_expiry: dict[int, OrderedDict[Slot, list[Any]]] = {}

    def _of(self, expiry: int) -> OrderedDict[Slot, list[Any]]:
        windows = self.by_expiry.get(expiry)
        if windows is None:
            windows = self.by_expiry[expiry] = OrderedDict()
        return windows

    def __len__(self) -> int:
        return sum(len(windows) for windows in self.by_expiry.values())

    def state(self, item: RateLimitItem, name: str, key: str) -> list[Any] | None:
        """The counts kept for (`name`, `key`) under `item`, if any."""
        windows = self.by_expiry.get(item.get_expiry())
        return None if windows is None else windows.get((name, key, item.amount))

    def clear(self) -> None:
        self.by_expiry.clear()


class FixedWindows(_Windows):
    """Fixed windows as `limits`' memory storage counts them: a window opens at a key's first
    hit and lasts the item's expiry; a refused hit still counts. Per window length: slot ->
    [expires at, count], in the order the windows opened."""

    def hit(self, item: RateLimitItem, name: str, key: str) -> WindowHit:
        now = self.clock()
        expiry = item.get_expiry()
        amount = item.amount
        slot = (name, key, amount)
        windows = self.by_expiry.get(expiry) or self._of(expiry)
        state = windows.get(slot)
        if state is None or state[0] <= now:  # a new window: it ends after every other one
            state = windows[slot] = [now + expiry, 0]
            windows.move_to_end(slot)
            if len(windows) > self.max_keys:
                windows.popitem(last=False)
        count = state[1] = state[1] + 1
        self._sweep(windows, now)
        return count <= amount, max(0, amount - int(count)), state[0]

    @staticmethod
    def _sweep(windows: OrderedDict[Slot, list[Any]], now: float) -> None:
        for _ in range(_SWEEP_PER_HIT):
            slot, state = next(iter(windows.items()))
            if state[0] > now:
                return
            del windows[slot]


class SlidingWindows(_Windows):
    """The sliding window counter as `limits` computes it: windows aligned on multiples of the
    expiry, the previous window's count weighted by the share of it still in the sliding
    window; a refused hit does not count. Per window length: slot -> [current window's index,
    its count, the count of the window before it], least recently hit first."""

    def hit(self, item: RateLimitItem, name: str, key: str) -> WindowHit:
        now = self.clock()
        expiry = item.get_expiry()
        amount = item.amount
        slot = (name, key, amount)
        # the window indexes exactly as `limits` forms its keys (so float rounding agrees)
        current = int(now / expiry)
        previous = int((now - expiry) / expiry)
        windows = self.by_expiry.get(expiry) or self._of(expiry)
        state = windows.get(slot)
        if state is None:
            state = windows[slot] = [current, 0, 0]
            if len(windows) > self.max_keys:
                windows.popitem(last=False)
        else:
            windows.move_to_end(slot)
            if current > state[0]:  # a newer window: the current one becomes the previous
                state[2] = state[1] if current == state[0] + 1 else 0
                state[0], state[1] = current, 0
        previous_count = _count_at(state, previous)
        current_count = _count_at(state, current)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous_count else 0.0
        allowed = (
            amount >= 1
            and floor(previous_count * previous_ttl / expiry + current_count) + 1 <= amount
        )
        if allowed:
            _add_at(state, current)
            current_count += 1
        self._sweep(windows, expiry, now)
        remaining = max(0, amount - floor(previous_count * previous_ttl / expiry + current_count))
        if not (previous_count or current_count):
            return allowed, remaining, now
        previous_reset_in = current_reset_in = inf
        if previous_count:
            previous_reset_in = previous_ttl % (expiry / previous_count)
        if current_count:
            current_reset_in = ((1 - ((now / expiry) % 1)) * expiry + expiry) % expiry
        return allowed, remaining, now + min(previous_reset_in, current_reset_in)

    @staticmethod
    def _sweep(windows: OrderedDict[Slot, list[Any]], expiry: int, now: float) -> None:
        """Drop keys from the front whose two windows are both over."""
        for _ in range(_SWEEP_PER_HIT):
            slot, state = next(iter(windows.items()))
            if state[0] + 1 >= int(now / expiry):
                return
            del windows[slot]


def _count_at(state: list[int], index: int) -> int:
    """The count of window `index` (0 for a window this key did not count)."""
    if index == state[0]:
        return state[1]
    if index == state[0] - 1:
        return state[2]
    return 0


def _add_at(state: list[int], index: int) -> None:
    """Count one hit in window `index`: the newest the key has seen, or (the wall clock went
    back) the one before it, as `limits` counts in that window's key; only a clock gone back
    further starts counting again from that window."""
    if index == state[0]:
        state[1] += 1
    elif index == state[0] - 1:
        state[2] += 1
    else:
        state[0], state[1], state[2] = index, 1, 0


class MemoryCounter:
    """One strategy in process memory; every call is synchronous."""

    def __init__(self, strategy: str, clock: Callable[[], float] = time.time) -> None:
        self.counter: FixedWindows | SlidingWindows | None = None
        self.limiter: RateLimiter | None = None
        if strategy == "fixed-window":
            self.counter = FixedWindows(clock)
        elif strategy == "sliding-window-counter":
            self.counter = SlidingWindows(clock)
        else:  # the moving window keeps a log of every hit: `limits` does that well
            self.limiter = STRATEGIES[strategy](MemoryStorage(wrap_exceptions=False))

    def hit(self, item: RateLimitItem, name: str, key: str) -> WindowHit:
        """Count one request against `item` for (`name`, `key`)."""
        if self.counter is not None:
            return self.counter.hit(item, name, key)
        assert self.limiter is not None
        # the hit answers only yes/no; the window's oldest entry takes a read of its own
        allowed = self.limiter.hit(item, name, key)
        stats = self.limiter.get_window_stats(item, name, key)
        return allowed, stats.remaining, stats.reset_time

    def reset(self) -> None:
        """Forget every counter."""
        if self.counter is not None:
            self.counter.clear()
        if self.limiter is not None:
            self.limiter.storage.reset()
