"""`readykit wait`: poll readiness until it passes; a fake clock instead of sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from readykit.check.wait import Outcome, wait
from readykit.cli import cli
from readykit.serve import free_port


class FakeClock:
    """`now()` only moves when the waiter sleeps."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def ready_after(polls: int, path: str = "/health/ready") -> Starlette:
    seen = {"n": 0}

    async def ready(request: Request) -> Response:
        seen["n"] += 1
        if seen["n"] <= polls:
            return JSONResponse({"status": "fail"}, 503)
        return JSONResponse({"status": "pass"})

    return Starlette(routes=[Route(path, ready)])


def waited(url: str, **kwargs: object) -> tuple[Outcome, FakeClock]:
    clock = FakeClock()
    sleep: Callable[[float], Awaitable[None]] = clock.sleep
    outcome = asyncio.run(
        wait(url, clock=clock.now, sleep=sleep, **kwargs)  # type: ignore[arg-type]
    )
    return outcome, clock


def test_ready_once_readiness_passes(serve_app) -> None:
    outcome, _ = waited(serve_app(ready_after(2)), timeout_s=60, interval_s=5)
    assert outcome.ready
    assert outcome.path == "/health/ready"
    assert outcome.waited_s == 10  # two failing polls, five seconds apart (fake clock)


def test_not_ready_in_time_says_what_it_last_saw(serve_app) -> None:
    outcome, clock = waited(serve_app(ready_after(10_000)), timeout_s=30, interval_s=5)
    assert not outcome.ready
    assert clock.t <= 30
    assert "503" in outcome.line()
    assert "fail" in outcome.line()


def test_the_readiness_path_of_the_service_is_found(serve_app) -> None:
    outcome, _ = waited(serve_app(ready_after(0, "/-/ready")), timeout_s=10, interval_s=1)
    assert outcome.ready
    assert outcome.path == "/-/ready"


def test_refused_connections_mean_not_yet() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    outcome, clock = waited(url, timeout_s=3, interval_s=1)
    assert not outcome.ready
    assert clock.t >= 2  # it kept polling
    assert "connect" in outcome.last.lower()


def test_cli_exit_codes(serve_app) -> None:
    url = serve_app(ready_after(0))
    runner = CliRunner()
    ok = runner.invoke(cli, ["wait", url, "--ready", "--timeout", "10s"])
    assert ok.exit_code == 0
    assert "ready after" in ok.output
    down = f"http://127.0.0.1:{free_port()}"
    late = runner.invoke(cli, ["wait", down, "--timeout", "300ms", "--interval", "100ms"])
    assert late.exit_code == 1
    assert "not ready" in late.output
    for bad in (
        ["wait", url, "--timeout", "soon"],
        ["wait", "ftp://x"],
        ["wait", url, "--path", "x"],
    ):
        result = runner.invoke(cli, bad)
        assert result.exit_code == 2, bad
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output


def test_not_ready_reports_the_time_it_waited() -> None:
    # an interval as long as what is left (a real clock moves during the first poll): it
    # still polls until the timeout and says so, not "not ready after 0.0s"
    outcome, clock = waited(f"http://127.0.0.1:{free_port()}", timeout_s=1, interval_s=2)
    assert not outcome.ready
    assert outcome.waited_s == clock.t == 1
    assert outcome.line().startswith("not ready after 1.0s")
