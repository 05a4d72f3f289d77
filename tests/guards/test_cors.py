"""CORS through the kit: listed origins only, never an arbitrary Origin with credentials."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.testing import Response as Answered
from readykit.testing import asgi_request

pytestmark = pytest.mark.anyio

GOOD = "https://app.example.com"
EVIL = "https://evil.example.net"


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi")


def app(**settings: Any) -> Any:
    kit = ReadyKit(Settings(configure_logging=False, access_log=False, **settings))
    return kit.wrap(Starlette(routes=[Route("/", hello, methods=["GET", "POST"])]))


async def test_listed_origin_with_credentials() -> None:
    a = app(cors_allow_origins=[GOOD], cors_allow_credentials=True)
    r = await asgi_request(a, "GET", "/", headers=[("Origin", GOOD)])
    assert r.header("access-control-allow-origin") == GOOD
    assert r.header("access-control-allow-credentials") == "true"
    assert r.header("vary") == "Origin"


async def test_arbitrary_origin_is_never_echoed() -> None:
    a = app(cors_allow_origins=[GOOD], cors_allow_credentials=True)
    r = await asgi_request(a, "GET", "/", headers=[("Origin", EVIL)])
    assert r.status == 200
    assert r.header("access-control-allow-origin") is None
    assert r.header("access-control-allow-credentials") is None
    pre = await asgi_request(
        a, "OPTIONS", "/", headers=[("Origin", EVIL), ("Access-Control-Request-Method", "POST")]
    )
    assert pre.status == 403
    assert pre.header("access-control-allow-origin") is None


async def test_wildcard_answers_star_without_credentials() -> None:
    r = await asgi_request(app(cors_allow_origins=["*"]), "GET", "/", headers=[("Origin", EVIL)])
    assert r.header("access-control-allow-origin") == "*"
    assert r.header("access-control-allow-credentials") is None


def test_wildcard_with_credentials_is_refused_when_the_settings_are_read() -> None:
    with pytest.raises(ConfigurationError, match=r"^READYKIT_CORS_ALLOW_ORIGINS: '\*' cannot be"):
        Settings(cors_allow_origins=["*"], cors_allow_credentials=True)


async def test_preflight() -> None:
    a = app(cors_allow_origins=[GOOD])
    ok = await asgi_request(
        a,
        "OPTIONS",
        "/",
        headers=[
            ("Origin", GOOD),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "Content-Type, X-Request-ID"),
        ],
    )
    assert ok.status == 204
    assert ok.header("access-control-allow-origin") == GOOD
    assert "POST" in (ok.header("access-control-allow-methods") or "")
    assert ok.header("access-control-max-age") == "600"
    bad_header = await asgi_request(
        a,
        "OPTIONS",
        "/",
        headers=[
            ("Origin", GOOD),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "X-Secret-Thing"),
        ],
    )
    assert bad_header.status == 403


async def test_no_cors_headers_unless_configured() -> None:
    r = await asgi_request(app(), "GET", "/", headers=[("Origin", GOOD)])
    assert r.header("access-control-allow-origin") is None


def raw_app(headers: list[tuple[bytes, bytes]], **settings: Any) -> Any:
    """`GET /raw` answers with `headers` exactly as given (names in any case, as apps send)."""

    async def raw(request: Request) -> Response:
        response = Response("raw")
        response.raw_headers.extend(headers)
        return response

    kit = ReadyKit(Settings(configure_logging=False, access_log=False, **settings))
    return kit.wrap(Starlette(routes=[Route("/raw", raw)]))


def lines(r: Answered, name: bytes) -> list[bytes]:
    """Every value of header `name` (lower case), whatever case the response used."""
    return [v for k, v in r.headers if k.lower() == name]


@pytest.mark.parametrize("origin", [None, EVIL, GOOD])
async def test_vary_origin_on_every_response_when_origins_are_listed(origin: str | None) -> None:
    """Whether ACAO is there depends on the Origin: a cache must keep a navigation's answer
    (no Origin, no ACAO) and a refused origin's apart from the allowed origin's."""
    a = app(cors_allow_origins=[GOOD])
    r = await asgi_request(a, "GET", "/", headers=[("Origin", origin)] if origin else [])
    assert r.status == 200
    assert lines(r, b"vary") == [b"Origin"]
    assert r.header("access-control-allow-origin") == (GOOD if origin == GOOD else None)


async def test_a_refused_preflight_varies_on_origin_too() -> None:
    a = app(cors_allow_origins=[GOOD])
    pre = await asgi_request(
        a, "OPTIONS", "/", headers=[("Origin", EVIL), ("Access-Control-Request-Method", "POST")]
    )
    assert pre.status == 403
    assert lines(pre, b"vary") == [b"Origin"]


@pytest.mark.parametrize(
    ("apps", "merged"),
    [
        ([(b"Vary", b"Accept-Encoding")], [b"Accept-Encoding, Origin"]),
        ([(b"VARY", b"accept-encoding, ORIGIN")], [b"accept-encoding, ORIGIN"]),
        ([(b"vary", b"*")], [b"*"]),
        (
            [(b"Vary", b"Accept-Encoding"), (b"vary", b"X-Tenant")],
            [b"Accept-Encoding", b"X-Tenant, Origin"],
        ),
    ],
)
async def test_origin_joins_the_apps_vary_line(
    apps: list[tuple[bytes, bytes]], merged: list[bytes]
) -> None:
    """Added to the app's line (whatever its name's case), never as a second line, never twice,
    and not to `Vary: *`, which covers it."""
    for origin in (None, GOOD):
        r = await asgi_request(
            raw_app(apps, cors_allow_origins=[GOOD]),
            "GET",
            "/raw",
            headers=[("Origin", origin)] if origin else [],
        )
        assert lines(r, b"vary") == merged


async def test_no_vary_and_star_for_every_request_with_star_alone() -> None:
    """With `*` alone the answer does not depend on the Origin: `*` even without one (a cached
    navigation's answer then serves a cross-origin fetch too), and no `Vary`."""
    a = app(cors_allow_origins=["*"])
    for headers in ([], [("Origin", EVIL)]):
        r = await asgi_request(a, "GET", "/", headers=headers)
        assert r.header("access-control-allow-origin") == "*"
        assert r.header("vary") is None


async def test_star_with_listed_origins_varies_on_origin() -> None:
    a = app(cors_allow_origins=["*", GOOD])
    listed = await asgi_request(a, "GET", "/", headers=[("Origin", GOOD)])
    other = await asgi_request(a, "GET", "/", headers=[("Origin", EVIL)])
    none = await asgi_request(a, "GET", "/")
    assert listed.header("access-control-allow-origin") == GOOD
    assert other.header("access-control-allow-origin") == "*"
    assert none.header("access-control-allow-origin") is None
    assert [lines(r, b"vary") for r in (listed, other, none)] == [[b"Origin"]] * 3


async def test_a_cached_answer_without_origin_is_kept_apart_from_the_allowed_origins() -> None:
    """readykit's response cache marks the answer `public`: shared caches in front of the kit
    store it, so the no-Origin answer (no ACAO) must say `Vary: Origin`."""
    calls = 0

    async def data(request: Request) -> PlainTextResponse:
        nonlocal calls
        calls += 1
        return PlainTextResponse(f"data {calls}")

    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            cors_allow_origins=[GOOD],
            cors_allow_credentials=True,
            cache_routes={"GET /data": 60},
        )
    )
    a = kit.wrap(Starlette(routes=[Route("/data", data)]))
    plain = await asgi_request(a, "GET", "/data")
    assert plain.header("cache-control") == "public, max-age=60"
    assert plain.header("access-control-allow-origin") is None
    assert lines(plain, b"vary") == [b"Origin"]
    allowed = await asgi_request(a, "GET", "/data", headers=[("Origin", GOOD)])
    assert (allowed.header("x-cache"), calls) == ("HIT", 1)
    assert allowed.header("access-control-allow-origin") == GOOD
    assert allowed.header("access-control-allow-credentials") == "true"
    assert lines(allowed, b"vary") == [b"Origin"]
    refused = await asgi_request(a, "GET", "/data", headers=[("Origin", EVIL)])
    assert refused.header("access-control-allow-origin") is None
    assert lines(refused, b"vary") == [b"Origin"]


