"""A route parameter named like a secret (`/reset/{token}`) never reaches a log line or a
record: through FastAPI's redirect to the trailing-slash form (no route matched the path as
sent), a one-segment route, and a log line quoting the path percent-encoded (uvicorn's access
line)."""

from __future__ import annotations

import json
import logging
from io import StringIO
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI, Request

from readykit import ReadyKit, Settings
from readykit.logging import configure_logging
from readykit.testing import RecordCollector, asgi_request

pytestmark = pytest.mark.anyio

TOKEN = "Tok3nSecretAAA3"


def build() -> tuple[Any, RecordCollector, ReadyKit]:
    api = FastAPI()

    @api.get("/reset/{token}/")
    async def reset(token: str) -> dict[str, str]:
        return {"ok": "yes"}

    @api.get("/{token}")
    async def magic(token: str, request: Request) -> dict[str, str]:
        logging.getLogger("myapp").info("magic link used: %s", request.url.path)
        # as uvicorn's access line quotes it: percent-encoded
        logging.getLogger("myapp").info('"GET %s HTTP/1.1" 200', quote(request.scope["path"]))
        return {"ok": "yes"}

    kit = ReadyKit(Settings(configure_logging=False, access_log=False, rate_limits={}))
    collector = RecordCollector()
    kit.add_recorder(collector)
    return kit.wrap(api), collector, kit


async def test_a_redirect_to_the_trailing_slash_form_shows_the_token_redacted() -> None:
    app, collector, _ = build()
    reply = await asgi_request(app, "GET", f"/reset/{TOKEN}")
    assert reply.status == 307  # FastAPI redirects to `/reset/{token}/`: no route matched
    [record] = collector.records
    assert record.path == "/reset/[REDACTED]"


async def test_a_line_logged_while_serving_shows_the_paths_secret_redacted() -> None:
    out = StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    app, collector, _ = build()
    await asgi_request(app, "GET", f"/{TOKEN}")
    await asgi_request(app, "GET", f"/{TOKEN} é")  # quoted: `%20%C3%A9`
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    mine = [line["event"] for line in lines if line.get("logger") == "myapp"]
    assert mine == ["magic link used: /[REDACTED]", '"GET /[REDACTED] HTTP/1.1" 200'] * 2
    assert TOKEN not in out.getvalue()
    assert [r.path for r in collector.records] == ["/[REDACTED]"] * 2
