"""observability: a metrics endpoint that parses; request ids echoed."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.probes import observability


def app(metrics: Response | None, echo_id: bool) -> Starlette:
    async def index(request: Request) -> Response:
        headers = {}
        if echo_id:
            headers["X-Request-ID"] = request.headers.get("x-request-id", "generated")
        return JSONResponse({}, headers=headers)

    async def serve_metrics(request: Request) -> Response:
        assert metrics is not None
        return metrics

    routes = [Route("/", index)]
    if metrics is not None:
        routes.append(Route("/metrics", serve_metrics))
    return Starlette(routes=routes)


def test_parsing_metrics_and_echoed_ids(serve_app, run_probe, check_ids) -> None:
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    registry = CollectorRegistry()
    Counter("requests", "Requests.", registry=registry).inc()
    metrics = Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
    found = check_ids(run_probe(serve_app(app(metrics, echo_id=True)), observability.run))
    assert found == {
        "observability.metrics": "info",
        "observability.request-id": "info",
        "exposure.metrics-open": "warning",  # anyone may read them
    }


def test_metrics_behind_a_token_are_not_exposed(serve_app, run_probe, check_ids) -> None:
    from readykit import ReadyKit, Settings

    kit = ReadyKit(Settings(records=False, configure_logging=False, ops_token="scrape-token"))
    found = check_ids(run_probe(serve_app(kit.wrap(app(None, echo_id=True))), observability.run))
    assert found["observability.metrics-protected"] == "info"
    assert "exposure.metrics-open" not in found


def test_nothing_observable_gives_warnings(serve_app, run_probe, check_ids) -> None:
    found = check_ids(run_probe(serve_app(app(None, echo_id=False)), observability.run))
    assert found == {
        "observability.no-metrics": "warning",
        "observability.no-request-id": "warning",
    }


def test_broken_metrics_are_a_warning(serve_app, run_probe, check_ids) -> None:
    broken = PlainTextResponse('# HELP x_total things\nx_total{a="b 1\n')
    found = check_ids(run_probe(serve_app(app(broken, echo_id=True)), observability.run))
    assert found["observability.metrics-unparsable"] == "warning"


def test_protected_metrics_are_noted(serve_app, run_probe, check_ids) -> None:
    denied = JSONResponse({"title": "forbidden"}, 403)
    found = check_ids(run_probe(serve_app(app(denied, echo_id=True)), observability.run))
    assert found["observability.metrics-protected"] == "info"
