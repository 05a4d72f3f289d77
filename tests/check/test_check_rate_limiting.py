"""rate-limiting: a bounded burst; is a 429 ever returned, and does it say when to retry?"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.client import Client
from readykit.check.discovery import Endpoint, Target
from readykit.check.probe import ProbeContext, ProbeOptions
from readykit.check.probes import rate_limiting

TARGET = Target(endpoints=[Endpoint("POST", "/login", json_body=True), Endpoint("GET", "/items")])


def app(login_limit: int | None, retry_after: bool = True, advertise: bool = False) -> Starlette:
    counts = {"login": 0}

    async def login(request: Request) -> Response:
        counts["login"] += 1
        if login_limit is not None and counts["login"] > login_limit:
            headers = {"RateLimit": "limit=5, remaining=0, reset=60"}
            if retry_after:
                headers["Retry-After"] = "60"
            return JSONResponse({"title": "too many"}, 429, headers=headers)
        return JSONResponse({"title": "bad credentials"}, 401)

    async def items(request: Request) -> Response:
        headers = {"RateLimit-Policy": "600;w=60", "RateLimit": "limit=600"} if advertise else {}
        return JSONResponse([], headers=headers)

    return Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/items", items)])


def test_unlimited_login_is_a_blocker(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(app(None)), rate_limiting.run, target=TARGET)
    assert check_ids(ctx) == {
        "rate-limiting.auth-unlimited": "blocker",
        "rate-limiting.unlimited": "warning",
    }
    blocker = ctx.findings[0]
    assert f"x{rate_limiting.AUTH_BURST}" in blocker.evidence.request


def test_limited_login_and_advertised_default_pass(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(app(5, advertise=True)), rate_limiting.run, target=TARGET)
    assert check_ids(ctx) == {
        "rate-limiting.limited": "info",
        "rate-limiting.advertised": "info",
    }
    limited = ctx.findings[0]
    assert "retry-after: 60" in limited.evidence.response
    assert limited.evidence.status == 429


def test_429_without_retry_after_is_a_warning(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(app(5, retry_after=False)), rate_limiting.run, target=TARGET)
    assert check_ids(ctx)["rate-limiting.no-retry-after"] == "warning"


def test_burst_stays_within_its_bound(serve_app, run_probe) -> None:
    ctx = run_probe(serve_app(app(None)), rate_limiting.run, target=TARGET)
    assert ctx.budget.used == rate_limiting.AUTH_BURST + rate_limiting.OTHER_BURST


def test_no_auth_routes_is_noted(serve_app, run_probe, check_ids) -> None:
    target = Target(endpoints=[Endpoint("GET", "/items")])
    found = check_ids(
        run_probe(serve_app(app(None, advertise=True)), rate_limiting.run, target=target)
    )
    assert found == {"rate-limiting.no-auth-routes": "info", "rate-limiting.advertised": "info"}


def test_a_login_form_is_burst_with_its_own_fields_form_encoded(serve_app, check_ids) -> None:
    from readykit.check.discovery import discover

    seen: list[tuple[str, str]] = []

    async def index(request: Request) -> Response:
        form = '<form method="post" action="/login"><input name="user"><input name="passwd">'
        return HTMLResponse(form + "</form>")

    async def login(request: Request) -> Response:
        from urllib.parse import parse_qs

        form = parse_qs((await request.body()).decode())
        seen.append((request.headers.get("content-type", ""), form.get("passwd", [""])[0]))
        if len(seen) > 5:
            return PlainTextResponse("slow down", 429, headers={"Retry-After": "60"})
        return PlainTextResponse("wrong", 401)

    url = serve_app(Starlette(routes=[Route("/", index), Route("/login", login, methods=["POST"])]))

    async def go() -> dict[str, str]:
        async with Client(url) as client:
            target = await discover(client.budget(40, 10))
            ctx = ProbeContext(client.budget(200, 20), target, ProbeOptions())
            await rate_limiting.run(ctx)
            return check_ids(ctx)

    found = asyncio.run(go())
    assert "rate-limiting.auth-unlimited" not in found
    assert seen[0] == ("application/x-www-form-urlencoded", "readykit-check-wrong-password")


def test_a_route_that_refuses_the_method_is_not_judged(serve_app, check_ids) -> None:
    async def only_get(request: Request) -> Response:
        return PlainTextResponse("login page")

    url = serve_app(Starlette(routes=[Route("/login", only_get, methods=["GET"])]))
    target = Target(endpoints=[Endpoint("POST", "/login")])

    async def go() -> dict[str, str]:
        async with Client(url) as client:
            ctx = ProbeContext(client.budget(200, 20), target, ProbeOptions())
            await rate_limiting.run(ctx)
            return check_ids(ctx)

    found = asyncio.run(go())
    assert found["rate-limiting.not-tested"] == "info"
    assert "rate-limiting.auth-unlimited" not in found


TOKEN_DOC = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/oauth/token": {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/TokenIn"}}
                    },
                }
            }
        }
    },
    "components": {
        "schemas": {
            "TokenIn": {
                "type": "object",
                "required": ["grant_type", "client_id", "client_secret"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "client_id": {"type": "string"},
                    "client_secret": {"type": "string"},
                },
            }
        }
    },
}


def token_app(with_doc: bool) -> Starlette:
    """A token route that validates its JSON body (422, as FastAPI does) before its limiter
    (5 attempts, then 429) runs."""
    counts = {"attempts": 0}

    async def token(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("grant_type", "client_id", "client_secret")
        ):
            return JSONResponse({"detail": "validation error"}, 422)
        counts["attempts"] += 1
        if counts["attempts"] > 5:
            return JSONResponse({"error": "too many"}, 429, headers={"Retry-After": "60"})
        return JSONResponse({"error": "invalid_client"}, 401)

    async def openapi(request: Request) -> Response:
        return JSONResponse(TOKEN_DOC)

    routes = [Route("/oauth/token", token, methods=["POST"])]
    if with_doc:
        routes.append(Route("/openapi.json", openapi))
    return Starlette(routes=routes)


def test_attempts_refused_as_invalid_are_not_judged(serve_app, run_probe, check_ids) -> None:
    target = Target(endpoints=[Endpoint("POST", "/oauth/token", json_body=True)])
    ctx = run_probe(serve_app(token_app(with_doc=False)), rate_limiting.run, target=target)
    found = check_ids(ctx)
    assert "rate-limiting.auth-unlimited" not in found
    assert found["rate-limiting.not-tested"] == "info"
    untested = next(f for f in ctx.findings if f.check == "rate-limiting.not-tested")
    assert "invalid" in untested.title
    assert f"422 x{rate_limiting.AUTH_BURST}" in untested.evidence.response


def test_the_attempt_body_comes_from_the_openapi_schema(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(token_app(with_doc=True)), rate_limiting.run)
    found = check_ids(ctx)
    assert found["rate-limiting.no-policy-headers"] == "info"  # the 429 was reached
    assert "rate-limiting.auth-unlimited" not in found
    assert not any("/oauth/token" in f.title for f in ctx.findings if "not-tested" in f.check)


def test_an_oauth_400_invalid_grant_is_an_attempt(serve_app, run_probe, check_ids) -> None:
    async def token(request: Request) -> Response:
        return JSONResponse({"error": "invalid_grant"}, 400)

    url = serve_app(Starlette(routes=[Route("/oauth/token", token, methods=["POST"])]))
    target = Target(endpoints=[Endpoint("POST", "/oauth/token", json_body=True)])
    found = check_ids(run_probe(url, rate_limiting.run, target=target))
    assert found["rate-limiting.auth-unlimited"] == "blocker"
