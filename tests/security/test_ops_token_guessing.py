"""The ops token cannot be guessed at speed through the Bearer header: /metrics, /health
details and /ops/api accept it, and 300 wrong tokens from one client used to all get a plain
401, never slowed down (the dashboard's login form was limited, the header was not)."""

from __future__ import annotations

from typing import Any

import pytest

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


@pytest.mark.anyio
async def test_behind_a_trusted_proxy_one_guesser_does_not_lock_out_the_others() -> None:
    """Every request comes from the proxy's address: counted by the peer, one stranger's ten
    wrong tokens refused Prometheus's right one. They count against the client the trusted
    proxy names, an IPv6 client by its /64 (one host holds all of it)."""
    from starlette.applications import Starlette

    from readykit import ReadyKit, Settings
    from readykit.testing import asgi_request

    kit = ReadyKit(
        Settings(configure_logging=False, ops_token=TOKEN, trusted_proxies=["127.0.0.1"])
    )
    app = kit.wrap(Starlette())

    async def scrape(token: str, client: str) -> int:
        headers = [("Authorization", f"Bearer {token}"), ("X-Forwarded-For", client)]
        return (await asgi_request(app, "GET", "/metrics", headers=headers)).status

    guesses = [await scrape(f"guess-{n}", "2001:db8::1") for n in range(FAILED_PER_CLIENT)]
    assert guesses == [401] * FAILED_PER_CLIENT
    assert await scrape(TOKEN, "203.0.113.50") == 200  # Prometheus, through the same proxy
    assert await scrape(TOKEN, "2001:db8::2") == 401  # the guesser's /64, another address


def test_a_short_token_is_warned_about_once_where_it_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A one-letter token falls to the guesses the limits allow within a minute."""
    from pydantic import SecretStr

    from readykit.access import OpsConfig

    OpsAccess.from_settings(OpsConfig(ops_token=SecretStr("a")))
    OpsAccess.from_settings(OpsConfig(ops_token=SecretStr(TOKEN)))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "READYKIT_OPS_TOKEN has 1 characters: a token that short can be guessed; use at "
        "least 16 random ones (openssl rand -hex 16)"
    ]
