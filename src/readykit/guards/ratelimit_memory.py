"""In-process rate limits on `limits`' synchronous memory storage: answered without awaiting.

Each hit returns what the caller needs to pick the reported item: allowed, requests left in the
window and the window's reset time (epoch seconds), the same values `limits` gives from
`hit()` then `get_window_stats()`.
"""

from __future__ import annotations

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


class MemoryCounter:
    """One strategy on one `limits` memory storage; every call is synchronous."""

    def __init__(self, strategy: str) -> None:
        # memory cannot fail, so no exception wrapping on every call
        self.storage = MemoryStorage(wrap_exceptions=False)
        self.limiter = STRATEGIES[strategy](self.storage)
        self._fixed = strategy == "fixed-window"

    def hit(self, item: RateLimitItem, name: str, key: str) -> WindowHit:
        """Count one request against `item` for (`name`, `key`)."""
        if self._fixed:
            # the counter `incr` returns is what `get_window_stats` would read back, and the
            # reset is the key's expiry: one lookup saved over hit() + get_window_stats()
            storage_key = item.key_for(name, key)
            count = self.storage.incr(storage_key, item.get_expiry())
            return (
                count <= item.amount,
                max(0, item.amount - count),
                self.storage.get_expiry(storage_key),
            )
        # moving window and sliding window counter: the hit answers only yes/no, and the
        # window (its oldest entry, or the weighted count) takes a read of its own
        allowed = self.limiter.hit(item, name, key)
        stats = self.limiter.get_window_stats(item, name, key)
        return allowed, stats.remaining, stats.reset_time

    def reset(self) -> None:
        """Forget every counter."""
        self.storage.reset()
