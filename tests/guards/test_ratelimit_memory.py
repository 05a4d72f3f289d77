"""The in-process window counters answer exactly as `limits`' own memory storage, and forget
clients whose windows are over without a pass over all keys."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

from readykit.guards.ratelimit_memory import FixedWindows, MemoryCounter, SlidingWindows
from readykit.testing import FakeClock

LIMITS = ["1/second", "2/second", "3/minute", "5/10 seconds", "10/hour", "0/minute"]
START = 1_800_000_000.0

steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),  # client
        st.integers(0, len(LIMITS) - 1),  # which limit
        # seconds to the next hit: mostly within a window, sometimes across one or many (a
        # clock that steps back: the test below; random steps back would also meet keys that
        # both stores expire, each in its own time)
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


def test_a_clock_gone_back_into_the_previous_window_counts_there_as_limits_does() -> None:
    """An NTP step back across a window's start: the hit counts in the window before, as
    `limits` counts it in that window's key, and no fresh quota appears when time moves on."""
    limit = LIMITS.index("3/minute")
    before_the_minute = 59.5 - START % 60
    steps = [before_the_minute, 1.0, 0.0, -0.9, 0.9, 0.0, 0.0]
    script = [("a", limit, step) for step in steps]
    _compare("sliding-window-counter", SlidingWindowCounterRateLimiter, script)
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
    assert len(counter) == 1000
    clock.now += 120  # both of their windows are over
    for _ in range(600):  # one client keeps coming: each hit drops expired keys from the front
        counter.hit(minute, "default", "regular")
    assert len(counter) == 1
    # a client still within its previous window is kept
    counter.hit(minute, "default", "recent")
    clock.now += 61
    counter.hit(minute, "default", "regular")
    assert counter.state(minute, "default", "recent") is not None


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
    assert len(counter) == 2
    assert counter.state(hour, "login", "slow") is not None
    assert counter.state(second, "default", "regular") is not None


def test_a_long_window_hit_first_holds_no_short_ones_up() -> None:
    """One client of an hourly limit at the front keeps nothing else alive: each window length
    expires its own keys."""
    for counter in (FixedWindows(Clock()), SlidingWindows(Clock())):
        clock = counter.clock
        assert isinstance(clock, Clock)
        counter.hit(parse("5/hour"), "login", "slow")
        minute = parse("600/minute")
        for i in range(50 * 60):  # a new client every second for 50 minutes
            counter.hit(minute, "default", f"client-{i}")
            clock.now += 1
        # the slow client, and the clients of the last one or two minutes only
        assert len(counter) <= 1 + 2 * 60 + 2, (type(counter).__name__, len(counter))
        assert counter.state(parse("5/hour"), "login", "slow") is not None


def test_a_fixed_window_hit_again_keeps_its_place_and_expires_in_turn() -> None:
    """A fixed window ends when it opened + its length, whatever hit it since: a client hit
    again and again within its window does not hold up those whose windows ended before."""
    clock = Clock()
    counter = FixedWindows(clock)
    minute = parse("1000/minute")
    counter.hit(minute, "d", "busy")
    for i in range(30):
        clock.now += 1
        counter.hit(minute, "d", f"once-{i}")
        counter.hit(minute, "d", "busy")
    clock.now += 60  # every window above is over: the busy one's first
    for _ in range(20):
        counter.hit(minute, "d", "new")
    assert len(counter) == 1


def test_a_refused_hit_counts_in_a_fixed_window_but_not_in_a_sliding_one() -> None:
    clock = Clock()
    one = parse("1/minute")
    fixed, sliding = FixedWindows(clock), SlidingWindows(clock)
    assert [fixed.hit(one, "d", "k")[0] for _ in range(3)] == [True, False, False]
    assert [sliding.hit(one, "d", "k")[0] for _ in range(3)] == [True, False, False]
    assert (fixed.state(one, "d", "k") or [])[1] == 3
    assert (sliding.state(one, "d", "k") or [])[1] == 1


def test_reset_forgets_every_counter() -> None:
    counter = MemoryCounter("sliding-window-counter")
    one = parse("1/minute")
    assert counter.hit(one, "d", "k")[0]
    assert not counter.hit(one, "d", "k")[0]
    counter.reset()
    assert counter.counter is not None
    assert len(counter.counter) == 0
    assert counter.hit(one, "d", "k")[0]


@pytest.mark.parametrize("windows", [FixedWindows, SlidingWindows])
def test_a_flood_of_distinct_clients_cannot_grow_the_table_past_its_cap(windows: Any) -> None:
    """200,000 made-up addresses in a 5/hour window held 200,000 slots (~67 MiB) for the hour;
    the table keeps at most `max_keys` per window length, forgetting the oldest first."""
    counter = windows(FakeClock(1_000.0), max_keys=3)
    item = parse("5/hour")
    for n in range(10):
        counter.hit(item, "default", f"client-{n}")
    assert len(counter) == 3
    assert counter.state(item, "default", "client-9") is not None  # the newest are kept
    assert counter.state(item, "default", "client-0") is None
