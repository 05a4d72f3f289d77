"""The rate limiter's core in memory: answered without awaiting, exactly as `limits` answers."""

from __future__ import annotations

import pytest
import time_machine
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES as LIMITS_STRATEGIES
from limits.strategies import RateLimiter
from prometheus_client import CollectorRegistry

from limits_reference import limits_pick
from readykit.guards.ratelimit import Policy, RateLimiterCore, RateLimitMetrics, parse_policies

ALL = ["fixed-window", "moving-window", "sliding-window-counter"]


def make_core(strategy: str, url: str = "memory://") -> RateLimiterCore:
    return RateLimiterCore(
        url, strategy, fail_open=True, metrics=RateLimitMetrics(CollectorRegistry())
    )


def policy(text: str) -> Policy:
    default, _ = parse_policies({"default": text})
    assert default is not None
    return default


def limits_answer(limiter: RateLimiter, policy: Policy, key: str) -> tuple[bool, str, int, float]:
    """What `limits` itself says, item by item: hit, then window stats; the first violated item
    decides, else the one with the fewest left."""
    outcomes = []
    for item_name, item in zip(policy.names, policy.items, strict=True):
        ok = limiter.hit(item, item_name, key)
        outcomes.append((ok, limiter.get_window_stats(item, item_name, key)))
    return limits_pick(policy, outcomes)


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("text", ["3/minute;5/hour", "3/minute"])  # one item: the fast path
def test_hit_now_answers_as_limits_does_through_windows(strategy: str, text: str) -> None:
    core = make_core(strategy)
    assert core.immediate
    reference = LIMITS_STRATEGIES[strategy](MemoryStorage())
    both = policy(text)
    with time_machine.travel(1_800_000_017, tick=False) as clock:
        for step in range(16):
            assert core.hit_now(both, "client") == limits_answer(reference, both, "client"), step
            clock.shift(13)  # the minute window turns over every few steps; the hour's fills


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", ALL)
async def test_awaiting_hit_in_memory_is_hit_now(strategy: str) -> None:
    awaited, immediate = make_core(strategy), make_core(strategy)
    limit = policy("2/minute")
    with time_machine.travel(1_800_000_017, tick=False):
        answers = [await awaited.hit(limit, "k") for _ in range(3)]
        assert answers == [immediate.hit_now(limit, "k") for _ in range(3)]
    assert [a[0] for a in answers if a] == [True, True, False]
    assert answers[0] is not None
    assert answers[0][:3] == (True, "default", 1)


def test_exactly_the_limit_is_allowed_and_keys_count_apart() -> None:
    core = make_core("fixed-window")
    limit = policy("50/minute")
    answers = [core.hit_now(limit, "a") for _ in range(100)]
    assert sum(1 for a in answers if a and a[0]) == 50
    assert core.hit_now(limit, "b") == (True, "default", 49, pytest.approx(60, abs=1))


@pytest.mark.anyio
async def test_reset_forgets_every_counter() -> None:
    core = make_core("moving-window")
    limit = policy("1/minute")
    assert core.hit_now(limit, "a") is not None
    await core.reset()
    answer = core.hit_now(limit, "a")
    assert answer is not None
    assert answer[0]
    assert await core.check()


def test_a_redis_limit_is_not_immediate_and_refuses_hit_now() -> None:
    core = make_core("fixed-window", "redis://127.0.0.1:1/15")  # never contacted here
    assert not core.immediate
    with pytest.raises(RuntimeError, match="await hit"):
        core.hit_now(policy("1/minute"), "a")
