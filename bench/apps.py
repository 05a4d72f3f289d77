"""The benchmarked ASGI apps, as uvicorn `--factory` targets: bare, then wrapped variants."""

from __future__ import annotations

import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.logging import configure_logging


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["item_id"], "name": "widget"})


async def root(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def bare() -> Starlette:
    """Hello-world Starlette: `/` and `/items/{item_id}`."""
    return Starlette(routes=[Route("/", root), Route("/items/{item_id:int}", item)])


def passthrough() -> ASGIApp:
    """Calibration: the bare app behind a do-nothing pure-ASGI layer that wraps `send`."""
    app = bare()

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_wrapper(message: Message) -> None:
            await send(message)

        await app(scope, receive, send_wrapper)

    return layer


def readykit_health() -> ASGIApp:
    """The same app wrapped by the kit with health only (one trivial readiness check)."""
    kit = ReadyKit(Settings(service_name="bench"))
    kit.add_check("noop", lambda: None)
    return kit.wrap(bare())


def readykit_observed() -> ASGIApp:
    """Everything on by default (health, metrics, default guards) and one JSON access-log line
    per request, written to a file."""
    settings = Settings(service_name="bench", configure_logging=False, log_format="json")
    log_file = Path(tempfile.gettempdir()) / "readykit-bench-access.log"
    configure_logging(settings, stream=log_file.open("w", buffering=1 << 16))
    kit = ReadyKit(settings)
    kit.add_check("noop", lambda: None)
    return kit.wrap(bare())


def instrumentator() -> ASGIApp:
    """prometheus-fastapi-instrumentator on the same app (metrics only)."""
    from prometheus_fastapi_instrumentator import Instrumentator

    app = bare()
    Instrumentator().instrument(app).expose(app)  # type: ignore[arg-type]
    return app


def starlette_exporter() -> ASGIApp:
    """starlette-exporter on the same app (metrics only)."""
    from starlette_exporter import PrometheusMiddleware, handle_metrics

    app = bare()
    app.add_middleware(PrometheusMiddleware)
    app.add_route("/metrics", handle_metrics)
    return app


_HUGE = "100000000/minute"  # never reached: measures the cost of counting, not of refusing
_MINIMAL = {
    "service_name": "bench",
    "configure_logging": False,
    "access_log": False,
    "metrics": False,
    "security_headers": False,
    "max_body_bytes": None,
    "request_timeout_s": None,
}


def readykit_minimal() -> ASGIApp:
    """The kit with every optional layer off: the baseline for one guard's cost."""
    return ReadyKit(Settings(**_MINIMAL)).wrap(bare())


def readykit_metrics() -> ASGIApp:
    """The minimal kit plus its Prometheus metrics: like for like with the metrics-only peers."""
    return ReadyKit(Settings(**{**_MINIMAL, "metrics": True})).wrap(bare())


def readykit_guards() -> ASGIApp:
    """The kit's default guards: security headers, body limit, time limit."""
    return ReadyKit(Settings(**{**_MINIMAL, "security_headers": True, "max_body_bytes": 1 << 20,
                                "request_timeout_s": 30.0})).wrap(bare())  # fmt: skip


def readykit_ratelimit_memory() -> ASGIApp:
    """The minimal kit plus a per-client rate limit in process memory."""
    return ReadyKit(Settings(**_MINIMAL, rate_limits={"default": _HUGE})).wrap(bare())


def readykit_ratelimit_redis() -> ASGIApp:
    """The minimal kit plus a per-client rate limit in the local Redis (db 15)."""
    settings = Settings(
        **_MINIMAL, rate_limits={"default": _HUGE}, rate_limit_storage="redis://127.0.0.1:6379/15"
    )
    return ReadyKit(settings).wrap(bare())


def slowapi_memory() -> ASGIApp:
    """slowapi's pure-ASGI middleware with the same default limit in memory."""
    from slowapi import Limiter
    from slowapi.middleware import SlowAPIASGIMiddleware
    from slowapi.util import get_remote_address

    app = bare()
    app.state.limiter = Limiter(key_func=get_remote_address, default_limits=[_HUGE])
    app.add_middleware(SlowAPIASGIMiddleware)
    return app


def readykit_cache_hit() -> ASGIApp:
    """The minimal kit plus response caching of `/items/{item_id}`: every request but the
    first is a hit from the in-memory cache."""
    settings = Settings(**_MINIMAL, cache_routes={"GET /items/{item_id}": 3600.0})
    return ReadyKit(settings).wrap(bare())


VARIANTS = {
    "bare": bare,
    "passthrough": passthrough,
    "readykit-health": readykit_health,
    "readykit-observed": readykit_observed,
    "instrumentator": instrumentator,
    "starlette-exporter": starlette_exporter,
    "readykit-minimal": readykit_minimal,
    "readykit-metrics": readykit_metrics,
    "readykit-guards": readykit_guards,
    "readykit-ratelimit-memory": readykit_ratelimit_memory,
    "readykit-ratelimit-redis": readykit_ratelimit_redis,
    "slowapi-memory": slowapi_memory,
    "readykit-cache-hit": readykit_cache_hit,
}
