"""Pages that must work under the kit's HTML policy, opened in Chromium: zero CSP violations.

FastAPI's Swagger UI and ReDoc (the demo's /docs and /redoc, assets served locally), a stock
Django admin after a real login, and a typical server-rendered page with an inline script and
inline styles. The policy stays strict (no 'unsafe-inline' scripts, object-src 'none',
base-uri, frame-ancestors): on the routes listed in `READYKIT_CSP_HASH_ROUTES` (FastAPI's
documentation pages by default) the kit adds each inline script's hash instead; elsewhere an
inline script is refused.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django_site_fixtures import USERS

from readykit.serve import ServerProcess, serve
from support import CHROMIUM, CSP_RECORDER, playwright

APPS = Path(__file__).parents[1] / "apps"


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page whose console errors and CSP violations are collected."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page()
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("response", lambda r: self.failed.append(r.url) if r.status >= 400 else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.add_init_script(CSP_RECORDER)

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp"))

    def real_errors(self) -> list[str]:
        """Console errors, less the browser's own favicon probe of a site that has none."""
        missing = [u for u in self.failed if not u.endswith("/favicon.ico")]
        assert missing == []
        return [e for e in self.errors if not e.startswith("Failed to load resource")]


def test_demo_swagger_ui_and_redoc_work_offline(tmp_path: Path, browser: Any) -> None:
    demo = [sys.executable, "-m", "readykit.cli", "demo", "--port", "{port}"]
    with serve(demo, cwd=tmp_path) as app:
        watched = Watched(browser)
        page = watched.page
        page.goto(f"{app.url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "readykit demo" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector(".opblock", timeout=20_000)  # the operations rendered
        assert watched.violations() == []
        csp = page.evaluate(
            "async () => (await fetch(location.href)).headers.get('content-security-policy')"
        )
        assert "'sha256-" in csp
        assert "'unsafe-inline'" not in csp.split("style-src")[0]
        page.goto(f"{app.url}/redoc")
        page.wait_for_selector("h1", timeout=20_000)
        assert "readykit demo" in page.inner_text("h1")
        assert watched.violations() == []
        assert watched.real_errors() == []


def test_django_admin_works_after_a_real_login(django_site: ServerProcess, browser: Any) -> None:
    watched = Watched(browser)
    page = watched.page
    page.goto(f"{django_site.url}/admin/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", USERS["alice"])
    page.click("input[type=submit]")
    page.wait_for_url(f"{django_site.url}/admin/")
    assert "Site administration" in page.inner_text("#content")
    for path in ("/admin/auth/user/", "/admin/auth/user/add/", "/admin/auth/group/add/"):
        page.goto(f"{django_site.url}{path}")
        page.wait_for_selector("#content")
    # the admin's own stylesheet applied: the header is not the browser's default
    background = page.evaluate(
        "getComputedStyle(document.querySelector('#header')).backgroundColor"
    )
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    assert watched.violations() == []
    assert watched.real_errors() == []


def test_a_server_rendered_page_with_inline_script_and_styles(tmp_path: Path, browser: Any) -> None:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--port",
        "{port}",
        "--app-dir",
        str(APPS),
        "html_app:app",
    ]
    env = {"READYKIT_STORE_URL": f"sqlite:///{tmp_path}/r.db", "READYKIT_LOG_LEVEL": "warning"}
    with serve(argv, env=env, cwd=tmp_path) as app:  # not listed: its inline script is refused
        watched = Watched(browser)
        watched.page.goto(f"{app.url}/")
        assert watched.page.inner_text("#status") == "waiting"
        assert [v for v in watched.violations() if v.startswith("script-src")] != []
    env["READYKIT_CSP_HASH_ROUTES"] = '["GET /"]'  # listed by its operator: hashed
    with serve(argv, env=env, cwd=tmp_path) as app:
        watched = Watched(browser)
        page = watched.page
        page.goto(f"{app.url}/")
        assert page.inner_text("#status") == "script ran"
        assert (
            page.evaluate("getComputedStyle(document.querySelector('#status')).color")
            == "rgb(0, 128, 0)"
        )
        page.goto(f"{app.url}/injected")  # a script the page did not write is still refused
        assert page.inner_text("#status") == "waiting"
        assert [v for v in watched.violations() if v.startswith("script-src")] != []
