"""What reports never contain: the ops token the user gave, and secrets cut by an excerpt."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from readykit.check.finding import excerpt
from readykit.check.probe import ProbeOptions
from readykit.check.report import print_summary, to_html, to_json, to_markdown
from readykit.check.runner import CheckOptions, check

TOKEN = "rk-ops-Zq8xW2vN4tLp7Hs9"  # not a shape the redactor knows: only its value gives it away
DSN = "postgresql://appuser:Sup3rS3cretPw@db.internal/prod"


def echo_app() -> Starlette:
    """A service whose failing health check echoes the caller's credential, raw and encoded."""

    async def health(request: Request) -> Response:
        raw = request.headers.get("authorization", "").split(" ", 1)[-1]
        b64 = base64.b64encode(raw.encode()).decode()
        output = f"upstream rejected credential {raw} ({quote(raw, safe='')}, {b64})"
        doc = {
            "status": "fail" if raw else "pass",
            "checks": {"upstream:auth": [{"status": "fail" if raw else "pass", "output": output}]},
        }
        return Response(json.dumps(doc), 503 if raw else 200, media_type="application/health+json")

    async def overview(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/health", health), Route("/ops/api/overview", overview)])


def test_an_echoed_ops_token_is_in_no_report(serve_app) -> None:
    url = serve_app(echo_app())
    options = CheckOptions(url, only=("inside-view",), probe=ProbeOptions(ops_token=TOKEN))
    report = asyncio.run(check(options))
    assert any("upstream rejected credential" in json.dumps(f.as_dict()) for f in report.findings)
    terminal = io.StringIO()
    print_summary(report, file=terminal)
    encoded = (quote(TOKEN, safe=""), base64.b64encode(TOKEN.encode()).decode())
    for rendered in (to_json(report), to_markdown(report), to_html(report), terminal.getvalue()):
        assert "upstream rejected credential" in rendered
        for form in (TOKEN, *encoded):
            assert form not in rendered


def test_a_secret_straddling_the_old_cut_is_redacted() -> None:
    # two tokens the redactor shortens, then a DSN whose `@` lies past where the text used to be
    # cut before redaction (limit * 4 characters): cut there, the DSN was not recognised
    jwt = (
        "eyJhbGciOiJIUzI1NiJ9."
        + "eyJzdWIiOiIxMjM0NTY3ODkwIn0" * 11
        + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )
    body = f'{{"session": "{jwt}", "refresh": "{jwt}", "error": " {DSN}"}}'
    assert body.index("postgresql") < 800 <= body.index("@")
    shown = excerpt(body.encode(), 200)
    assert "postgresql://appuser:" in shown  # the DSN is in what is shown...
    assert "Sup3rS3c" not in shown  # ...without its password
