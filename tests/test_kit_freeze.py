"""wrap() fixes the kit's request pipeline and lifecycle: what would change them afterwards
raises one ConfigurationError saying to call it before wrap(), instead of being ignored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.feature import Setup
from readykit.problem import send_problem
from readykit.testing import RecordCollector, asgi_request, lifespan

pytestmark = pytest.mark.anyio


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


async def teapot(scope: Any, receive: Any, send: Any) -> None:
    await send_problem(send, 418, "late")


async def hook() -> None:
    raise AssertionError("a hook added after wrap() never runs")


class Late:
    name = "late"

    def install(self, setup: Setup) -> None:
        setup.add_ops_route("/late-feature", teapot)


def kit() -> ReadyKit:
    return ReadyKit(Settings(records=False, configure_logging=False, access_log=False))


LATE: dict[str, tuple[str, Callable[[ReadyKit], object]]] = {
    "startup hook": ("on_startup", lambda k: k.on_startup(hook)),
    "shutdown hook": ("on_shutdown", lambda k: k.on_shutdown(hook)),
    "startup check": ("add_check", lambda k: k.add_check("boot", lambda: None, kind="startup")),
    "startup check decorator": ("add_check", lambda k: k.check("boot", kind="startup")(hook)),
    "feature": ("add_feature", lambda k: k.add_feature(Late())),
    "ops route": ("add_ops_route", lambda k: k.add_ops_route("/late", teapot)),
    "guard": ("add_guard", lambda k: k.add_guard(10, lambda inner: inner)),
}


@pytest.mark.parametrize("case", list(LATE))
async def test_what_changes_the_pipeline_or_lifecycle_is_refused_after_wrap(case: str) -> None:
    what, late = LATE[case]
    the_kit = kit()
    wrapped = the_kit.wrap(app)
    with pytest.raises(ConfigurationError) as refused:
        late(the_kit)
    message = str(refused.value)
    assert message.startswith(f"{what}")
    assert "after wrap()" in message
    assert f"call {what} before wrap()" in message
    assert "\n" not in message
    async with lifespan(wrapped):  # nothing of it was taken in: the hooks would raise
        for path in ("/late", "/late-feature"):
            assert (await asgi_request(wrapped, "GET", path)).body == b"app"


def test_a_second_wrap_is_refused() -> None:
    the_kit = kit()
    the_kit.wrap(app)
    with pytest.raises(ConfigurationError, match=r"wrap\(\) called twice"):
        the_kit.wrap(app)


def test_a_misconfigured_kit_is_wrapped_once_too() -> None:
    the_kit = kit()
    the_kit.config_error = ConfigurationError("READYKIT_X: bad")
    the_kit.wrap(app)
    with pytest.raises(ConfigurationError, match="after wrap"):
        the_kit.on_startup(hook)


async def test_checks_jobs_recorders_and_cached_functions_stay_dynamic_after_wrap() -> None:
    """Readiness checks, jobs, recorders and cached functions are read when used, not compiled
    by wrap(): adding them after it works. A startup check is the exception (startup may be
    over)."""
    the_kit = kit()
    wrapped = the_kit.wrap(app)
    the_kit.add_check("late", lambda: False)
    collector = RecordCollector()
    the_kit.add_recorder(collector)

    @the_kit.job("late.job", every="1h")
    def job() -> None: ...

    calls: list[int] = []

    @the_kit.cached(ttl=60)
    async def answer() -> int:
        calls.append(1)
        return 42

    with pytest.raises(ConfigurationError, match="call add_check before wrap"):
        the_kit.add_check("boot", lambda: None, kind="startup")
    async with lifespan(wrapped):
        ready = await asgi_request(wrapped, "GET", "/health/ready")
        assert ready.status == 503
        assert "late:" in next(iter(ready.json()["checks"]))
        assert [await answer(), await answer()] == [42, 42]
    assert calls == [1]
    assert [r.route for r in collector.records] == ["/health/ready"]
    assert "late.job" in the_kit.jobs.specs
