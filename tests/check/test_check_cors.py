"""cors: an arbitrary Origin echoed with credentials is a blocker."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit.check.probes import cors


def app(**options: object) -> Starlette:
    async def items(request: Request) -> JSONResponse:
        return JSONResponse([])

    middleware = [Middleware(CORSMiddleware, **options)] if options else []  # type: ignore[arg-type]
    return Starlette(
        routes=[Route("/", items), Route("/login", items, methods=["POST"])], middleware=middleware
    )


def test_reflected_origin_with_credentials_is_a_blocker(serve_app, run_probe, check_ids) -> None:
    url = serve_app(app(allow_origin_regex=".*", allow_credentials=True))
    ctx = run_probe(url, cors.run)
    assert check_ids(ctx) == {"cors.reflected-origin-with-credentials": "blocker"}
    assert cors.EVIL_ORIGIN in ctx.findings[0].evidence.response


def test_reflected_origin_without_credentials_is_a_warning(serve_app, run_probe, check_ids) -> None:
    url = serve_app(app(allow_origin_regex=".*"))
    assert check_ids(run_probe(url, cors.run)) == {"cors.reflected-origin": "warning"}


def test_public_wildcard_is_fine(serve_app, run_probe, check_ids) -> None:
    url = serve_app(app(allow_origins=["*"]))
    assert check_ids(run_probe(url, cors.run)) == {"cors.ok": "info"}


def test_fixed_allow_list_is_fine(serve_app, run_probe, check_ids) -> None:
    url = serve_app(app(allow_origins=["https://app.example"], allow_credentials=True))
    assert check_ids(run_probe(url, cors.run)) == {"cors.ok": "info"}


def test_no_cors_at_all_is_fine(serve_app, run_probe, check_ids) -> None:
    assert check_ids(run_probe(serve_app(app()), cors.run)) == {"cors.ok": "info"}
