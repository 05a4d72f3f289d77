"""No secret reaches the store: over 1,000 secret shapes sent as request paths (audit resource,
slow-request path), exception messages, audit resources and details; the SQLite file (and its
WAL) is searched byte by byte afterwards, and the dashboard's JSON too."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit.testing import asgi_request, lifespan
from secret_corpus import secret_shapes, structured_secrets

pytestmark = pytest.mark.anyio


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


async def boom(request: Request) -> None:
    raise ValueError(request.headers["x-message"])


async def test_no_secret_shape_reaches_the_store(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            ops_trust_loopback=True,  # the test reads health details and /ops from loopback
            access_log=False,
            store_url=f"sqlite:///{db}",
            spill_path=str(tmp_path / "spill.jsonl"),
            slow_request_ms=0.0001,  # every request is a slow request: its path is stored
            rate_limits={},
        )
    )
    routes = [Route("/echo/{rest:path}", create, methods=["POST"]), Route("/boom", boom)]
    app = kit.wrap(Starlette(routes=routes))
    shapes = list(secret_shapes())
    assert len(shapes) >= 1000
    secrets = [secret for _, secret in shapes]

    async def one(text: str) -> None:
        # a path with a newline matches no route: 404, audited all the same
        assert (await asgi_request(app, "POST", "/echo/" + text)).status in (201, 404)
        header = text.replace("\n", " ").encode("latin-1", "replace").decode("latin-1")
        r = await asgi_request(app, "GET", "/boom", headers=[("X-Message", header)])
        assert r.status == 500
        await kit.audit.record("x.secret", resource=text, details={"note": text, "list": [text]})

    async with lifespan(app):
        for start in range(0, len(shapes), 100):
            await asyncio.gather(*(one(text) for text, _ in shapes[start : start + 100]))
        structured = list(structured_secrets())
        for value, secret in structured:
            await kit.audit.record("x.structured", details=value)
            secrets.append(secret)
        assert kit.records is not None
        await kit.records.writer.flush()
        views: list[Any] = []
        for kind in (b"exception", b"slow_request"):
            r = await asgi_request(app, "GET", "/ops/api/entries", query_string=b"kind=" + kind)
            assert r.status == 200
            views.append(r.body.decode())
        for action in (b"x.secret", b"x.structured"):
            r = await asgi_request(app, "GET", "/ops/api/audit", query_string=b"action=" + action)
            assert r.status == 200
            views.append(r.body.decode())
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("records.db*"))
    leaks = [s for s in secrets if s.encode() in stored or any(s in v for v in views)]
    assert leaks == []
    with sqlite3.connect(db) as conn:  # the sinks were all exercised
        kinds = dict(conn.execute("SELECT kind, count(*) FROM rk_entries GROUP BY kind"))
        audits = conn.execute("SELECT count(*) FROM rk_audit").fetchone()[0]
    assert kinds["exception"] == len(shapes)
    assert kinds["slow_request"] >= 2 * len(shapes)
    assert audits == 2 * len(shapes) + len(structured)
    assert all(json.loads(v) for v in views)  # the dashboard showed rows, none with a secret


async def test_custom_redact_keys_reach_stored_messages_and_resources(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            store_url=f"sqlite:///{db}",
            spill_path=str(tmp_path / "spill.jsonl"),
            redact_keys=["national_id"],
        )
    )
    app = kit.wrap(Starlette(routes=[Route("/boom", boom)]))
    async with lifespan(app):
        message = "no match for national_id=LEAKCANARY1"
        r = await asgi_request(app, "GET", "/boom", headers=[("X-Message", message)])
        assert r.status == 500
        await kit.audit.record("x.lookup", resource="person/national_id=LEAKCANARY2")
        assert kit.records is not None
        await kit.records.writer.flush()
        (exc,) = await kit.records.store.entries("exception")
        (audit,) = await kit.records.store.audit(action="x.lookup")
    assert exc["data"]["message"] == "no match for national_id=[REDACTED]"
    assert audit["resource"] == "person/national_id=[REDACTED]"
    assert b"LEAKCANARY" not in b"".join(p.read_bytes() for p in tmp_path.glob("records.db*"))


REAL_WORLD = [  # (text, the secret in it, or None when nothing in it is a secret)
    ("/reset?token=9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    ("/oauth/callback?code=x&access_token=ya29.a0AfH6SMBxyzxyzxyzxyzxyz", "ya29.a0AfH6SM"),
    ("/users/alice@example.com/password=hunter2hunter2", "hunter2hunter2"),
    ("/keys/AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("/hooks/Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
    ("/login;jsessionid=1A2B3C4D5E6F7A8B9C", "1A2B3C4D5E6F7A8B9C"),
    ("/pay/4111-1111-1111-1111", "4111-1111-1111-1111"),
    ("user:alice@example.com", None),
    ("0123456789abcdef0123456789abcdef", None),
    ("POST /quotes/{quote_id}", None),
]


@pytest.mark.parametrize(("text", "secret"), REAL_WORLD)
def test_every_audit_field_is_redacted_the_first_time_and_every_time_after(
    text: str, secret: str | None
) -> None:
    from readykit.logging.redact import Redactor, redact_text
    from readykit.records.audit import Audit

    audit = Audit(None, Redactor())  # type: ignore[arg-type]  # no writer: events only
    for _ in range(3):  # the action and actor are remembered after the first time
        event = audit.event(text, resource=text, actor=text, request_id=text)
        fields = [event["action"], event["resource"], event["actor"], event["request_id"]]
        assert fields == [redact_text(text)] * 4
        if secret is not None:
            assert not any(secret in f for f in fields)
