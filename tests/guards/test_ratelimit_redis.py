"""Rate limits on a real Redis: processes share one limit; an outage and a recovery."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from readykit import ReadyKit, Settings
from readykit.serve import free_port, serve, wait_for_port
from readykit.testing import FakeClock, asgi_request
from support import need_binary

APPS = Path(__file__).parents[1] / "apps"


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def server_argv() -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "--port", "{port}", "--app-dir", str(APPS),
        "ratelimit_app:app",
    ]  # fmt: skip


def test_two_processes_enforce_one_combined_limit(redis_url: str) -> None:
    env = {
        "READYKIT_RATE_LIMITS": json.dumps({"default": "10/minute"}),
        "READYKIT_RATE_LIMIT_STORAGE": redis_url,
        "READYKIT_RATE_LIMIT_STRATEGY": "fixed-window",
        "READYKIT_LOG_LEVEL": "warning",
    }
    with serve(server_argv(), env=env) as a, serve(server_argv(), env=env) as b:
        statuses = [status_of(f"{(a, b)[i % 2].url}/pid") for i in range(16)]
    assert statuses.count(200) == 10
    assert statuses.count(429) == 6


@pytest.fixture
def own_redis() -> Iterator[tuple[str, int]]:
    """A Redis server this test can stop and start: (binary, port)."""
    binary = need_binary("redis-server")
    port = free_port()
    yield binary, port
    subprocess.run(
        [shutil.which("redis-cli") or "redis-cli", "-p", str(port), "shutdown", "nosave"],
        capture_output=True,
        check=False,
        timeout=10,
    )


def start_redis(binary: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    assert wait_for_port("127.0.0.1", port, time.monotonic() + 10), "redis did not start"
    return process


@pytest.mark.anyio
async def test_limits_resume_when_redis_returns(own_redis: tuple[str, int]) -> None:
    binary, port = own_redis
    redis = start_redis(binary, port)
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            rate_limits={"default": "2/minute"},
            rate_limit_storage=f"redis://127.0.0.1:{port}/0",
            rate_limit_strategy="fixed-window",
        )
    )
    assert kit.rate_limiter is not None
    kit.rate_limiter.clock = clock = FakeClock()
    app = kit.wrap(Starlette())
    try:
        assert [(await asgi_request(app, "GET", "/x")).status for _ in range(3)] == [
            404,
            404,
            429,
        ]
        redis.terminate()
        redis.wait(10)
        # down: let through (fail-open), no limit headers
        down = [await asgi_request(app, "GET", "/x") for _ in range(3)]
        assert [r.status for r in down] == [404, 404, 404]
        assert all(r.header("ratelimit") is None for r in down)
        redis = start_redis(binary, port)
        clock.advance(2)  # past the pause between attempts
        back = [(await asgi_request(app, "GET", "/x")).status for _ in range(3)]
        assert back == [404, 404, 429]  # a fresh Redis: a fresh window, limited again
    finally:
        await kit.rate_limiter.aclose()
        redis.terminate()
        redis.wait(10)
