"""Fixtures of the check tests: purpose-built apps served by uvicorn in a thread, probe runners.

A probe whose verdict rests on how long something took runs on virtual time instead
(`run_virtual_probe`): an aiohttp app in the probe's own loop, whose clock the client reads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp import web

from readykit.check.client import Client
from readykit.check.discovery import Target, discover
from readykit.check.probe import ProbeContext, ProbeFn, ProbeOptions
from readykit.serve import free_port
from support import wait_until
from virtual_time import VirtualTimeLoop, known_server, run_virtual

# small sweeps: the probe's logic is the same at any size
FAST = ProbeOptions(load_users=(1, 2), load_step_s=0.3)


@contextmanager
def running(app: Any, **config: Any) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="critical",
            access_log=False,
            lifespan=config.pop("lifespan", "off"),
            **config,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(
        lambda: server.started or not thread.is_alive(), "the test server starts", every_s=0.01
    )
    if not server.started:
        raise RuntimeError("test server did not start")
    scheme = "https" if config.get("ssl_certfile") else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def serve_app() -> Iterator[Callable[..., str]]:
    """`serve_app(app, **uvicorn_config)` → URL; every server stops after the test."""
    with_stack: list[Any] = []

    def start(app: Any, **config: Any) -> str:
        cm = running(app, **config)
        with_stack.append(cm)
        return cm.__enter__()

    yield start
    for cm in reversed(with_stack):
        cm.__exit__(None, None, None)


async def _probe(
    url: str,
    fn: ProbeFn,
    options: ProbeOptions,
    target: Target | None,
    ssl_context: Any,
    clock: Callable[[], float] = time.monotonic,
) -> ProbeContext:
    async with Client(
        url, allow_writes=options.allow_writes, ssl_context=ssl_context, clock=clock
    ) as client:
        if target is None:
            target = await discover(client.budget(30, 10))
        ctx = ProbeContext(client.budget(1000, 30), target, options)
        await fn(ctx)
        return ctx


def probe(
    url: str,
    fn: ProbeFn,
    options: ProbeOptions = FAST,
    target: Target | None = None,
    ssl_context: Any = True,
) -> ProbeContext:
    """Run one probe against `url` (endpoints discovered unless `target` is given)."""
    return asyncio.run(_probe(url, fn, options, target, ssl_context))


@pytest.fixture
def run_probe() -> Callable[..., ProbeContext]:
    """`run_probe(url, probe_module.run, options=..., target=...)` → the probe's context."""
    return probe


def virtual_probe(
    fn: ProbeFn,
    app: web.Application | None = None,
    options: ProbeOptions = FAST,
    target: Target | None = None,
) -> ProbeContext:
    """Run one probe on virtual time against `app` (default `virtual_time.known_app()`)."""

    async def main(loop: VirtualTimeLoop) -> ProbeContext:
        async with known_server(app) as url:
            return await _probe(url, fn, options, target, True, loop.time)

    return run_virtual(main)


@pytest.fixture
def run_virtual_probe() -> Callable[..., ProbeContext]:
    """`run_virtual_probe(probe_module.run, app, options=..., target=...)` → the context."""
    return virtual_probe


def checks(ctx: ProbeContext) -> dict[str, str]:
    """{check id: severity} of a probe's findings."""
    return {f.check: f.severity for f in ctx.findings}


@pytest.fixture
def check_ids() -> Callable[[ProbeContext], dict[str, str]]:
    return checks
