"""A hostile target (raw asyncio on 127.0.0.1) against the whole check: it gets a report, not a
crash, and what it says reaches no terminal or report as markup or control sequences."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json

import pytest
from hostile_server import Answer, hostile, response

from readykit.check.client import Response
from readykit.check.finding import Evidence, Finding, excerpt
from readykit.check.probe import ProbeOptions
from readykit.check.probes import inside_view
from readykit.check.report import print_summary, to_html, to_json, to_markdown
from readykit.check.runner import CheckOptions, Report, check

ESC = "\x1b"
OSC8 = f"{ESC}]8;;https://evil.example/phish{ESC}\\CLICK-ME{ESC}]8;;{ESC}\\"
ANSI = f"{ESC}[2J{ESC}[31;1mFAKE-READY{ESC}[0m"
CR = "\rverdict: ready  score 100/100"
HTML = "<script>alert(1)</script><img src=x onerror=alert(2)>"
MD = "\n```\n# INJECTED HEADING\n[click](javascript:alert(3))\n<img src=x onerror=alert(4)>\n```"


def run(answer: Answer, **options: object) -> Report:
    async def main() -> Report:
        async with hostile(answer) as url:
            return await check(CheckOptions(url, **options))  # type: ignore[arg-type]

    return asyncio.run(main())


def inject(method: str, path: str, headers: dict[str, str]) -> bytes:
    if path == "/openapi.json":
        paths = {"/health": {"get": {}}, "/a" + ANSI: {"get": {}}, "/b" + MD: {"get": {}}}
        doc = {"openapi": "3.0.0", "paths": paths}
        return response(200, json.dumps(doc), ["Content-Type: application/json"])
    if path.startswith("/health"):
        body = json.dumps({"status": "fail " + OSC8 + ANSI + CR + HTML + MD})
        return response(503, body, ["Content-Type: application/health+json"])
    server = f"Server: Werkzeug/2.0 {HTML} {ESC}[31mRED{ESC}[0m"
    return response(200, "hi " + HTML, ["Content-Type: text/html", server])


def test_what_the_target_says_reaches_the_terminal_without_control_sequences() -> None:
    report = run(inject, only=("health", "exposure"))
    titles = " ".join(f.title for f in report.findings)
    assert "FAKE-READY" in titles
    assert "Werkzeug/2.0" in titles
    terminal = io.StringIO()
    print_summary(report, file=terminal)
    shown = terminal.getvalue()
    assert "FAKE-READY" in shown
    for rendered in (shown, to_json(report), to_markdown(report)):
        assert ESC not in rendered
        assert "\r" not in rendered


def rendered_markdown(report: Report) -> str:
    """The Markdown report as a CommonMark renderer (raw HTML allowed) turns it into HTML."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(to_markdown(report))


def test_what_the_target_says_is_text_in_the_markdown_report() -> None:
    report = run(inject, only=("health",))
    fence = "```\n# INJECTED HEADING\n[click](javascript:alert(5))\n<img src=x onerror=alert(6)>"
    planted = Finding(  # a request, a response and a fix line each trying to end the fence
        "exposure.debug",
        "exposure",
        "blocker",
        "debug page at /x" + MD,
        Evidence("GET /x" + fence, 500, "body" + fence),
        "See [the docs](javascript:alert(7)) <b>now</b>",
    )
    report = dataclasses.replace(report, findings=[*report.findings, planted])
    html = rendered_markdown(report)
    assert "FAKE-READY" in html
    assert "INJECTED HEADING" in html
    assert "<script" not in html
    assert "<img" not in html
    assert "<b>" not in html
    assert 'href="javascript' not in html
    assert "<h1>INJECTED" not in html
    assert html.count("<h1>") == 1  # the report's own title
    assert "<a " not in html
    # every piece of evidence stayed inside its code block, as sent
    assert html.count("<pre><code") == len(report.findings)
    assert "GET /x```\n# INJECTED HEADING" in html


TOKEN = "rkOpsTok3n-Zx81Qm5vLp0aBcDeFgHiJk"  # no shape the redactor knows


def echo_cut(method: str, path: str, headers: dict[str, str]) -> bytes:
    """Echoes the ops token in a health check's value, where the excerpt's cut goes through it."""
    if path.startswith("/ops/api/overview"):
        return response(200, "{}", ["Content-Type: application/json"])
    if path == "/health" and "authorization" in headers:
        pad = "word " * 232  # the token straddles the excerpt's 1200th character
        checks = {"db": [{"status": "fail", "observedValue": pad + TOKEN}]}
        doc = {"status": "fail", "checks": checks}
        return response(503, json.dumps(doc), ["Content-Type: application/health+json"])
    if path.startswith("/ops/api/entries"):
        return response(200, json.dumps({"latest": []}), ["Content-Type: application/json"])
    return response(200, "ok")


def every_rendering(report: Report) -> list[str]:
    terminal = io.StringIO()
    print_summary(report, file=terminal)
    return [to_json(report), to_markdown(report), to_html(report), terminal.getvalue()]


def test_an_ops_token_cut_by_an_excerpt_leaves_no_piece_in_any_report() -> None:
    report = run(echo_cut, only=("inside-view",), probe=ProbeOptions(ops_token=TOKEN))
    (failing,) = [f for f in report.findings if f.check == "inside-view.health-failing"]
    # replaced before the cut (at the 1200th character, through the token): shown whole
    assert failing.evidence.response.endswith("word [REDACTED] ")
    for rendered in every_rendering(report):
        assert TOKEN[:4] not in rendered
    # and where a probe cut it without knowing the token, the report's scrub finds the piece
    cut = excerpt("db: fail " + "word " * 232 + TOKEN, 1200)
    assert cut.endswith(TOKEN[:31] + "…")
    planted = Finding("health.ok", "health", "info", "ok", Evidence("GET /health", 200, cut))
    report = dataclasses.replace(report, findings=[planted])
    for rendered in every_rendering(report):
        assert TOKEN[:4] not in rendered
    assert "[REDACTED]…" in to_json(report)


