"""Wiring into FastAPI, Starlette and Litestar, through a real HTTP client over ASGI.

The apps here are the README's own snippets, extracted and executed, so the README cannot rot.
"""

import re
import sys
import threading
import types
from pathlib import Path
from typing import Any

import httpx
import pytest

from readykit import ReadyKit, current_request_id
from readykit.testing import RecordCollector, lifespan
from support import IDS_ONLY

pytestmark = pytest.mark.anyio

README = Path(__file__).parents[1] / "README.md"


def readme_snippet(framework: str) -> dict[str, Any]:
    """Execute the README's ```python block that starts with `# <framework>`; its globals."""
    blocks = re.findall(r"```python\n(# " + framework + r"\n.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, f"README has no single `# {framework}` python block"
    module = types.ModuleType(f"readme_{framework.lower()}")
    sys.modules[module.__name__] = module  # Litestar resolves annotations through sys.modules
    exec(compile(blocks[0], f"README:{framework}", "exec"), module.__dict__)  # noqa: S102
    return module.__dict__


async def get(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, **kwargs)


@pytest.mark.parametrize("framework", ["FastAPI", "Starlette", "Litestar"])
async def test_readme_wiring_serves_app_and_health(framework: str) -> None:
    ns = readme_snippet(framework)
    kit: ReadyKit = ns["kit"]
    collector = RecordCollector()
    kit.add_recorder(collector)
    app = ns["app"]

    resp = await get(app, "/quotes/42", headers={"X-Request-ID": "rid-1"})
    assert resp.status_code == 200
    assert resp.json() == {"id": 42}
    assert resp.headers["x-request-id"] == "rid-1"

    async with lifespan(app):  # as a server runs it: the kit is ready once started
        ready = await get(app, "/health/ready")
    assert ready.status_code == 200
    assert ready.headers["content-type"] == "application/health+json"
    assert "database:responseTime" in ready.json()["checks"]

    missing = await get(app, "/no/such/path/123")
    assert missing.status_code == 404

    routes = [(r.path, r.route) for r in collector.records]
    assert routes == [
        ("/quotes/42", "/quotes/{quote_id}"),
        ("/health/ready", "/health/ready"),
        ("/no/such/path/123", "UNMATCHED"),
    ]


async def test_fastapi_unhandled_error_is_problem_with_request_id() -> None:
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail")

    app = ReadyKit().wrap(api)
    resp = await get(app, "/boom", headers={"X-Request-ID": "rid-500"})
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["x-request-id"] == "rid-500"
    assert resp.json()["request_id"] == "rid-500"
    assert "internal detail" not in resp.text


@pytest.mark.parametrize("lean", [False, True], ids=["defaults", "ids only"])
async def test_starlette_debug_page_is_replaced_on_both_request_paths(lean: bool) -> None:
    """Starlette's own debug traceback page (debug=True) never reaches the client, on the
    layer's lean path (request ids and ops routes only) as on its full one."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from readykit import Settings

    async def boom(request: Any) -> None:
        raise RuntimeError("token=internal-detail")

    settings = Settings(**IDS_ONLY) if lean else Settings()
    app = ReadyKit(settings).wrap(Starlette(debug=True, routes=[Route("/boom", boom)]))
    resp = await get(app, "/boom", headers={"X-Request-ID": "rid-debug"})
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["request_id"] == resp.headers["x-request-id"] == "rid-debug"
    assert "internal-detail" not in resp.text
    assert "Traceback" not in resp.text


async def test_request_id_visible_in_sync_endpoints_dependencies_and_background_tasks() -> None:
    from fastapi import BackgroundTasks, Depends, FastAPI

    seen: dict[str, str | None] = {}
    api = FastAPI()

    def dependency() -> None:
        seen["dependency"] = current_request_id()

    def background() -> None:
        seen["background"] = current_request_id()

    @api.get("/sync")
    def sync_endpoint(tasks: BackgroundTasks, _: None = Depends(dependency)) -> dict[str, bool]:
        seen["endpoint"] = current_request_id()
        seen["thread"] = "main" if threading.current_thread() is threading.main_thread() else "pool"
        tasks.add_task(background)
        return {"ok": True}

    await get(ReadyKit().wrap(api), "/sync", headers={"X-Request-ID": "rid-sync"})
    assert seen == {
        "dependency": "rid-sync",
        "endpoint": "rid-sync",
        "thread": "pool",
        "background": "rid-sync",
    }


async def test_starlette_mounted_sub_app_route_template() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def item(request: Any) -> PlainTextResponse:
        return PlainTextResponse(str(request.path_params["item_id"]))

    inner = Starlette(routes=[Route("/items/{item_id:int}", item)])
    outer = Starlette(routes=[Mount("/v1", app=inner)])
    kit = ReadyKit()
    collector = RecordCollector()
    kit.add_recorder(collector)
    resp = await get(kit.wrap(outer), "/v1/items/5")
    assert resp.text == "5"
    assert collector.records[0].route == "/v1/items/{item_id}"


async def test_litestar_slash_spellings_of_a_route_do_not_escape_its_limits() -> None:
    """Litestar serves `POST /login/` and `POST //login` with the `/login` handler; the kit's
    route keys must see them as `/login` (they were a way around the login rate limit)."""
    from litestar import Litestar, post

    from readykit import Settings

    @post("/login", status_code=200)
    async def login() -> dict[str, bool]:
        return {"ok": True}

    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            rate_limits={"POST /login": "4/minute"},  # the 413 counts too
            body_limits={"POST /login": 64},
        )
    )
    app = kit.wrap(Litestar(route_handlers=[login]))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 123))
    site = "http://testserver"  # full URLs: httpx would read `//login` as a host
    async with httpx.AsyncClient(transport=transport) as client:
        big = await client.post(f"{site}//login/", content=b"x" * 100)
        assert big.status_code == 413
        sent = [await client.post(f"{site}{path}") for path in ["/login/", "//login"]]
        assert [r.status_code for r in sent] == [200, 200]  # Litestar routes them to the handler
        assert (await client.post(f"{site}/login")).status_code == 200
        after = [await client.post(f"{site}{path}") for path in ["/login/", "//login"]]
        assert [r.status_code for r in after] == [429, 429]


@pytest.mark.parametrize("accept", ["text/html", "text/plain"])
async def test_litestars_debug_page_never_reaches_the_client(accept: str) -> None:
    """Litestar with debug=True answers an exception with its traceback page (HTML to a
    browser, text otherwise) without raising to the kit."""
    from litestar import Litestar
    from litestar import get as route

    @route("/boom")
    async def boom() -> None:
        raise RuntimeError("a planted failure")

    kit = ReadyKit()
    app = kit.wrap(Litestar(route_handlers=[boom], debug=True))
    resp = await get(app, "/boom", headers={"Accept": accept, "X-Request-ID": "ls-500"})
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["request_id"] == "ls-500"
    assert "a planted failure" not in resp.text
