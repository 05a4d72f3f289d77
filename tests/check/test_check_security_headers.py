"""security-headers: the Observatory's modifiers and grade table, and the probe end to end."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit.check.client import Response
from readykit.check.probes import security_headers as sh


def resp(**headers: str) -> Response:
    return Response(
        "GET", "/", 200, {k.replace("_", "-"): v for k, v in headers.items()}, b"{}", 0.0
    )


@pytest.mark.parametrize(
    ("score", "letter"),
    [
        (135, "A+"),
        (100, "A+"),
        (99, "A"),
        (90, "A"),
        (89, "A-"),
        (80, "B+"),
        (79, "B"),
        (65, "B-"),
        (60, "C+"),
        (50, "C"),
        (45, "C-"),
        (40, "D+"),
        (30, "D"),
        (25, "D-"),
        (24, "F"),
        (0, "F"),
    ],
)
def test_grade_table(score: int, letter: str) -> None:
    assert sh.grade(score) == letter


def test_no_headers_over_http_scores_fifty() -> None:
    score, mods = sh.evaluate(resp(), https=False)
    assert score == 50  # CSP -25, X-Frame-Options -20, nosniff -5
    assert {m.result for m in mods if m.modifier < 0} == {
        "csp-not-implemented",
        "x-frame-options-not-implemented",
        "x-content-type-options-not-implemented",
    }


def test_api_csp_earns_every_bonus() -> None:
    good = resp(
        content_security_policy=sh.API_CSP,
        x_content_type_options="nosniff",
        referrer_policy="no-referrer",
    )
    score, _ = sh.evaluate(good, https=False)
    assert score == 120  # +10 CSP default-src 'none', +5 frame-ancestors, +5 referrer
    assert sh.grade(score) == "A+"


def test_bonus_only_counts_for_an_a_without_it() -> None:
    weak = resp(
        content_security_policy="script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        x_content_type_options="nosniff",
        referrer_policy="no-referrer",
    )
    score, _ = sh.evaluate(weak, https=False)
    assert score == 80  # -20 unsafe-inline; the +5 bonuses are not added below 90


def test_https_needs_hsts_of_six_months() -> None:
    base = {"content_security_policy": sh.API_CSP, "x_content_type_options": "nosniff"}
    assert sh.evaluate(resp(**base), https=True)[0] == 115 - 20 - 15  # no bonus under 90: 80
    short = resp(**base, strict_transport_security="max-age=3600")
    assert sh.evaluate(short, https=True)[0] == 105  # 90 before the +15 bonus
    long = resp(**base, strict_transport_security="max-age=63072000; includeSubDomains")
    assert sh.evaluate(long, https=True)[0] == 115


def test_session_cookie_without_httponly_costs_thirty() -> None:
    score, mods = sh.evaluate(resp(set_cookie="session=abc; Path=/"), https=False)
    assert "cookies-session-without-httponly-flag" in {m.result for m in mods}
    assert score == 20


def _app(headers: dict[str, str]) -> Starlette:
    async def items(request: Request) -> JSONResponse:
        return JSONResponse([], headers=headers)

    return Starlette(routes=[Route("/", items)])


def test_probe_flags_each_missing_header(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(_app({})), sh.run)
    found = check_ids(ctx)
    assert found["security-headers.grade"] == "info"  # C: warnings, no blocker
    assert found["security-headers.content-security-policy"] == "warning"
    assert found["security-headers.x-content-type-options"] == "warning"
    assert ctx.score == 50


def test_probe_blocks_a_failing_grade(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(_app({"Set-Cookie": "sessionid=x; Path=/"})), sh.run)
    assert check_ids(ctx)["security-headers.grade"] == "blocker"
    assert "grade F" in next(f.title for f in ctx.findings if f.check.endswith(".grade"))


def test_probe_passes_api_headers(serve_app, run_probe, check_ids) -> None:
    headers = {
        "Content-Security-Policy": sh.API_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    ctx = run_probe(serve_app(_app(headers)), sh.run)
    assert check_ids(ctx) == {"security-headers.grade": "info"}
    assert ctx.score == 100
