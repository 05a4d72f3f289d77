"""The ops token cannot be guessed at speed through the Bearer header: /metrics, /health
details and /ops/api accept it, and 300 wrong tokens from one client used to all get a plain
401, never slowed down (the dashboard's login form was limited, the header was not)."""

from __future__ import annotations

from typing import Any

from readykit.access import FAILED_PER_CLIENT, FAILED_TOTAL, FAILED_WINDOW_S, OpsAccess
from readykit.testing import FakeClock

TOKEN = "the-right-ops-token-0123456789"


def scope(token: str, client: str = "203.0.113.7") -> dict[str, Any]:
    return {"type": "http", "client": (client, 5000),
            "headers": [(b"authorization", f"Bearer {token}".encode())]}  # fmt: skip


def test_after_too_many_wrong_tokens_even_the_right_one_is_refused_until_the_window_ends() -> None:
    clock = FakeClock(0.0)
    access = OpsAccess(TOKEN, clock=clock)
    assert access.allowed(scope(TOKEN))
    for n in range(FAILED_PER_CLIENT):
        assert not access.allowed(scope(f"guess-{n}"))
    assert not access.allowed(scope(TOKEN))  # a guess cannot tell it was right
    assert access.allowed(scope(TOKEN, client="198.51.100.1"))  # another client still gets in
    clock.advance(FAILED_WINDOW_S)
    assert access.allowed(scope(TOKEN))


def test_guesses_spread_over_many_addresses_are_limited_in_total() -> None:
    access = OpsAccess(TOKEN, clock=FakeClock(0.0))
    for n in range(FAILED_TOTAL):
        assert not access.allowed(scope(f"guess-{n}", client=f"10.0.{n // 250}.{n % 250}"))
    assert not access.allowed(scope(TOKEN, client="192.0.2.1"))
