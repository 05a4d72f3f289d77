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
    """Health, metrics and one JSON access-log line per request, written to a file."""
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


VARIANTS = {
    "bare": bare,
    "passthrough": passthrough,
    "readykit-health": readykit_health,
    "readykit-observed": readykit_observed,
    "instrumentator": instrumentator,
    "starlette-exporter": starlette_exporter,
}
