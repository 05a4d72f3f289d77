"""exposure: leaks are confirmed by content; a service that answers 200 to all raises none."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.probes import exposure

DOTENV = (
    "SECRET_KEY=supersecretvalue123\n"
    "DATABASE_URL=postgres://app:hunter2pass@db/app\n"
    "STRIPE_API_KEY=sk_live_abcdef0123456789\n"
)
SECRETS = ("supersecretvalue123", "hunter2pass", "sk_live_abcdef0123456789")


def catch_all(body: Response) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await body(scope, receive, send)

    return app


@pytest.mark.parametrize(
    "answer",
    [
        HTMLResponse("<html><body>Welcome to our shop</body></html>"),
        JSONResponse({"ok": True}),
        PlainTextResponse("OK"),
    ],
    ids=["html", "json", "text"],
)
def test_catch_all_200_raises_no_alarm(serve_app, run_probe, check_ids, answer) -> None:
    ctx = run_probe(serve_app(catch_all(answer)), exposure.run)
    assert check_ids(ctx) == {"exposure.none": "info"}
    assert ctx.target.catch_all


def leaky(files: dict[str, bytes]) -> Starlette:
    def route(path: str, content: bytes) -> Route:
        async def serve(request: Request) -> Response:
            return Response(content, media_type="application/octet-stream")

        return Route(path, serve)

    return Starlette(routes=[route(p, c) for p, c in files.items()])


@pytest.mark.parametrize(
    ("path", "content", "check"),
    [
        ("/.env", DOTENV.encode(), "exposure.dotenv"),
        ("/.git/config", b"[core]\n\trepositoryformatversion = 0\n", "exposure.git"),
        ("/.git/HEAD", b"ref: refs/heads/main\n", "exposure.git"),
        (
            "/dump.sql",
            b"-- PostgreSQL database dump\nCREATE TABLE users (id int);\n",
            "exposure.sql-dump",
        ),
        ("/db.sqlite3", b"SQLite format 3\x00" + b"\x00" * 84, "exposure.sqlite"),
        ("/config.yaml", b"database:\n  password: hunter2pass\n", "exposure.settings"),
        ("/venv/pyvenv.cfg", b"home = /usr/bin\nversion = 3.11.7\n", "exposure.virtualenv"),
        ("/static/", b"<html><title>Index of /static</title></html>", "exposure.directory-listing"),
    ],
)
def test_each_leak_is_found(serve_app, run_probe, check_ids, path, content, check) -> None:
    found = check_ids(run_probe(serve_app(leaky({path: content})), exposure.run))
    expected = "warning" if check.endswith("listing") else "blocker"
    assert found == {check: expected}


def test_same_paths_with_innocent_content_are_fine(serve_app, run_probe, check_ids) -> None:
    innocent = b"<html><body>nothing to see</body></html>"
    files = {p: innocent for p in ("/.env", "/.git/config", "/dump.sql", "/db.sqlite3")}
    assert check_ids(run_probe(serve_app(leaky(files)), exposure.run)) == {"exposure.none": "info"}


def test_dotenv_values_never_reach_the_finding(serve_app, run_probe) -> None:
    ctx = run_probe(serve_app(leaky({"/.env": DOTENV.encode()})), exposure.run)
    shown = json.dumps([f.as_dict() for f in ctx.findings])
    assert "SECRET_KEY=[REDACTED]" in shown
    assert "STRIPE_API_KEY=[REDACTED]" in shown
    for secret in SECRETS:
        assert secret not in shown


def test_debug_404_page_is_a_blocker(serve_app, run_probe, check_ids) -> None:
    trace = 'Traceback (most recent call last):\n  File "/app/main.py", line 3, in <module>\n'
    ctx = run_probe(serve_app(catch_all(PlainTextResponse(trace, 404))), exposure.run)
    assert check_ids(ctx) == {"exposure.debug": "blocker"}


def test_json_settings_with_a_secret_are_found(serve_app, run_probe, check_ids) -> None:
    body = json.dumps({"db": {"host": "x", "password": "hunter2pass"}}).encode()
    found = check_ids(run_probe(serve_app(leaky({"/appsettings.json": body})), exposure.run))
    assert found == {"exposure.settings": "blocker"}


def test_catch_all_json_with_a_token_key_is_not_a_leak(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(catch_all(JSONResponse({"token": "public-demo"}))), exposure.run)
    assert check_ids(ctx) == {"exposure.none": "info"}


# Transcribed from the tools' documented output (these servers are not installed here).
NGINX_STATUS = (
    b"Active connections: 2 \nserver accepts handled requests\n 16 16 31 \n"
    b"Reading: 0 Writing: 1 Waiting: 1 \n"
)
PPROF = (
    b"<html><head><title>/debug/pprof/</title></head><body>/debug/pprof/<br><p>Set debug=1 "
    b"as a query parameter to export in legacy text format</p>Types of profiles available:"
)
ACTUATOR_ENV = json.dumps(
    {"activeProfiles": [], "propertySources": [{"name": "systemEnvironment", "properties": {}}]}
).encode()
PHPINFO = (
    b"<html><head><title>PHP 8.2.7 - info</title></head><body><h1 class='p'>PHP Version 8.2.7"
    b"</h1><table><tr><td class='e'>Configuration File (php.ini) Path </td><td>/etc/php</td>"
    b"</tr></table><p>This program makes use of the Zend Scripting Language Engine:"
    b"<br />Zend Engine v4.2.7</p>"
)


@pytest.mark.parametrize(
    ("path", "body", "check", "severity"),
    [
        ("/nginx_status", NGINX_STATUS, "exposure.ops-tool", "warning"),
        ("/debug/pprof/", PPROF, "exposure.ops-tool", "warning"),
        ("/actuator/env", ACTUATOR_ENV, "exposure.ops-config", "blocker"),
        ("/info.php", PHPINFO, "exposure.info-page", "blocker"),  # whatever its title
    ],
)
def test_ops_tools_and_info_pages(serve_app, run_probe, check_ids, path, body, check, severity):
    ctx = run_probe(serve_app(leaky({path: body})), exposure.run)
    assert check_ids(ctx)[check] == severity


def test_a_real_development_server_is_named(run_probe, check_ids) -> None:
    import threading

    from flask import Flask
    from werkzeug.serving import make_server

    app = Flask("dev")
    app.add_url_rule("/", "index", lambda: "hello")
    server = make_server("127.0.0.1", 0, app)  # the Werkzeug development server itself
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ctx = run_probe(f"http://127.0.0.1:{server.server_port}", exposure.run)
    finally:
        server.shutdown()
        thread.join(10)
    dev = next(f for f in ctx.findings if f.check == "exposure.dev-server")
    assert dev.severity == "warning"
    assert "Werkzeug/" in dev.title


def test_version_banner_is_a_warning_a_bare_name_is_not(serve_app, run_probe, check_ids) -> None:
    def app(server: str) -> Starlette:
        async def index(request: Request) -> Response:
            return PlainTextResponse("hi", headers={"Server": server})

        return Starlette(routes=[Route("/", index)])

    banner = check_ids(run_probe(serve_app(app("nginx/1.18.0 (Ubuntu)")), exposure.run))
    assert banner["exposure.version-banner"] == "warning"
    bare = check_ids(run_probe(serve_app(app("nginx")), exposure.run))
    assert "exposure.version-banner" not in bare


def test_a_debug_page_counts_whatever_its_status(serve_app, run_probe, check_ids) -> None:
    trace = (
        b"Traceback (most recent call last):\n"
        b"  File \"/app/views.py\", line 12, in index\n    return data[key]\nKeyError: 'id'\n"
    )

    async def debug(request: Request) -> Response:
        return PlainTextResponse(trace.decode(), 404)

    url = serve_app(Starlette(routes=[Route("/debug", debug)]))
    assert check_ids(run_probe(url, exposure.run))["exposure.debug"] == "blocker"


def _items_app() -> Starlette:
    async def items(request: Request) -> Response:
        return JSONResponse([{"id": 1}])

    return Starlette(routes=[Route("/items", items)])


def test_any_host_accepted_is_a_warning(serve_app, run_probe, check_ids) -> None:
    from readykit.check.discovery import Endpoint, Target

    target = Target(endpoints=[Endpoint("GET", "/items")])
    found = check_ids(run_probe(serve_app(_items_app()), exposure.run, target=target))
    assert found["exposure.any-host"] == "warning"


def test_a_host_check_passes(serve_app, run_probe, check_ids) -> None:
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from readykit.check.discovery import Endpoint, Target

    guarded = TrustedHostMiddleware(_items_app(), allowed_hosts=["127.0.0.1"])
    target = Target(endpoints=[Endpoint("GET", "/items")])
    found = check_ids(run_probe(serve_app(guarded), exposure.run, target=target))
    assert "exposure.any-host" not in found
