"""Debug pages and stack traces as the real frameworks and runtimes produce them.

Run as a child process (`python real_debug_pages.py NAME`), so Django's global settings never
leak into the test process; prints the response body. Nothing here is hand-written output.
"""

from __future__ import annotations

import sys


def django(kind: str) -> str:
    import django as dj
    from django.conf import settings
    from django.urls import path

    def boom(request: object) -> None:
        raise ValueError("readykit probe")

    settings.configure(
        DEBUG=True,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["testserver"],
        SECRET_KEY="readykit-test-only",
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        TEMPLATES=[],
    )
    globals()["urlpatterns"] = [path("boom", boom)]
    dj.setup()
    from django.test import Client

    client = Client(raise_request_exception=False)
    resp = client.get("/boom" if kind == "500" else "/nowhere", HTTP_ACCEPT="text/html")
    return resp.content.decode()


def werkzeug() -> str:
    from flask import Flask
    from werkzeug.debug import DebuggedApplication
    from werkzeug.test import Client

    app = Flask("demo")

    @app.route("/boom")
    def boom() -> str:
        raise ValueError("readykit probe")

    app.debug = True
    client = Client(DebuggedApplication(app.wsgi_app, evalex=True))
    return client.get("/boom").get_data(as_text=True)


def starlette(accept: str) -> str:
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    def boom(request: object) -> None:
        raise ValueError("readykit probe")

    app = Starlette(debug=True, routes=[Route("/boom", boom)])
    with TestClient(app, raise_server_exceptions=False) as client:
        return client.get("/boom", headers={"Accept": accept}).text


def litestar() -> str:
    from litestar import Litestar, get
    from litestar.testing import TestClient

    @get("/boom")
    async def boom() -> None:
        raise ValueError("readykit probe")

    with TestClient(Litestar([boom], debug=True)) as client:
        return client.get("/boom", headers={"Accept": "text/html"}).text


def node() -> str:
    import subprocess
    import tempfile
    from pathlib import Path

    code = (
        "function parse(x) { return JSON.parse(x) }\n"
        "try { parse('{') } catch (e) { process.stdout.write(e.stack) }\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "server.js"
        path.write_text(code)
        done = subprocess.run(["node", str(path)], capture_output=True, text=True, check=True)
        return done.stdout


def java() -> str:
    import subprocess
    import tempfile
    from pathlib import Path

    src = (
        "public class Boom {\n"
        "  static int parse(String s) { return Integer.parseInt(s); }\n"
        '  public static void main(String[] a) { parse("x"); }\n'
        "}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Boom.java"
        path.write_text(src)
        done = subprocess.run(["java", str(path)], capture_output=True, text=True, check=False)
        return done.stderr


PAGES = {
    "django-500": lambda: django("500"),
    "django-404": lambda: django("404"),
    "werkzeug": werkzeug,
    "starlette-html": lambda: starlette("text/html"),
    "starlette-text": lambda: starlette("*/*"),
    "litestar": litestar,
    "node": node,
    "java": java,
}

if __name__ == "__main__":
    sys.stdout.write(PAGES[sys.argv[1]]())
