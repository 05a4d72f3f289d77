"""Header names in any case: the cache never shares a private response, headers never duplicate.

Apps do not all send lower-case names (Django sends `Set-Cookie`, `Cache-Control`,
`X-Frame-Options`); every rule of the kit must hold for every casing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readykit import ReadyKit, Settings
from readykit._types import Receive, Scope, Send
from readykit.headers import cache_directives, get_header, header_names, media_type, without
from readykit.testing import asgi_request


def casings(name: str) -> st.SearchStrategy[str]:
    """`name` with every letter in a random case."""
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(
            c.upper() if u else c.lower() for c, u in zip(name, upper, strict=True)
        )
    )


@given(name=casings("set-cookie"), value=st.binary(max_size=20))
def test_get_header_ignores_case(name: str, value: bytes) -> None:
    headers = [(b"x-other", b"1"), (name.encode(), value)]
    assert get_header(headers, b"set-cookie") == value
    assert b"set-cookie" in header_names(headers)
    assert without(headers, [b"set-cookie"]) == [(b"x-other", b"1")]


@given(name=casings("content-type"))
def test_media_type_ignores_case(name: str) -> None:
    assert media_type([(name.encode(), b"Text/HTML; charset=utf-8")]) == b"text/html"


def test_cache_directives_parse_names_only() -> None:
    assert cache_directives(b'Private="set-cookie", max-age=60') == {b"private", b"max-age"}
    assert cache_directives(None) == set()


class HeaderApp:
    """A raw ASGI app answering with the headers it is told to, counting its calls."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        user = get_header(scope["headers"], b"x-user") or b"anon"
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"hello " + user})


def _kit(**extra: Any) -> ReadyKit:
    return ReadyKit(
        Settings(
            records=False,
            configure_logging=False,
            access_log=False,
            cache_routes={"GET /page": 60},
            **extra,
        ),
        principal=lambda scope: None,  # the app knows its users; the kit does not
    )


PRIVATE_RESPONSES = st.sampled_from(
    [
        ("set-cookie", "sessionid=alice-secret; HttpOnly"),
        ("cache-control", "private, max-age=60"),
        ("cache-control", "no-store"),
        ("cache-control", "max-age=0, Private"),
        ("vary", "*"),
    ]
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(private=PRIVATE_RESPONSES, data=st.data())
def test_cache_never_stores_a_private_response_in_any_casing(
    private: tuple[str, str], data: st.DataObject
) -> None:
    name = data.draw(casings(private[0]))
    app = HeaderApp()
    app.headers = [(b"Content-Type", b"text/plain"), (name.encode(), private[1].encode())]
    wrapped = _kit().wrap(app)

    async def scenario() -> None:
        alice = await asgi_request(wrapped, "GET", "/page", headers=[("x-user", "alice")])
        bob = await asgi_request(wrapped, "GET", "/page", headers=[("x-user", "bob")])
        assert alice.body == b"hello alice"
        assert bob.body == b"hello bob"  # computed for Bob, never Alice's copy
        assert app.calls == 2
        if private[0] == "set-cookie":
            assert bob.header("set-cookie") == private[1]  # his own response, unchanged
        assert bob.header("x-cache") is None
        assert not [v for k, v in bob.headers if k.lower() == b"cache-control" and b"public" in v]

    asyncio.run(scenario())


def test_cache_keeps_callers_with_unknown_credentials_apart() -> None:
    """A session cookie the principal resolver cannot read still separates Alice from Bob."""
    app = HeaderApp()
    app.headers = [(b"Content-Type", b"text/plain")]
    wrapped = _kit().wrap(app)

    async def scenario() -> None:
        a1 = await asgi_request(
            wrapped, "GET", "/page", headers=[("x-user", "alice"), ("cookie", "sessionid=a")]
        )
        b1 = await asgi_request(
            wrapped, "GET", "/page", headers=[("x-user", "bob"), ("cookie", "sessionid=b")]
        )
        a2 = await asgi_request(
            wrapped, "GET", "/page", headers=[("x-user", "alice"), ("cookie", "sessionid=a")]
        )
        assert (a1.body, b1.body, a2.body) == (b"hello alice", b"hello bob", b"hello alice")
        assert a2.header("x-cache") == "HIT"  # cached, but for Alice's session only
        assert b1.header("x-cache") == "MISS"
        assert a2.header("cache-control") == "private, max-age=60"

    asyncio.run(scenario())


SECURITY = [
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "content-security-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
]


@settings(max_examples=60)
@given(
    present=st.lists(st.sampled_from(SECURITY), unique=True, max_size=len(SECURITY)),
    data=st.data(),
    html=st.booleans(),
    https=st.booleans(),
)
def test_security_headers_never_duplicate_and_the_apps_value_wins(
    present: list[str], data: st.DataObject, html: bool, https: bool
) -> None:
    app = HeaderApp()
    content_type = b"text/html; charset=utf-8" if html else b"application/json"
    app.headers = [(data.draw(casings("content-type")).encode(), content_type)]
    mine = {name: f"app-{name}" for name in present}
    app.headers += [
        (data.draw(casings(name)).encode(), value.encode()) for name, value in mine.items()
    ]
    wrapped = _kit(trusted_proxies=["127.0.0.1"]).wrap(app)
    headers = [("x-forwarded-proto", "https")] if https else []

    response = asyncio.run(asgi_request(wrapped, "GET", "/other", headers=headers))

    counts = Counter(k.lower() for k, _ in response.headers)
    assert all(n == 1 for n in counts.values()), counts
    for name in SECURITY:
        assert response.header(name) == mine.get(name, response.header(name))
        assert response.header(name)  # every one present
