"""inside-view: with the ops token, what a readykit service recorded of the check."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit.check.client import Client
from readykit.check.discovery import Target
from readykit.check.probe import ProbeContext, ProbeOptions
from readykit.check.probes import inside_view
from support import eventually

TOKEN = "inside-view-test-token-0123456789"


def inside_kit(tmp_path: Path, **settings: Any) -> ReadyKit:
    """A kit with the ops token and a store of its own, as the inside view reads it."""
    return ReadyKit(
        Settings(
            service_name="inside",
            configure_logging=False,
            ops_token=TOKEN,
            store_url=f"sqlite:///{tmp_path}/records.db",
            **settings,
        )
    )


def service(tmp_path: Path) -> object:
    kit = ReadyKit(
        Settings(
            service_name="inside",
            configure_logging=False,
            ops_token=TOKEN,
            store_url=f"sqlite:///{tmp_path}/records.db",
            records_flush_s=0.05,
        )
    )

    @kit.check("rates")
    async def rates() -> None:
        return None

    async def blocking(request: Request) -> Response:
        time.sleep(0.15)  # the defect the inside view names, with its line
        return PlainTextResponse("done")

    async def boom(request: Request) -> Response:
        raise KeyError("missing")

    async def index(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/", index), Route("/blocking", blocking), Route("/boom", boom)])
    return kit.wrap(app)


async def look(client: Client, token: str | None, since: float) -> dict[str, str]:
    """The inside view once, on a fresh budget of `client` (whose mutations it matches)."""
    ctx = ProbeContext(
        client.budget(20, 10), Target(), ProbeOptions(ops_token=token, started_at=since)
    )
    await inside_view.run(ctx)
    return {f.check: f.severity for f in ctx.findings}


def inside(url: str, token: str | None, since: float) -> dict[str, str]:
    """The inside view once stalls and exceptions reached the store (written in batches)."""

    async def go() -> dict[str, str]:
        found: dict[str, str] = {}

        async def recorded() -> bool:
            nonlocal found
            found = await look(client, token, since)
            return "inside-view.stalls" in found and "inside-view.exceptions" in found

        async with Client(url) as client:
            await eventually(recorded, "the stalls and the exception reach the store")
        return found

    return asyncio.run(go())


def probe(url: str, token: str | None, since: float) -> ProbeContext:
    async def go() -> ProbeContext:
        async with Client(url) as client:
            options = ProbeOptions(ops_token=token, started_at=since)
            ctx = ProbeContext(client.budget(20, 10), Target(), options)
            await inside_view.run(ctx)
            return ctx

    return asyncio.run(go())


def test_stalls_and_exceptions_caused_by_the_check_are_named(serve_app, tmp_path: Path) -> None:
    url = serve_app(service(tmp_path), lifespan="on")
    since = time.time()
    for _ in range(3):
        httpx.get(f"{url}/blocking", timeout=10)
    httpx.get(f"{url}/boom", timeout=10)
    found = inside(url, TOKEN, since)
    assert found["inside-view.stalls"] == "warning"  # one culprit, again and again
    assert found["inside-view.exceptions"] == "warning"
    assert found["inside-view.audit"] == "info"
    ctx = probe(url, TOKEN, since)
    stall = next(f for f in ctx.findings if f.check == "inside-view.stalls")
    assert "test_check_inside_view.py" in stall.title
    assert "in blocking" in stall.title
    assert TOKEN not in repr([f.as_dict() for f in ctx.findings])


def test_a_refused_token_is_a_warning_and_no_token_skips(serve_app, tmp_path: Path) -> None:
    url = serve_app(service(tmp_path), lifespan="on")
    ctx = probe(url, "wrong-token", time.time())
    assert {f.check: f.severity for f in ctx.findings} == {"inside-view.token-refused": "warning"}
    skipped = probe(url, None, time.time())
    assert skipped.findings == []
    assert skipped.applicable is False


def test_failing_health_details_are_blockers(serve_app, tmp_path: Path) -> None:
    kit = inside_kit(tmp_path)

    @kit.check("migrations")
    async def migrations() -> None:
        raise RuntimeError("revision 0002 not applied")

    url = serve_app(kit.wrap(Starlette(routes=[])), lifespan="on")
    found = {f.check: f.severity for f in probe(url, TOKEN, time.time()).findings}
    assert found["inside-view.migrations"] == "blocker"


def _after_posts(url: str, posts: int, audited: bool = False) -> dict[str, str]:
    """The inside view after `posts` POSTs; with `audited`, once their audit events are stored."""

    async def go() -> dict[str, str]:
        found: dict[str, str] = {}

        async def settled() -> bool:
            nonlocal found
            found = await look(client, TOKEN, since)
            return not audited or "inside-view.unaudited" not in found

        async with Client(url) as client:
            since = time.time() - 5
            for _ in range(posts):
                await client.budget(1, 10).try_request("POST", "/items", data=b"{}")
            await eventually(settled, "the audit events reach the store")
        return found

    return asyncio.run(go())


def test_mutations_that_were_never_audited(serve_app, tmp_path: Path) -> None:
    def kit_app(audit: bool) -> object:
        kit = ReadyKit(
            Settings(
                service_name="inside",
                configure_logging=False,
                ops_token=TOKEN,
                store_url=f"sqlite:///{tmp_path}/{audit}.db",
                records_flush_s=0.05,
                audit_mutations=audit,
            )
        )

        async def items(request: Request) -> Response:
            return JSONResponse({"created": 1}, 201)

        return kit.wrap(Starlette(routes=[Route("/items", items, methods=["POST"])]))

    silent = _after_posts(serve_app(kit_app(False), lifespan="on"), 3)
    assert silent["inside-view.unaudited"] == "warning"
    found = _after_posts(serve_app(kit_app(True), lifespan="on"), 3, audited=True)
    assert found["inside-view.audit"] == "info"
    assert "inside-view.unaudited" not in found


def test_failing_jobs_of_a_readykit_service_are_reported(serve_app, tmp_path: Path) -> None:
    kit = inside_kit(tmp_path)
    kit.jobs.add("backup.nightly", every="1d", grace="1h")
    kit.jobs.add("rates.refresh", every="1h", grace="5m")

    async def fail_once() -> None:
        with contextlib.suppress(RuntimeError):
            async with kit.job_run("rates.refresh"):
                raise RuntimeError("upstream answered 503")

    @contextlib.asynccontextmanager
    async def lifespan_ready(app: Starlette) -> Any:
        await fail_once()
        yield

    url = serve_app(kit.wrap(Starlette(lifespan=lifespan_ready)), lifespan="on")
    ctx = probe(url, TOKEN, time.time())
    [jobs] = [f for f in ctx.findings if f.check == "inside-view.jobs"]
    assert jobs.severity == "warning"
    assert "rates.refresh (failing: last run failure: RuntimeError: upstream answered 503)" in (
        jobs.title
    )
    assert "backup.nightly" not in jobs.title  # declared, not yet due: not late


def test_each_mutation_is_matched_to_its_audit_event(serve_app, tmp_path: Path) -> None:
    """The app audits /items itself and forgets /orders: the check names /orders only."""
    kit = inside_kit(tmp_path, audit_mutations=False)

    async def items(request: Request) -> Response:
        await kit.audit.record("item.create", resource="item:1", durable=True)
        return JSONResponse({"created": 1}, 201)

    async def orders(request: Request) -> Response:
        return JSONResponse({"created": 2}, 201)

    routes = [Route("/items", items, methods=["POST"]), Route("/orders", orders, methods=["POST"])]
    url = serve_app(kit.wrap(Starlette(routes=routes)), lifespan="on")

    async def go() -> ProbeContext:
        async with Client(url) as client:
            budget = client.budget(20, 10)
            for path in ("/items", "/orders", "/items"):
                await budget.try_request("POST", path, data=b"{}")
            ctx = ProbeContext(
                budget, Target(), ProbeOptions(ops_token=TOKEN, started_at=time.time() - 5)
            )
            await inside_view.run(ctx)
            return ctx

    ctx = asyncio.run(go())
    [unaudited] = [f for f in ctx.findings if f.check == "inside-view.unaudited"]
    assert unaudited.title.startswith("1 of the 3 POST/PUT/PATCH requests")
    assert "POST /orders -> 201" in unaudited.title
    assert "/items" not in unaudited.title
