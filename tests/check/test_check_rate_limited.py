"""A target that rate-limits the checker: what came back is the limit, not the service.

The check says so (with the Retry-After), marks what it could not judge, and is `inconclusive`
(exit 3), never `ready`. End to end on the real demo in a child process (`bundled_demo`), with a
limit the test spends first, and with the demo's own limits, checked twice in a row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.client import Client
from readykit.check.discovery import Endpoint, Target, discover
from readykit.check.probes import security_headers
from readykit.check.runner import bundled_demo
from readykit.cli import cli

API_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", *args], catch_exceptions=False)
    return result.exit_code, result.stdout


def limited(request: Request) -> Response:
    return PlainTextResponse("Too Many Requests", 429, headers={"Retry-After": "41"})


@pytest.fixture
def spent_demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real demo with a small per-client limit, already spent by this client."""
    monkeypatch.setenv("READYKIT_RATE_LIMITS", json.dumps({"default": "30/hour"}))
    with bundled_demo() as (url, _token), httpx.Client(base_url=url) as client:
        statuses = [client.get("/rates").status_code for _ in range(40)]
        assert 429 in statuses
        yield url


def test_a_check_the_target_rate_limits_is_inconclusive_and_says_so(
    spent_demo: str, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    code, stdout = invoke(spent_demo, "--json", str(report))
    assert code == 3
    doc = json.loads(report.read_text())
    assert doc["verdict"] == "inconclusive"
    assert doc["score"] is None
    # discovery reports the 429 instead of crawling the limiter's answers
    assert doc["discovery"]["source"] == "discovery rate-limited (429)"
    assert doc["discovery"]["endpoints"] == []
    assert doc["discovery"]["rate_limited"].startswith("the target rate-limited the checker")
    limit = doc["rate_limited"]
    assert limit["retry_after"].isdigit()
    assert f"(Retry-After: {limit['retry_after']})" in limit["summary"]
    assert {"security-headers", "exposure", "performance"} <= set(limit["not_judged"])
    checks = {f["check"]: f for f in doc["findings"]}
    for category in limit["not_judged"]:
        assert doc["categories"][category]["score"] is None, category
        assert checks[f"{category}.not-judged"]["severity"] == "warning"
    # nothing graded from a 429, nothing "ok" read off 429s
    assert "security-headers.grade" not in checks
    assert not {"exposure.none", "input-handling.ok", "cors.ok", "performance.ok"} & set(checks)
    assert "429" in checks["security-headers.not-judged"]["title"]
    assert "verdict: inconclusive" in stdout
    assert "score n/a" in stdout
    assert "rate-limited the checker" in stdout
    assert f"Retry-After: {limit['retry_after']}" in stdout
    # a gate never passes what it could not judge
    assert invoke(spent_demo, "-q", "--fail-on", "blocker")[0] == 3


def _problems(doc: dict[str, Any]) -> set[str]:
    return {f["check"] for f in doc["findings"] if f["severity"] != "info"}


def test_two_checks_in_a_row_on_the_demo_are_both_judged_and_comparable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("READYKIT_RATE_LIMITS", raising=False)  # the demo's own limits
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    with bundled_demo() as (url, _token):
        code, _ = invoke(url, "-q", "--json", str(first))
        again, _ = invoke(url, "-q", "--json", str(second), "--baseline", str(first))
    before, after = json.loads(first.read_text()), json.loads(second.read_text())
    assert (code, before["verdict"]) == (0, "ready")
    for doc in (before, after):
        assert doc["rate_limited"] is None
        assert doc["categories"]["performance"]["score"] is not None
        swept = doc["performance"]["endpoints"].values()
        assert all(s["limited"] == 0 for e in swept for s in e["steps"])
    # the baseline is compared, step by step (a regression would be a real, measured one)
    assert _problems(after) <= {"performance.regression"}
    assert any(f["check"] == "performance.baseline" for f in after["findings"]) or (
        "performance.regression" in _problems(after)
    )
    assert again == (1 if _problems(after) else 0)


# --- each part on a purpose-built service ----------------------------------------------------


def _discover(url: str) -> Target:
    async def main() -> Target:
        async with Client(url) as client:
            return await discover(client.budget(45, 15))

    return asyncio.run(main())


def test_discovery_stops_at_a_429_and_says_so(serve_app) -> None:
    def page(request: Request) -> Response:
        html = '<a href="/items">items</a> <a href="/about">about</a>'
        return PlainTextResponse(html, media_type="text/html")

    url = serve_app(Starlette(routes=[Route("/openapi.json", limited), Route("/", page)]))
    target = _discover(url)
    assert target.source == "discovery rate-limited (429)"
    assert target.endpoints == []  # no crawl of what the limiter let through
    assert target.rate_limited == (
        "the target rate-limited the checker: 429 on 1 of 2 answers (Retry-After: 41)"
    )


def _grade(url: str, run_probe, *paths: str) -> Any:
    target = Target(endpoints=[Endpoint("GET", p) for p in paths])
    return run_probe(url, security_headers.run, target=target)


def test_security_headers_are_graded_from_an_answer_that_is_not_a_429(
    serve_app, run_probe, check_ids
) -> None:
    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True}, headers=API_HEADERS)

    async def broken(request: Request) -> Response:
        return PlainTextResponse("oops", 503)

    url = serve_app(Starlette(routes=[Route("/a", limited), Route("/b", broken), Route("/c", ok)]))
    ctx = _grade(url, run_probe, "/a", "/b", "/c")
    grade = next(f for f in ctx.findings if f.check == "security-headers.grade")
    assert (grade.evidence.request, grade.evidence.status) == ("GET /c", 200)
    assert ctx.not_judged is None
    assert check_ids(ctx) == {"security-headers.grade": "info"}


def test_security_headers_are_not_judged_from_429s_and_5xx(serve_app, run_probe) -> None:
    async def broken(request: Request) -> Response:
        return PlainTextResponse("oops", 500)

    url = serve_app(Starlette(routes=[Route("/a", limited), Route("/", broken)]))
    ctx = _grade(url, run_probe, "/a")
    assert ctx.findings == []
    assert ctx.score is None
    assert ctx.limited
    assert ctx.not_judged == (
        "no response to grade (a 429 or 5xx is not graded): GET /a → 429; GET / → 500 "
        "(Retry-After: 41)"
    )
