"""Test support: skip (or, under READYKIT_REQUIRE_SERVICES=1, fail) when a service is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from readykit.records import ChainKey, Store, store_from_url


def services_required() -> bool:
    return os.environ.get("READYKIT_REQUIRE_SERVICES") == "1"


def need(reason: str) -> None:
    """Skip the test with `reason`, or fail it when services are required."""
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def need_binary(name: str) -> str:
    """The path of executable `name` (PATH, then the sbin folders daemons live in)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if path is None:
        need(f"{name} is not installed")
        raise AssertionError  # unreachable: need() raises
    return path


CHROMIUM = "/usr/bin/chromium"

# Collects CSP violations in the page itself (injected by the browser, outside the page's CSP).
CSP_RECORDER = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation', e =>"
    " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def playwright() -> Any:
    """Playwright's sync API for Debian's Chromium; skips (fails in CI) when either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        need(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright()


async def settle(rounds: int = 100) -> None:
    """Let every ready task run until it blocks on something real (a lock, an event, I/O).

    Bounded by a count of loop turns, never by time: a task that still moves after `rounds`
    turns is a bug in the test, not a slow machine.
    """
    import asyncio

    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], what: str, deadline_s: float = 30.0
) -> None:
    """Poll `predicate` (plain or async) until it holds; fail naming `what` only if it never does.

    The deadline only turns a hang into a failure: no test asserts how soon it held.
    """
    import asyncio
    import inspect
    import time

    give_up = time.monotonic() + deadline_s
    while True:
        held = predicate()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > give_up:
            pytest.fail(f"never happened: {what}", pytrace=False)
        await asyncio.sleep(0.005)


def wait_until(
    predicate: Callable[[], bool], what: str, deadline_s: float = 30.0, every_s: float = 0.05
) -> None:
    """`eventually` for blocking code: poll every `every_s`, fail only past the deadline."""
    import time

    give_up = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > give_up:
            pytest.fail(f"never happened: {what}", pytrace=False)
        time.sleep(every_s)


@contextlib.asynccontextmanager
async def opened(url: str, key: ChainKey) -> AsyncIterator[Store]:
    """The store at `url`, opened (its schema migrated) and closed after use."""
    store = store_from_url(url, audit_key=key)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def kit_writes(count: int) -> Any:
    """`count` durable audit events through a kit (settings from the environment), started
    and shut down; the kit."""
    import asyncio

    from readykit import ReadyKit, Settings

    kit = ReadyKit(Settings(configure_logging=False, access_log=False))

    async def write() -> None:
        await kit.startup()
        try:
            for n in range(count):
                await kit.audit.record("quote.create", resource=f"quote:{n}", durable=True)
        finally:
            await kit.shutdown()

    asyncio.run(write())
    return kit


# nothing but request ids and the ops routes: the kit's layer takes its lean path (no stage, no
# recorder); tests of the request path run on both
IDS_ONLY: dict[str, Any] = {
    "metrics": False,
    "records": False,
    "dashboard": False,
    "access_log": False,
    "security_headers": False,
    "max_body_bytes": None,
    "request_timeout_s": None,
}