# --- answers that used to stop the whole check with a traceback --------------------------------


def openapi(doc: object) -> bytes:
    return response(200, json.dumps(doc), ["Content-Type: application/json"])


def deep_json(method: str, path: str, headers: dict[str, str]) -> bytes:
    if path == "/openapi.json":  # nested deeper than Python's stack
        return response(200, "[" * 200_000 + "]" * 200_000, ["Content-Type: application/json"])
    return response(200, "ok")


def test_an_openapi_document_nested_too_deep_is_no_document() -> None:
    report = run(deep_json, only=("health",))
    assert report.discovery["source"] != "/openapi.json"
    assert {f.category for f in report.findings} == {"health"}


def test_a_discovery_that_fails_leaves_the_check_going(monkeypatch: pytest.MonkeyPatch) -> None:
    # the net under every fix: an answer that sets off an error nobody foresaw (here, the
    # deep document parsed as it was before) stops discovery, not the check
    monkeypatch.setattr(Response, "json", lambda self: json.loads(self.body))
    report = run(deep_json, only=("health",))
    assert report.discovery["source"] == (
        "discovery stopped on an answer it could not handle (RecursionError)"
    )
    assert {f.category for f in report.findings} == {"health"}


def other_host_link(method: str, path: str, headers: dict[str, str]) -> bytes:
    if path == "/":
        host = headers["host"]
        page = f'<a href="http://{host}//evil.example/x">x</a> <a href="/page">page</a>'
        return response(200, page, ["Content-Type: text/html"])
    if path == "/page":
        return response(200, "a page", ["Content-Type: text/html"])
    return response(404, "not found")


def test_a_same_origin_link_to_a_double_slash_path_is_not_followed() -> None:
    report = run(other_host_link, only=("health",))
    assert report.discovery["source"] == "crawl"
    assert "GET /page" in report.discovery["endpoints"]
    assert not [e for e in report.discovery["endpoints"] if "//" in e]


def other_host_server(method: str, path: str, headers: dict[str, str]) -> bytes:
    if path == "/openapi.json":
        return openapi(
            {
                "openapi": "3.0.0",
                "servers": [{"url": "//169.254.169.254"}],
                "paths": {"/latest": {"get": {}}, "//evil.example/x": {"get": {}}},
            }
        )
    if path == "/latest":
        return response(200, '{"latest": 1}', ["Content-Type: application/json"])
    return response(404, "not found")


def test_an_openapi_server_or_path_on_another_host_is_not_an_endpoint() -> None:
    report = run(
        other_host_server,
        only=("performance",),
        probe=ProbeOptions(load_users=(1,), load_step_s=0.3),
    )
    assert report.discovery["endpoints"] == ["GET /latest"]  # on the target, no prefix
    assert "performance.incomplete" not in {f.check for f in report.findings}
    assert "GET /latest" in report.performance["endpoints"]


def bad_numbers(method: str, path: str, headers: dict[str, str]) -> bytes:
    if path.startswith("/ops/api/overview"):
        return openapi({})
    if path.startswith("/ops/api/entries"):
        rows = [{"ts": "not-a-number", "duration_ms": "long", "group": "x"}, {"ts": [1]}]
        return openapi({"latest": rows})
    if path.startswith("/ops/api/guards"):
        return openapi({"cache": {"c": {"hit_rate": "most", "hits": "many", "misses": None}}})
    return response(200, "ok")


def test_an_ops_api_that_answers_words_for_numbers_is_read_as_zero() -> None:
    report = run(bad_numbers, only=("inside-view",), probe=ProbeOptions(ops_token=TOKEN))
    checks = {f.check: f for f in report.findings}
    assert "inside-view.incomplete" not in checks
    assert checks["inside-view.cache"].title == "cache: c: hit rate 0% (0 hits, 0 misses)"


def test_a_probe_that_fails_costs_that_probe_not_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the net: the same answers read as before (float() of a word) stop the inside view only
    monkeypatch.setattr(inside_view, "_number", float)
    report = run(bad_numbers, only=("health", "inside-view"), probe=ProbeOptions(ops_token=TOKEN))
    (incomplete,) = [f for f in report.findings if f.check == "inside-view.incomplete"]
    assert incomplete.severity == "warning"
    assert incomplete.title.startswith(
        "the inside-view probe stopped on an answer it could not handle (ValueError: "
    )
    assert any(f.category == "health" for f in report.findings)  # the check went on
    assert report.verdict != "ready"


def superscript_example(method: str, path: str, headers: dict[str, str]) -> bytes:
    if path == "/openapi.json":
        pin = {"type": "integer", "example": "\u00b2"}  # a digit to str.isdigit, not to int()
        schema = {"type": "object", "required": ["pin"], "properties": {"pin": pin}}
        body = {"content": {"application/json": {"schema": schema}}}
        return openapi({"openapi": "3.0.0", "paths": {"/login": {"post": {"requestBody": body}}}})
    return response(401, "wrong pin")


def test_a_superscript_example_for_an_integer_is_a_placeholder() -> None:
    report = run(superscript_example, only=("rate-limiting",))
    checks = {f.check for f in report.findings}
    assert "rate-limiting.incomplete" not in checks
    assert "rate-limiting.auth-unlimited" in checks
