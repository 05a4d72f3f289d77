"""Rate limits: standard headers, 429 problem+json, keys, proxies, storage outages."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import time_machine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.testing import FakeClock, asgi_request, lifespan

pytestmark = pytest.mark.anyio


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi")


async def login(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def make(limits: dict[str, str], **settings: Any) -> tuple[ReadyKit, Any]:
    kit = ReadyKit(
        Settings(configure_logging=False, access_log=False, rate_limits=limits, **settings)
    )
    app = Starlette(routes=[Route("/", hello), Route("/login", login, methods=["POST"])])
    return kit, kit.wrap(app)


def metric(kit: ReadyKit, name: str, **labels: str) -> float:
    value = kit.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_headers_on_every_response_then_429_with_retry_after() -> None:
    kit, app = make({"POST /login": "3/minute"}, rate_limit_strategy="fixed-window")
    with time_machine.travel(1_800_000_000, tick=False):
        statuses = []
        for i in range(4):
            r = await asgi_request(app, "POST", "/login")
            statuses.append(r.status)
            assert r.header("ratelimit-policy") == '"POST /login";q=3;w=60'
            if i < 3:
                assert r.header("ratelimit") == f'"POST /login";r={2 - i};t=60'
        assert statuses == [200, 200, 200, 429]
        assert r.header("content-type") == "application/problem+json"
        assert r.header("retry-after") == "60"
        body = r.json()
        assert body["status"] == 429
        assert body["violated-policies"] == ["POST /login"]
        assert body["type"].endswith("#quota-exceeded")
        # other routes are not limited by a route key
        other = await asgi_request(app, "GET", "/")
        assert other.status == 200
        assert other.header("ratelimit") is None
    assert (
        metric(
            kit, "readykit_rate_limit_rejections_total", route="POST /login", policy="POST /login"
        )
        == 1
    )


async def test_window_passes_and_requests_are_allowed_again() -> None:
    _, app = make({"POST /login": "1/minute"}, rate_limit_strategy="fixed-window")
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        assert (await asgi_request(app, "POST", "/login")).status == 200
        assert (await asgi_request(app, "POST", "/login")).status == 429
        clock.shift(61)
        assert (await asgi_request(app, "POST", "/login")).status == 200


async def test_default_counts_every_request_and_route_keys_add_theirs() -> None:
    _, app = make(
        {"default": "5/minute", "POST /login": "2/minute"}, rate_limit_strategy="fixed-window"
    )
    with time_machine.travel(1_800_000_000, tick=False):
        r = await asgi_request(app, "POST", "/login")
        assert r.header("ratelimit-policy") == '"default";q=5;w=60, "POST /login";q=2;w=60'
        assert r.header("ratelimit") == '"POST /login";r=1;t=60'  # the tighter one
        await asgi_request(app, "POST", "/login")
        r = await asgi_request(app, "POST", "/login")
        assert r.status == 429
        assert r.json()["violated-policies"] == ["POST /login"]
        statuses = [(await asgi_request(app, "GET", "/")).status for _ in range(3)]
        assert statuses == [200, 200, 429]  # 3 logins + 2 gets used the default's 5


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
async def test_every_strategy_limits(strategy: str) -> None:
    _, app = make({"POST /login": "2/minute"}, rate_limit_strategy=strategy)
    with time_machine.travel(1_800_000_017, tick=False):
        statuses = [(await asgi_request(app, "POST", "/login")).status for _ in range(3)]
        assert statuses == [200, 200, 429]
        r = await asgi_request(app, "POST", "/login")
        assert 1 <= int(r.header("retry-after") or 0) <= 60


async def test_clients_are_counted_apart() -> None:
    _, app = make({"default": "1/minute"})
    assert (await asgi_request(app, "GET", "/", client=("10.0.0.1", 1))).status == 200
    assert (await asgi_request(app, "GET", "/", client=("10.0.0.2", 1))).status == 200
    assert (await asgi_request(app, "GET", "/", client=("10.0.0.1", 2))).status == 429


async def test_spoofed_forwarded_for_from_an_untrusted_client_changes_nothing() -> None:
    _, app = make({"default": "1/minute"})
    await asgi_request(app, "GET", "/", client=("203.0.113.9", 1))
    spoofed = await asgi_request(
        app, "GET", "/", client=("203.0.113.9", 1), headers=[("X-Forwarded-For", "1.2.3.4")]
    )
    assert spoofed.status == 429


async def test_trusted_proxy_forwarded_for_names_the_client() -> None:
    _, app = make({"default": "1/minute"}, trusted_proxies=["10.0.0.0/8"])
    proxy = ("10.1.1.1", 1)
    a = [("X-Forwarded-For", "198.51.100.7, 10.2.2.2")]
    b = [("Forwarded", 'for="198.51.100.8";proto=https')]
    assert (await asgi_request(app, "GET", "/", client=proxy, headers=a)).status == 200
    assert (await asgi_request(app, "GET", "/", client=proxy, headers=b)).status == 200
    assert (await asgi_request(app, "GET", "/", client=proxy, headers=a)).status == 429


async def test_key_function_and_principal_keys() -> None:
    kit = ReadyKit(
        Settings(configure_logging=False, rate_limits={"default": "1/minute"}),
        rate_limit_key=lambda scope: dict(scope["headers"]).get(b"x-api-key", b"").decode(),
    )
    app = kit.wrap(Starlette(routes=[Route("/", hello)]))
    k1, k2 = [("X-Api-Key", "k1")], [("X-Api-Key", "k2")]
    assert (await asgi_request(app, "GET", "/", headers=k1)).status == 200
    assert (await asgi_request(app, "GET", "/", headers=k2)).status == 200
    assert (await asgi_request(app, "GET", "/", headers=k1)).status == 429


async def test_ops_endpoints_are_exempt_unless_named() -> None:
    _, app = make({"default": "1/minute"})
    for _ in range(3):
        assert (await asgi_request(app, "GET", "/health/live")).status == 200
    _, app = make({"GET /health/live": "1/minute"})
    assert (await asgi_request(app, "GET", "/health/live")).status == 200
    assert (await asgi_request(app, "GET", "/health/live")).status == 429


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"rate_limits": {"default": "lots"}},
            "READYKIT_RATE_LIMITS['default']: 'lots' is not a limit",
        ),
        (
            {"rate_limits": {"GET login": "1/minute"}},
            "READYKIT_RATE_LIMITS: key 'GET login' is not a route",
        ),
        (
            {"rate_limits": {"default": "1/minute"}, "rate_limit_storage": "mongodb://x"},
            "READYKIT_RATE_LIMIT_STORAGE: unknown scheme 'mongodb'",
        ),
        ({"trusted_proxies": ["not-an-ip"]}, "READYKIT_TRUSTED_PROXIES: 'not-an-ip' is not an IP"),
    ],
)
def test_bad_configuration_names_the_setting(settings: dict[str, Any], message: str) -> None:
    # validated once, by the section, when the settings are read (from the environment, the
    # kit then refuses to start: tests/test_config_errors.py)
    with pytest.raises(ConfigurationError) as refused:
        Settings(configure_logging=False, **settings)
    assert str(refused.value).startswith(message)


def test_unknown_strategy_is_refused_by_settings() -> None:
    with pytest.raises(ConfigurationError, match="READYKIT_RATE_LIMIT_STRATEGY"):
        Settings(rate_limit_strategy="leaky-bucket")  # type: ignore[arg-type]


UNREACHABLE = "redis://127.0.0.1:1/0"


async def test_unreachable_storage_fails_open_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kit, app = make({"default": "1/minute"}, rate_limit_storage=UNREACHABLE)
    assert kit.rate_limiter is not None
    kit.rate_limiter.clock = clock = FakeClock()
    caplog.set_level(logging.INFO, "readykit.ratelimit")
    for _ in range(3):
        for _ in range(5):
            r = await asgi_request(app, "GET", "/")
            assert r.status == 200
            assert r.header("ratelimit") is None
        clock.advance(2)  # past the retry pause: the storage is tried again
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()
    assert metric(kit, "readykit_rate_limit_storage_errors_total") == 3  # once per attempt
    async with lifespan(app):
        health = await asgi_request(app, "GET", "/health/ready")
    assert health.status == 200
    assert health.json()["status"] == "warn"
    assert health.json()["checks"]["ratelimit:responseTime"][0]["status"] == "fail"


async def test_unreachable_storage_fails_closed_when_asked() -> None:
    _, app = make(
        {"default": "1/minute"}, rate_limit_storage=UNREACHABLE, rate_limit_fail_open=False
    )
    r = await asgi_request(app, "GET", "/")
    assert r.status == 503
    assert r.header("retry-after") == "1"
    assert (await asgi_request(app, "GET", "/health/ready")).status == 503


async def test_a_route_limit_counts_lower_case_methods_and_head_too() -> None:
    """`post /login` (h11 passes it; Django serves it as POST) and `HEAD /` (Starlette runs the
    GET handler) count against `POST /login` and `GET /`."""
    _, app = make({"POST /login": "2/minute", "GET /": "2/minute"})
    statuses = [(await asgi_request(app, method, "/login")).status for method in
                ("POST", "post", "Post")]  # fmt: skip
    assert statuses[-1] == 429
    statuses = [(await asgi_request(app, method, "/")).status for method in ("GET", "HEAD", "GET")]
    assert statuses[-1] == 429


async def test_an_ipv6_client_is_counted_by_its_64_not_by_each_address() -> None:
    """One host holds a whole /64: rotating through its addresses must not reset the count."""
    _, app = make({"default": "3/minute"})
    statuses = [
        (await asgi_request(app, "GET", "/", client=(f"2001:db8:1:2::{n:x}", 1))).status
        for n in range(1, 5)
    ]
    assert statuses == [200, 200, 200, 429]
    other = await asgi_request(app, "GET", "/", client=("2001:db8:1:3::1", 1))
    assert other.status == 200
