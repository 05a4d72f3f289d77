"""One duration parser for settings, job schedules and CLI options."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from readykit.durations import BadDuration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("1.5s", 1.5),
        ("120", 120.0),
        (90, 90.0),
        ("500us", 0.0005),
        (" 10 s ", 10.0),
    ],
)
def test_durations_people_write(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "5x", "", "-3s", "1e9999", True, float("nan"), "s"])
def test_anything_else_names_what_it_was(bad: object) -> None:
    with pytest.raises(BadDuration, match=r"^--timeout: .* is not a duration"):
        parse_duration(bad, what="--timeout")  # type: ignore[arg-type]


def test_positive_refuses_zero() -> None:
    assert parse_duration("0s") == 0.0
    with pytest.raises(BadDuration, match="is not a positive duration"):
        parse_duration("0s", positive=True)


@given(st.integers(min_value=1, max_value=10**7))
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(float(seconds))) == seconds
