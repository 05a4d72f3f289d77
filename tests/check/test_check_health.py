"""The health probe against services with and without sound health endpoints.

What readiness costs per call is judged on virtual time (`virtual_time.py`), so a 120 ms check
takes exactly 120 ms however busy the host is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.discovery import Endpoint, Target
from readykit.check.probes import health

HEALTH = "application/health+json"


def _json(doc: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(doc, status, media_type=HEALTH)


def app_with(routes: dict[str, Callable[[Request], Any]]) -> Starlette:
    return Starlette(routes=[Route(path, fn) for path, fn in routes.items()])


async def live(request: Request) -> Response:
    return _json({"status": "pass", "checks": {}})


async def ready(request: Request) -> Response:
    return _json({"status": "pass", "checks": {"db:responseTime": [{"status": "pass"}]}})


def test_sound_endpoints_give_no_problem(serve_app, run_probe, check_ids) -> None:
    url = serve_app(app_with({"/health/live": live, "/health/ready": ready}))
    ctx = run_probe(url, health.run)
    assert check_ids(ctx) == {"health.ok": "info"}


def test_no_health_endpoint_is_a_warning_not_a_blocker(serve_app, run_probe, check_ids) -> None:
    url = serve_app(app_with({"/": lambda r: PlainTextResponse("hi")}))
    assert check_ids(run_probe(url, health.run)) == {"health.missing": "warning"}


@pytest.mark.parametrize(
    ("live_path", "ready_path", "body"),
    [
        ("/livez", "/readyz", "ok"),  # Kubernetes components
        ("/-/healthy", "/-/ready", "Prometheus Server is Healthy."),  # Prometheus, Alertmanager
        (
            "/actuator/health/liveness",
            "/actuator/health/readiness",
            '{"status":"UP","components":{"db":{"status":"UP"}}}',  # Spring Boot Actuator
        ),
    ],
)
def test_the_health_paths_of_the_field_are_recognised(
    serve_app, run_probe, check_ids, live_path: str, ready_path: str, body: str
) -> None:
    async def answer(request: Request) -> Response:
        kind = "application/json" if body.startswith("{") else "text/plain"
        return Response(body, media_type=kind)

    url = serve_app(app_with({live_path: answer, ready_path: answer}))
    found = check_ids(run_probe(url, health.run))
    assert "health.missing" not in found
    assert not {k for k, v in found.items() if v != "info"}


def test_health_at_another_path_found_by_discovery(serve_app, run_probe, check_ids) -> None:
    async def alive(request: Request) -> Response:
        return _json({"status": "pass", "checks": {"db:responseTime": [{"status": "pass"}]}})

    url = serve_app(app_with({"/internal/alive": alive}))
    target = Target(endpoints=[Endpoint("GET", "/internal/alive", source="crawl (link)")])
    found = check_ids(run_probe(url, health.run, target=target))
    assert "health.missing" not in found
    assert found["health.split"] == "warning"


def test_catch_all_ok_is_not_taken_for_a_health_endpoint(serve_app, run_probe, check_ids) -> None:
    async def everything(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("OK")(scope, receive, send)

    url = serve_app(everything)
    assert check_ids(run_probe(url, health.run)) == {"health.missing": "warning"}


def test_readiness_without_checks_and_one_endpoint(serve_app, run_probe, check_ids) -> None:
    async def healthz(request: Request) -> Response:
        return _json({"status": "pass"})

    url = serve_app(app_with({"/healthz": healthz}))
    found = check_ids(run_probe(url, health.run))
    assert found["health.split"] == "warning"
    assert found["health.readiness-no-checks"] == "warning"


def test_failing_readiness_is_a_blocker(serve_app, run_probe, check_ids) -> None:
    async def failing(request: Request) -> Response:
        return _json({"status": "fail", "checks": {"db:responseTime": [{"status": "fail"}]}}, 503)

    url = serve_app(app_with({"/health/live": live, "/health/ready": failing}))
    assert check_ids(run_probe(url, health.run))["health.readiness-failing"] == "blocker"


def timed_health(ready_ms: float) -> web.Application:
    """Sound health endpoints whose readiness costs `ready_ms` of virtual time on every call."""

    def doc(checks: dict[str, Any]) -> web.Response:
        return web.json_response({"status": "pass", "checks": checks}, content_type=HEALTH)

    async def live(request: web.Request) -> web.Response:
        return doc({})

    async def ready(request: web.Request) -> web.Response:
        await asyncio.sleep(ready_ms / 1000)  # a dependency call, never cached
        return doc({"db:responseTime": [{"status": "pass"}]})

    app = web.Application()
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    return app


@pytest.mark.parametrize(
    ("ready_ms", "found", "title"),
    [
        (20, {"health.ok": "info"}, "health endpoints found: /health/live, /health/ready"),
        (
            health.SLOW_MS + 20,
            {"health.uncached": "warning"},
            "every call to /health/ready costs >= 120 ms: results are not cached",
        ),
        (
            health.TOO_SLOW_MS + 500,
            {"health.slow": "blocker"},
            "/health/ready takes 1500 ms (median): probes time out at 1 s by default",
        ),
    ],
)
def test_what_readiness_costs_per_call(
    run_virtual_probe, check_ids, ready_ms: float, found: dict[str, str], title: str
) -> None:
    ctx = run_virtual_probe(health.run, timed_health(ready_ms))
    assert check_ids(ctx) == found
    assert [f.title for f in ctx.findings] == [title]


def test_readykit_own_endpoints_pass(serve_app, run_probe, check_ids) -> None:
    from readykit import ReadyKit, Settings

    kit = ReadyKit(Settings(service_name="checked", configure_logging=False))

    @kit.check("database")
    async def database() -> None:
        return None

    url = serve_app(kit.wrap(app_with({"/": lambda r: PlainTextResponse("hi")})), lifespan="on")
    found = check_ids(run_probe(url, health.run))
    assert not {k: v for k, v in found.items() if v != "info"}
