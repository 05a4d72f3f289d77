"""Client address and scheme behind trusted proxies; headers from others change nothing."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from readykit import ConfigurationError
from readykit.proxies import TrustedProxies


def scope(peer: str, *headers: tuple[str, str], scheme: str = "http") -> dict[str, Any]:
    return {
        "client": (peer, 5000),
        "scheme": scheme,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


PROXIES = TrustedProxies(["10.0.0.0/8", "::1"])
RFC7239 = TrustedProxies(["10.0.0.0/8", "::1"], header="forwarded")


@pytest.mark.parametrize(
    ("s", "client"),
    [
        (scope("203.0.113.5", ("X-Forwarded-For", "1.1.1.1")), "203.0.113.5"),
        (scope("10.0.0.1", ("X-Forwarded-For", "198.51.100.1, 10.9.9.9")), "198.51.100.1"),
        (scope("10.0.0.1", ("X-Forwarded-For", "6.6.6.6, 198.51.100.1")), "198.51.100.1"),
        (scope("10.0.0.1", ("X-Forwarded-For", "garbage")), "10.0.0.1"),
        (scope("10.0.0.1", ("X-Forwarded-For", "1.2.3.4, garbage, 10.0.0.3")), "10.0.0.3"),
        (scope("10.0.0.1", ("X-Forwarded-For", "10.0.0.2, 10.0.0.3")), "10.0.0.2"),
        (scope("10.0.0.1"), "10.0.0.1"),
        (scope("::1", ("X-Forwarded-For", "192.0.2.9")), "192.0.2.9"),
        # two header lines are one list, in order
        (
            scope("10.0.0.1", ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "7.7.7.7")),
            "7.7.7.7",
        ),
        # the header not configured is ignored, whatever it says
        (scope("10.0.0.1", ("Forwarded", "for=6.6.6.6")), "10.0.0.1"),
        (
            scope("10.0.0.1", ("X-Forwarded-For", "7.7.7.7"), ("Forwarded", "for=6.6.6.6")),
            "7.7.7.7",
        ),
    ],
)
def test_client_from_x_forwarded_for(s: dict[str, Any], client: str) -> None:
    assert PROXIES.client(s) == client


@pytest.mark.parametrize(
    ("s", "client"),
    [
        (scope("10.0.0.1", ("Forwarded", 'for="[2001:db8::7]:4711"')), "2001:db8::7"),
        (scope("10.0.0.1", ("Forwarded", "for=192.0.2.60;proto=https")), "192.0.2.60"),
        (scope("10.0.0.1", ("Forwarded", "for=6.6.6.6, for=192.0.2.60")), "192.0.2.60"),
        (scope("10.0.0.1", ("Forwarded", "For=192.0.2.61;By=10.0.0.1")), "192.0.2.61"),
        (scope("10.0.0.1", ("Forwarded", "for=unknown")), "10.0.0.1"),
        (scope("10.0.0.1", ("X-Forwarded-For", "6.6.6.6")), "10.0.0.1"),
    ],
)
def test_client_from_forwarded(s: dict[str, Any], client: str) -> None:
    assert RFC7239.client(s) == client


def test_no_trusted_proxies_means_the_peer() -> None:
    s = scope("10.0.0.1", ("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-Proto", "https"))
    assert TrustedProxies([]).client(s) == "10.0.0.1"
    assert not TrustedProxies([]).is_https(s)


def test_https() -> None:
    assert PROXIES.is_https(scope("8.8.8.8", scheme="https"))
    assert PROXIES.is_https(scope("10.0.0.1", ("X-Forwarded-Proto", "https")))
    assert not PROXIES.is_https(scope("10.0.0.1", ("X-Forwarded-Proto", "https, http")))
    assert not PROXIES.is_https(scope("10.0.0.1", ("Forwarded", "for=1.2.3.4;proto=https")))
    assert RFC7239.is_https(scope("10.0.0.1", ("Forwarded", "for=1.2.3.4;proto=https")))
    assert not RFC7239.is_https(scope("10.0.0.1", ("X-Forwarded-Proto", "https")))
    assert not PROXIES.is_https(scope("8.8.8.8", ("X-Forwarded-Proto", "https")))


def test_bad_entry_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies: 'nope'"):
        TrustedProxies(["nope"])


# property tests: what a client can put in front of the chain never changes who it is

ipv4 = st.integers(min_value=1, max_value=2**32 - 2).map(lambda n: str(ipaddress.IPv4Address(n)))
untrusted = ipv4.filter(lambda a: ipaddress.ip_address(a) not in ipaddress.ip_network("10.0.0.0/8"))
trusted = st.integers(min_value=1, max_value=2**24 - 2).map(
    lambda n: str(ipaddress.IPv4Address(0x0A000000 + n))
)
junk = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@given(
    spoofed=st.lists(st.one_of(ipv4, junk.filter(lambda t: "," not in t)), max_size=4),
    real=untrusted,
    hops=st.lists(trusted, max_size=3),
    other=junk,
)
def test_spoofed_prefix_never_changes_the_client(
    spoofed: list[str], real: str, hops: list[str], other: str
) -> None:
    """Client-written entries sit left of what the trusted proxies appended: never reached."""
    xff = ", ".join([*spoofed, real, *hops])
    s = scope("10.0.0.1", ("X-Forwarded-For", xff), ("Forwarded", other))
    assert PROXIES.client(s) == real
    fwd = ", ".join(f"for={a}" for a in [*spoofed, real, *hops] if "=" not in a and ";" not in a)
    if real in fwd:
        s = scope("10.0.0.1", ("Forwarded", fwd), ("X-Forwarded-For", other))
        assert RFC7239.client(s) == real


@given(peer=untrusted, xff=junk, fwd=junk)
def test_an_untrusted_peer_is_itself(peer: str, xff: str, fwd: str) -> None:
    s = scope(peer, ("X-Forwarded-For", xff), ("Forwarded", fwd), ("X-Forwarded-Proto", "https"))
    assert PROXIES.client(s) == peer
    assert RFC7239.client(s) == peer
    assert not PROXIES.is_https(s)


@given(value=st.text(max_size=80))
def test_any_header_text_is_parsed_without_error(value: str) -> None:
    encoded = value.encode("utf-8").decode("latin-1")
    for proxies in (PROXIES, RFC7239):
        s = scope("10.0.0.1", ("X-Forwarded-For", encoded), ("Forwarded", encoded))
        assert proxies.client(s) is not None
        proxies.is_https(s)


def test_a_v4_mapped_peer_is_its_ipv4_address() -> None:
    """A dual-stack socket (uvicorn --workers or gunicorn bound to `::`) names an IPv4 proxy
    `::ffff:10.0.0.1`: it is trusted as 10.0.0.1, and a mapped hop is its IPv4 address."""
    peer = "::ffff:10.0.0.1"
    assert PROXIES.client(scope(peer, ("X-Forwarded-For", "198.51.100.1"))) == "198.51.100.1"
    assert PROXIES.client(scope(peer, ("X-Forwarded-For", "::ffff:198.51.100.2"))) == (
        "198.51.100.2"
    )
    assert PROXIES.is_https(scope(peer, ("X-Forwarded-Proto", "https")))
    assert PROXIES.client(scope("::ffff:203.0.113.5", ("X-Forwarded-For", "1.1.1.1"))) == (
        "::ffff:203.0.113.5"  # not a proxy: the peer, whatever it sends
    )


def test_a_unix_socket_peer_is_trusted_only_with_a_star() -> None:
    """Behind a proxy on a unix socket (`uvicorn --uds`) the peer has no address."""
    s = scope("unused", ("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-Proto", "https"))
    s["client"] = None
    assert TrustedProxies(["*"]).client(s) == "198.51.100.1"
    assert TrustedProxies(["*"]).is_https(s)
    assert PROXIES.client(s) is None
    assert not PROXIES.is_https(s)


def test_a_comma_inside_a_quoted_forwarded_value_separates_nothing() -> None:
    """`for="1.1.1.1, for=2.2.2.2"` is one element (RFC 7239 quoted-string): split inside the
    quotes, the client would have named two hops of its own choosing."""
    s = scope("10.0.0.1", ("Forwarded", 'for="1.1.1.1, for=2.2.2.2", for=192.0.2.60'))
    assert RFC7239.client(s) == "192.0.2.60"
    garbled = scope("10.0.0.1", ("Forwarded", 'for=192.0.2.61, for="6.6.6.6, for=7.7.7.7"'))
    assert RFC7239.client(garbled) == "10.0.0.1"  # the nearest element is garbage: stop there
    # a quote the client leaves open must not swallow the element its proxy appended
    for client_part in ('for="6.6.6.6', 'for="6.6.6.6\\"'):
        opened = scope("10.0.0.1", ("Forwarded", f"{client_part}, for=192.0.2.62"))
        assert RFC7239.client(opened) == "192.0.2.62"
    # X-Forwarded-For has no quoting: a quote is garbage in its own item, nothing more
    xff = scope("10.0.0.1", ("X-Forwarded-For", '"6.6.6.6, 192.0.2.63'))
    assert PROXIES.client(xff) == "192.0.2.63"


def test_a_proxy_configured_in_its_v4_mapped_form_is_still_trusted() -> None:
    """Operators who saw their proxy logged as `::ffff:10.0.0.5` configured that form."""
    mapped = TrustedProxies(["::ffff:10.0.0.5", "::ffff:192.168.0.0/112"])
    for peer in ("::ffff:10.0.0.5", "10.0.0.5", "192.168.3.4", "::ffff:192.168.3.4"):
        s = scope(peer, ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"))
        assert mapped.client(s) == "203.0.113.9"
        assert mapped.is_https(s)
    assert mapped.client(scope("10.0.0.6", ("X-Forwarded-For", "203.0.113.9"))) == "10.0.0.6"
