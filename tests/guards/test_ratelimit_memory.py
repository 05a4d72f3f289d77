"""The in-process window counters answer exactly as `limits`' own memory storage, and forget
clients whose windows are over without a pass over all keys."""

from __future__ import annotations

import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

from readykit.guards.ratelimit_memory import FixedWindows, MemoryCounter, SlidingWindows

LIMITS = ["1/second", "2/second", "3/minute", "5/10 seconds", "10/hour", "0/minute"]
START = 1_800_000_000.0

steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),  # client
        st.integers(0, len(LIMITS) - 1),  # which limit
        # seconds to the next hit: mostly within a window, sometimes across one or many
        st.one_of(st.floats(0, 2, allow_nan=False), st.sampled_from([0.0, 7.5, 61.0, 3601.0])),
    ),
    min_size=1,
    max_size=60,
)


def _compare(strategy: str, limiter_type: type, script: list[tuple[str, int, float]]) -> None:
    items = [parse(text) for text in LIMITS]
    ours = MemoryCounter(strategy)
    reference = limiter_type(MemoryStorage())
    with time_machine.travel(START, tick=False) as clock:
        for step, (client, which, advance) in enumerate(script):
            item = items[which]
            name = f"policy{which}"
            allowed = reference.hit(item, name, client)
            stats = reference.get_window_stats(item, name, client)
            expected = (allowed, stats.remaining, stats.reset_time)
            assert ours.hit(item, name, client) == expected, (step, script[: step + 1])
            clock.shift(advance)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_sliding_window_counter_answers_as_limits(script: list[tuple[str, int, float]]) -> None:
    _compare("sliding-window-counter", SlidingWindowCounterRateLimiter, script)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_fixed_window_answers_as_limits(script: list[tuple[str, int, float]]) -> None:
    _compare("fixed-window", FixedWindowRateLimiter, script)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def test_sliding_windows_forget_clients_whose_windows_are_over() -> None:
    clock = Clock()
    counter = SlidingWindows(clock)
    minute = parse("100/minute")
    for i in range(1000):  # a thousand clients, once each
        counter.hit(minute, "default", f"client-{i}")
    assert len(counter.windows) == 1000
    clock.now += 120  # both of their windows are over
    for _ in range(600):  # one client keeps coming: each hit drops expired keys from the front
        counter.hit(minute, "default", "regular")
    assert len(counter.windows) == 1
    # a client still within its previous window is kept
    counter.hit(minute, "default", "recent")
    clock.now += 61
    counter.hit(minute, "default", "regular")
    assert ("default", "recent", 100, 60) in counter.windows


def test_fixed_windows_forget_clients_whose_window_is_over() -> None:
    clock = Clock()
    counter = FixedWindows(clock)
    second = parse("5/second")
    hour = parse("5/hour")
    for i in range(300):
        counter.hit(second, "default", f"client-{i}")
    counter.hit(hour, "login", "slow")
    clock.now += 2
    for _ in range(200):
        counter.hit(second, "default", "regular")
    assert set(counter.windows) == {("login", "slow", 5, 3600), ("default", "regular", 5, 1)}


def test_a_refused_hit_counts_in_a_fixed_window_but_not_in_a_sliding_one() -> None:
    clock = Clock()
    one = parse("1/minute")
    fixed, sliding = FixedWindows(clock), SlidingWindows(clock)
    assert [fixed.hit(one, "d", "k")[0] for _ in range(3)] == [True, False, False]
    assert [sliding.hit(one, "d", "k")[0] for _ in range(3)] == [True, False, False]
    assert fixed.windows[("d", "k", 1, 60)][1] == 3
    assert sliding.windows[("d", "k", 1, 60)][1] == 1


def test_reset_forgets_every_counter() -> None:
    counter = MemoryCounter("sliding-window-counter")
    one = parse("1/minute")
    assert counter.hit(one, "d", "k")[0]
    assert not counter.hit(one, "d", "k")[0]
    counter.reset()
    assert counter.counter is not None
    assert not counter.counter.windows
    assert counter.hit(one, "d", "k")[0]
