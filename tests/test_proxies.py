"""Client address and scheme behind trusted proxies; headers from others change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from readykit import ConfigurationError
from readykit.proxies import TrustedProxies


def scope(peer: str, *headers: tuple[str, str], scheme: str = "http") -> dict[str, Any]:
    return {
        "client": (peer, 5000),
        "scheme": scheme,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


PROXIES = TrustedProxies(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("s", "client"),
    [
        (scope("203.0.113.5", ("X-Forwarded-For", "1.1.1.1")), "203.0.113.5"),
        (scope("10.0.0.1", ("X-Forwarded-For", "198.51.100.1, 10.9.9.9")), "198.51.100.1"),
        (scope("10.0.0.1", ("X-Forwarded-For", "6.6.6.6, 198.51.100.1")), "198.51.100.1"),
        (scope("10.0.0.1", ("Forwarded", 'for="[2001:db8::7]:4711"')), "2001:db8::7"),
        (scope("10.0.0.1", ("Forwarded", "for=192.0.2.60;proto=https")), "192.0.2.60"),
        (scope("10.0.0.1", ("X-Forwarded-For", "garbage")), "10.0.0.1"),
        (scope("10.0.0.1"), "10.0.0.1"),
        (scope("::1", ("X-Forwarded-For", "192.0.2.9")), "192.0.2.9"),
    ],
)
def test_client(s: dict[str, Any], client: str) -> None:
    assert PROXIES.client(s) == client


def test_no_trusted_proxies_means_the_peer() -> None:
    s = scope("10.0.0.1", ("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-Proto", "https"))
    assert TrustedProxies([]).client(s) == "10.0.0.1"
    assert not TrustedProxies([]).is_https(s)


def test_https() -> None:
    assert PROXIES.is_https(scope("8.8.8.8", scheme="https"))
    assert PROXIES.is_https(scope("10.0.0.1", ("X-Forwarded-Proto", "https")))
    assert PROXIES.is_https(scope("10.0.0.1", ("Forwarded", "for=1.2.3.4;proto=https")))
    assert not PROXIES.is_https(scope("8.8.8.8", ("X-Forwarded-Proto", "https")))


def test_bad_entry_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies: 'nope'"):
        TrustedProxies(["nope"])