@pytest.mark.parametrize(
    "apps",
    [
        [(b"Access-Control-Allow-Origin", GOOD.encode()), (b"Vary", b"Accept-Encoding")],
        [(b"ACCESS-CONTROL-ALLOW-CREDENTIALS", b"true")],
    ],
)
async def test_the_apps_own_cors_headers_win(apps: list[tuple[bytes, bytes]]) -> None:
    """The app's own Allow-Origin or Allow-Credentials (any case): the guard adds none of its
    own (no duplicate Allow-Credentials), only `Origin` to `Vary`."""
    r = await asgi_request(
        raw_app(apps, cors_allow_origins=[GOOD], cors_allow_credentials=True),
        "GET",
        "/raw",
        headers=[("Origin", GOOD)],
    )
    names = [k.lower() for k, _ in r.headers if k.lower().startswith(b"access-control-")]
    assert names == [k.lower() for k, _ in apps if k.lower().startswith(b"access-control-")]
    assert len(lines(r, b"vary")) == 1
    assert b"Origin" in lines(r, b"vary")[0]


@pytest.mark.parametrize(
    "entry",
    [
        "https://*.example.com",
        "https://*",
        "https://app.example.com/path",
        "https://a.example.com, https://b.example.com",
        "https://a.example.com,https://b.example.com",
        "https://user@app.example.com",
        "https://app.example.com?x=1",
        "https://app.example.com#top",
        "https://",
        "https://app.example.com:99999",
        " https://app.example.com",
        "https://[::1",
        "null",
    ],
)
def test_an_origin_that_could_never_match_is_refused_when_the_settings_are_read(
    entry: str,
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings(cors_allow_origins=[GOOD, entry])
    message = str(refused.value)
    assert message.startswith(f"READYKIT_CORS_ALLOW_ORIGINS: {entry!r} is not an origin")
    assert "\n" not in message


async def test_an_app_that_only_exposes_headers_still_gets_the_guards_allow_origin() -> None:
    apps = [(b"Access-Control-Expose-Headers", b"X-Total-Count")]
    r = await asgi_request(
        raw_app(apps, cors_allow_origins=[GOOD]), "GET", "/raw", headers=[("Origin", GOOD)]
    )
    assert r.header("access-control-allow-origin") == GOOD
    assert r.header("access-control-expose-headers") == "X-Total-Count"


async def test_origins_of_apps_and_extensions_are_origins_too() -> None:
    """Capacitor/Ionic and Tauri apps and browser extensions send their own schemes."""
    origins = ["capacitor://localhost", "tauri://localhost", "chrome-extension://abcdefgh"]
    a = app(cors_allow_origins=origins)
    for origin in origins:
        r = await asgi_request(a, "GET", "/", headers=[("Origin", origin)])
        assert r.header("access-control-allow-origin") == origin


async def test_origins_are_compared_as_browsers_send_them() -> None:
    """Lower-case scheme and host, no default port, no trailing slash."""
    a = app(
        cors_allow_origins=[
            "HTTPS://App.Example.com:443/",
            "http://LocalHost:80",
            "http://localhost:8080",
            "http://[::1]:80",
        ]
    )
    for origin in (GOOD, "http://localhost", "http://localhost:8080", "http://[::1]"):
        r = await asgi_request(a, "GET", "/", headers=[("Origin", origin)])
        assert r.header("access-control-allow-origin") == origin
    r = await asgi_request(a, "GET", "/", headers=[("Origin", "https://app.example.com:8443")])
    assert r.header("access-control-allow-origin") is None
