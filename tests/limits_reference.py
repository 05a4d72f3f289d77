"""What `limits` itself answers for a policy, item by item: the oracle the rate limiter's core
is compared with, in memory and on Redis."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from limits.util import WindowStats

from readykit.guards.ratelimit import Policy


def limits_pick(
    policy: Policy, outcomes: Sequence[tuple[bool, WindowStats]]
) -> tuple[bool, str, int, float]:
    """From `limits`' hit and window stats per item: the first violated item decides, else the
    one with the fewest left; (allowed, its name, remaining, seconds to reset)."""
    allowed, name, remaining, reset_in = True, policy.name, math.inf, 0.0
    for item_name, (ok, stats) in zip(policy.names, outcomes, strict=True):
        left = max(0.0, stats.reset_time - time.time())
        if not ok and allowed:
            allowed, name, remaining, reset_in = False, item_name, stats.remaining, left
        elif allowed and stats.remaining < remaining:
            name, remaining, reset_in = item_name, stats.remaining, left
    return allowed, name, int(remaining), reset_in
