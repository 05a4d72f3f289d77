"""The benchmarked ASGI apps, as uvicorn `--factory` targets: bare, then wrapped variants."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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


# the response headers readykit-everything adds to the app's two, as it sends them
_KIT_HEADERS = [
    (b"ratelimit-policy", b'"default";q=100000000;w=60'),
    (b"ratelimit", b'"default";r=99999999;t=29'),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-request-id", b"8b23056a8f7825db373e874216641055"),
]


def passthrough_headers() -> ASGIApp:
    """Calibration: `passthrough` adding the nine headers readykit-everything sends, fixed:
    what the server's writing of those headers costs, with none of the kit's work."""
    app = bare()

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_KIT_HEADERS]
            await send(message)

        await app(scope, receive, send_wrapper)

    return layer


def readykit_health() -> ASGIApp:
    """The same app wrapped by the kit with health only (one trivial readiness check)."""
    kit = ReadyKit(Settings(service_name="bench"))
    kit.add_check("noop", lambda: None)
    return kit.wrap(bare())


def readykit_observed() -> ASGIApp:
    """The defaults (health, metrics, default guards, records, dashboard; no rate limit) and one
    JSON access-log line per request, written to a file."""
    return _defaults(bare())


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


def readykit_ids() -> ASGIApp:
    """Request ids and the ops routes (health) only: records, metrics, logs and guards off."""
    return ReadyKit(Settings(**_MINIMAL, records=False, dashboard=False)).wrap(bare())


def readykit_ids_metrics() -> ASGIApp:
    """Request ids, health and metrics only (issue 17's "metrics only")."""
    settings = Settings(**{**_MINIMAL, "metrics": True}, records=False, dashboard=False)
    return ReadyKit(settings).wrap(bare())


def _json_access_log(settings: Settings) -> None:
    log_file = Path(tempfile.gettempdir()) / "readykit-bench-access.log"
    configure_logging(settings, stream=log_file.open("w", buffering=1 << 16))


def _defaults(app: ASGIApp, **settings: Any) -> ASGIApp:
    """`app` behind the kit's defaults (health with one trivial readiness check, metrics,
    guards, records, dashboard) and a JSON access line per request written to a file."""
    config = Settings(service_name="bench", configure_logging=False, log_format="json", **settings)
    _json_access_log(config)
    kit = ReadyKit(config)
    kit.add_check("noop", lambda: None)
    return kit.wrap(app)


def readykit_everything() -> ASGIApp:
    """Issue 17's "everything on", exactly its list: request ids, health, metrics, an in-memory
    rate limit, security headers, body and time limits and a JSON access line. Records (audit,
    APM, the dashboard's traffic) are not on that list, nor in the hand-made stack it is
    compared with: `readykit-everything-records` adds them."""
    return _defaults(bare(), rate_limits={"default": _HUGE}, records=False, dashboard=False)


def readykit_everything_records() -> ASGIApp:
    """`readykit-everything` with records and the dashboard on, as by default: auto-audit of
    mutations, slow requests and exceptions, the stall watchdog, traffic aggregates."""
    return _defaults(bare(), rate_limits={"default": _HUGE})


def handmade() -> ASGIApp:
    """The stack a user assembles by hand for the same work: asgi-correlation-id,
    starlette-exporter, slowapi (in memory), secure's headers, a structlog JSON access line
    and a /health route."""
    import logging

    import secure
    import structlog
    from asgi_correlation_id import CorrelationIdMiddleware
    from slowapi import Limiter
    from slowapi.middleware import SlowAPIASGIMiddleware
    from slowapi.util import get_remote_address
    from starlette_exporter import PrometheusMiddleware, handle_metrics

    log_file = Path(tempfile.gettempdir()) / "readykit-bench-handmade.log"
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=log_file.open("w", buffering=1 << 16)),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
    access = structlog.get_logger("access")
    headers = [
        (k.lower().encode(), v.encode())
        for k, v in secure.Secure.with_default_headers().headers.items()
    ]

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "pass"})

    app = bare()
    app.add_route("/health", health)
    app.add_route("/metrics", handle_metrics)
    app.state.limiter = Limiter(key_func=get_remote_address, default_limits=[_HUGE])
    app.add_middleware(SlowAPIASGIMiddleware)
    app.add_middleware(PrometheusMiddleware)
    app.add_middleware(CorrelationIdMiddleware)

    async def stack(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_secured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await app(scope, receive, send_secured)
        access.info(
            "request",
            method=scope["method"],
            path=scope["path"],
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    return stack


def _with_database() -> Starlette:
    """The bare app whose `/items/{item_id}` runs one ~1 ms query on the local PostgreSQL
    (`SELECT pg_sleep(0.001)`, asyncpg pool of 32): the realistic handler of issue 17."""
    import asyncpg

    pool: list[Any] = []

    async def item_from_db(request: Request) -> JSONResponse:
        async with pool[0].acquire() as connection:
            await connection.fetchval("SELECT pg_sleep(0.001)")
        return JSONResponse({"id": request.path_params["item_id"], "name": "widget"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool.append(
            await asyncpg.create_pool(
                "postgresql://postgres@127.0.0.1:5432/postgres", min_size=32, max_size=32
            )
        )
        yield
        await pool[0].close()

    return Starlette(routes=[Route("/items/{item_id:int}", item_from_db)], lifespan=lifespan)


def bare_db() -> Starlette:
    """The bare app with a ~1 ms database query per request."""
    return _with_database()


def readykit_everything_db() -> ASGIApp:
    """Everything on (as readykit-everything) in front of the app with a ~1 ms query."""
    return _defaults(
        _with_database(), rate_limits={"default": _HUGE}, records=False, dashboard=False
    )


def readykit_cache_hit() -> ASGIApp:
    """The minimal kit plus response caching of `/items/{item_id}`: every request but the
    first is a hit from the in-memory cache."""
    settings = Settings(**_MINIMAL, cache_routes={"GET /items/{item_id}": 3600.0})
    return ReadyKit(settings).wrap(bare())


VARIANTS = {
    "bare": bare,
    "passthrough": passthrough,
    "passthrough-headers": passthrough_headers,
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
    "readykit-ids": readykit_ids,
    "readykit-ids-metrics": readykit_ids_metrics,
    "readykit-everything": readykit_everything,
    "readykit-everything-records": readykit_everything_records,
    "handmade": handmade,
    "bare-db": bare_db,
    "readykit-everything-db": readykit_everything_db,
}
