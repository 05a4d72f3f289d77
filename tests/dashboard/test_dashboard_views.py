"""The dashboard in-process: access, data, filters, bad input, a store that is down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit.dashboard.auth import COOKIE, OpsAuth
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio
TOKEN = "ops-secret-token"


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


def make(tmp_path: Path, **settings: Any) -> tuple[ReadyKit, Any]:
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            store_url=f"sqlite:///{tmp_path}/r.db",
            **settings,
        ),
        principal=lambda scope: dict(scope["headers"]).get(b"x-user", b"").decode() or None,
    )
    return kit, kit.wrap(Starlette(routes=[Route("/quotes", create, methods=["POST"])]))


BEARER = [("Authorization", f"Bearer {TOKEN}")]


async def test_data_filters_and_csv(tmp_path: Path) -> None:
    kit, app = make(tmp_path, ops_token=TOKEN)
    async with lifespan(app):
        for who in ("user:1", "user:2", "user:1"):
            await asgi_request(app, "POST", "/quotes", headers=[("X-User", who)])
        await kit.records.writer.flush()  # type: ignore[union-attr]
        overview = (await asgi_request(app, "GET", "/ops/api/overview", headers=BEARER)).json()
        assert overview["traffic"]["total"]["requests"] == 3
        assert overview["traffic"]["routes"][0]["route"] == "POST /quotes"
        assert {c["name"] for c in overview["health"]} == {
            "store",
            "records-spill",
            "records-quarantine",
        }
        audit = await asgi_request(app, "GET", "/ops/api/audit", headers=BEARER,
                                   query_string=b"actor=user:1")  # fmt: skip
        assert [e["actor"] for e in audit.json()["events"]] == ["user:1", "user:1"]
        csv = await asgi_request(app, "GET", "/ops/api/audit", headers=BEARER,
                                 query_string=b"format=csv")  # fmt: skip
        assert csv.header("content-type") == "text/csv; charset=utf-8"
        assert len(csv.body.decode().strip().splitlines()) == 4
        page = await asgi_request(app, "GET", "/ops/audit", headers=BEARER,
                                  query_string=b"actor=user:2")  # fmt: skip
        assert page.status == 200
        assert page.body.count(b"<td>user:2</td>") == 1
        assert b"user:1" not in page.body.split(b'id="events"')[1]


@pytest.mark.parametrize(
    ("path", "query", "detail"),
    [
        ("/ops/api/audit", b"since=yesterday", "since='yesterday' is not a date"),
        ("/ops/api/audit", b"colour=red", "unknown filter 'colour'"),
        ("/ops/api/audit", b"page=0", "page='0' is not a page number"),
        ("/ops/api/entries", b"kind=errors", "kind='errors' is not one of"),
        ("/ops/audit", b"until=13/13/2026", "until='13/13/2026' is not a date"),
    ],
)
async def test_bad_filters_are_400_problems(
    tmp_path: Path, path: str, query: bytes, detail: str
) -> None:
    _, app = make(tmp_path)
    r = await asgi_request(app, "GET", path, query_string=query)
    assert r.status == 400
    assert r.header("content-type") == "application/problem+json"
    assert detail in r.json()["detail"]


async def test_access_rules(tmp_path: Path) -> None:
    _, open_app = make(tmp_path)
    assert (await asgi_request(open_app, "GET", "/ops")).status == 200  # loopback, no token
    remote = await asgi_request(open_app, "GET", "/ops", client=("203.0.113.7", 1))
    assert remote.status == 403
    proxied = await asgi_request(open_app, "GET", "/ops", headers=[("X-Forwarded-For", "1.2.3.4")])
    assert proxied.status == 403
    _, app = make(tmp_path, ops_token=TOKEN)
    to_login = await asgi_request(app, "GET", "/ops")  # a token is set: loopback is not enough
    assert (to_login.status, to_login.header("location")) == (303, "/ops/login")
    assert (await asgi_request(app, "GET", "/ops/api/overview")).status == 401
    bad = await asgi_request(app, "POST", "/ops/login", body=b"token=guess")
    assert bad.status == 200
    assert b"not the ops token" in bad.body
    assert bad.header("set-cookie") is None
    good = await asgi_request(app, "POST", "/ops/login", body=f"token={TOKEN}".encode())
    assert good.status == 303
    cookie = good.header("set-cookie") or ""
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    value = cookie.split(";")[0]
    ok = await asgi_request(app, "GET", "/ops", headers=[("Cookie", value)])
    assert ok.status == 200
    forged = value[:-4] + "abcd"
    assert (await asgi_request(app, "GET", "/ops", headers=[("Cookie", forged)])).status == 303
    expired = f"{COOKIE}={OpsAuth(TOKEN).session_value(now=time.time() - 9 * 3600)}"
    assert (await asgi_request(app, "GET", "/ops", headers=[("Cookie", expired)])).status == 303
    https = await asgi_request(app, "POST", "/ops/login", body=f"token={TOKEN}".encode(),
                               scheme="https")  # fmt: skip
    assert "Secure" in (https.header("set-cookie") or "")
    assert (await asgi_request(app, "GET", "/ops/logout", headers=BEARER)).status == 405


async def test_a_store_that_is_down_still_renders(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    kit = ReadyKit(Settings(configure_logging=False, store_url=f"sqlite:///{blocked}/r.db"))
    app = kit.wrap(Starlette())
    page = await asgi_request(app, "GET", "/ops")
    assert page.status == 200
    assert b'id="unavailable"' in page.body
    audit = await asgi_request(app, "GET", "/ops/audit")
    assert audit.status == 200
    assert b'id="unavailable"' in audit.body
    assert (await asgi_request(app, "GET", "/ops/api/audit")).status == 503


async def test_pages_have_a_strict_csp_and_no_inline_script(tmp_path: Path) -> None:
    _, app = make(tmp_path)
    page = await asgi_request(app, "GET", "/ops")
    csp = page.header("content-security-policy") or ""
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert b"<script>" not in page.body
    assert b"<script src=" in page.body


def test_demo_banner_says_where_the_dashboard_is_and_how_to_get_in() -> None:
    from readykit.demo.server import banner

    first = banner("127.0.0.1", 8000, token_set=False).splitlines()[0]
    assert first.startswith("readykit demo dashboard: http://127.0.0.1:8000/ops")
    assert "from this machine" in first
    assert "READYKIT_OPS_TOKEN" in banner("::1", 9000, token_set=True).splitlines()[0]
    assert "http://[::1]:9000/ops" in banner("::1", 9000, token_set=True)
