"""A real uvicorn process: startup order, health over TCP, SIGTERM drains before app shutdown."""

import sys
import urllib.request
from pathlib import Path

import pytest

from readykit.serve import ServerStartError, serve

APPS = Path(__file__).parent / "apps"
UVICORN = [sys.executable, "-m", "uvicorn", "--app-dir", str(APPS), "--port", "{port}"]


def test_real_uvicorn_lifecycle_and_health() -> None:
    with serve([*UVICORN, "lifecycle_app:app"]) as server:
        with urllib.request.urlopen(f"{server.url}/health/ready", timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["content-type"] == "application/health+json"
            assert resp.headers["x-request-id"]
        with urllib.request.urlopen(f"{server.url}/", timeout=10) as resp:
            assert resp.read() == b"hello"
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the code is -15
        assert server.stop() in (0, -15)
        output = server.output()
        lines = [line for line in output.splitlines() if not line.startswith(("INFO", "{"))]
    assert "Application shutdown complete" in output
    assert lines == ["startup check", "app startup", "app shutdown, draining=True"]


def test_server_that_never_listens_is_a_clear_error() -> None:
    never = serve([sys.executable, "-c", "print('crashed early')"], start_timeout=2)
    with pytest.raises(ServerStartError, match="did not listen"), never:
        pass
