"""Lifespan runs the kit and the app together; readiness fails before the app shuts down."""

import pytest

from readykit import ReadyKit, Settings
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio


def lifespan_app(events: list[str], kit: ReadyKit, *, fail_startup: bool = False):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "lifespan":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                events.append("app startup")
                if fail_startup:
                    await send({"type": "lifespan.startup.failed", "message": "no config"})
                    return
                await send({"type": "lifespan.startup.complete"})
            else:
                # what a load balancer sees while the app is shutting down
                resp = await asgi_request(wrapped, "GET", "/health/ready")
                events.append(f"app shutdown (ready={resp.status})")
                await send({"type": "lifespan.shutdown.complete"})
                return

    wrapped = kit.wrap(app)
    return wrapped


async def test_order_of_startup_and_shutdown_with_drain() -> None:
    events: list[str] = []
    kit = ReadyKit(Settings())

    async def kit_start() -> None:
        events.append("kit startup")

    async def kit_stop() -> None:
        events.append("kit shutdown")

    kit.on_startup(kit_start)
    kit.on_shutdown(kit_stop)
    kit.add_check("boot", lambda: events.append("startup check") and None, kind="startup")
    app = lifespan_app(events, kit)
    async with lifespan(app):
        assert (await asgi_request(app, "GET", "/health/ready")).status == 200
    assert events == [
        "kit startup",
        "startup check",
        "app startup",
        "app shutdown (ready=503)",
        "kit shutdown",
    ]


async def test_failed_startup_check_refuses_to_start() -> None:
    kit = ReadyKit(Settings())
    kit.add_check("migrations", lambda: False, kind="startup")
    with pytest.raises(RuntimeError, match="startup checks failed: migrations"):
        async with lifespan(lifespan_app([], kit)):
            pass


async def test_app_startup_failure_is_passed_on_and_kit_cleans_up() -> None:
    events: list[str] = []
    kit = ReadyKit(Settings())

    async def kit_stop() -> None:
        events.append("kit shutdown")

    kit.on_shutdown(kit_stop)
    with pytest.raises(RuntimeError, match="no config"):
        async with lifespan(lifespan_app(events, kit, fail_startup=True)):
            pass
    assert events == ["app startup", "kit shutdown"]


async def test_app_without_lifespan_support_still_gets_kit_lifespan() -> None:
    events: list[str] = []

    async def http_only(scope, receive, send):  # type: ignore[no-untyped-def]
        assert scope["type"] == "http", "lifespan unsupported"

    kit = ReadyKit(Settings())

    async def kit_start() -> None:
        events.append("kit startup")

    kit.on_startup(kit_start)
    async with lifespan(kit.wrap(http_only)) as sent:
        assert [m["type"] for m in sent] == ["lifespan.startup.complete"]
    assert sent[-1]["type"] == "lifespan.shutdown.complete"
    assert events == ["kit startup"]
