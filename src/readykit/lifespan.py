"""Lifespan for the kit and the wrapped app together, in the order a draining service needs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from readykit._types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("readykit")


class AppLifespan:
    """Drives the wrapped app's lifespan through queues, tolerating apps that do not support it."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task = asyncio.ensure_future(app(scope, self._to_app.get, self._from_app.put))
        self.supported = True

    async def send(self, event: str) -> Message | None:
        """Send `lifespan.<event>` to the app: its reply, or None if it does not do lifespan."""
        if not self.supported:
            return None
        await self._to_app.put({"type": f"lifespan.{event}"})
        getter = asyncio.ensure_future(self._from_app.get())
        await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        self.supported = False
        if (exc := self._task.exception()) is not None:
            logger.debug("the app does not support ASGI lifespan (%r); continuing", exc)
        return None

    async def close(self) -> None:
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


async def run_lifespan(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    startup: Callable[[], Awaitable[Any]],
    begin_drain: Callable[[], None],
    shutdown: Callable[[], Awaitable[Any]],
) -> None:
    """Kit startup, then the app's; at shutdown readiness fails, then the app, then the kit."""
    message = await receive()
    assert message["type"] == "lifespan.startup"
    try:
        await startup()
    except Exception as exc:
        logger.error("readykit startup failed: %s", exc)
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return
    app_lifespan = AppLifespan(app, scope)
    try:
        reply = await app_lifespan.send("startup")
        if reply is not None and reply["type"] == "lifespan.startup.failed":
            await shutdown()
            await send(reply)
            return
        await send({"type": "lifespan.startup.complete"})

        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        begin_drain()
        reply = await app_lifespan.send("shutdown")
        try:
            await shutdown()
        except Exception as exc:
            logger.exception("readykit shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        if reply is not None and reply["type"] == "lifespan.shutdown.failed":
            await send(reply)
        else:
            await send({"type": "lifespan.shutdown.complete"})
    finally:
        await app_lifespan.close()
