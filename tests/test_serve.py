"""A real uvicorn process: startup order, health over TCP, SIGTERM drains before app shutdown."""

import json
import socket
import sys
import urllib.error
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


def test_a_made_up_method_under_real_h11_is_redacted_in_the_access_line() -> None:
    """h11 passes any token as the method, so a client can put a secret there (httptools
    refuses such a request line with a 400 before the app sees it)."""
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    with serve([*UVICORN, "--http", "h11", "lifecycle_app:app"]) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as conn:
            conn.sendall(f"{token} / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 ")  # the app answered (405: no such method)
        server.stop()
        output = server.output()
    access = [json.loads(line) for line in output.splitlines() if '"event": "request"' in line]
    assert [line["method"] for line in access] == ["[REDACTED]"]
    assert token not in output


def test_behind_root_path_ops_routes_and_route_limits_hold() -> None:
    """`uvicorn --root-path /api` puts the prefix in front of every path (`/api/login`); the
    kit's ops routes and route keys are matched as the app routes, without it."""
    limits = {"READYKIT_RATE_LIMITS": '{"POST /login": "2/minute"}'}
    command = [*UVICORN, "--root-path", "/api", "ops_app:app"]
    with serve(command, env=limits) as server:
        with urllib.request.urlopen(f"{server.url}/health/ready", timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["content-type"] == "application/health+json"
        statuses = []
        for _ in range(3):
            request = urllib.request.Request(f"{server.url}/login", data=b"", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    statuses.append(resp.status)
            except urllib.error.HTTPError as refused:
                statuses.append(refused.code)
        server.stop()
    assert statuses == [200, 200, 429]


def test_litestar_logs_go_through_the_kit_once_and_redacted() -> None:
    """Litestar's constructor puts a handler of its own on the root logger (and on its
    `litestar` logger, which `request.logger` uses): every line was printed a second time,
    unredacted."""
    with serve([*UVICORN, "litestar_log_app:app"]) as server:
        with urllib.request.urlopen(f"{server.url}/hello", timeout=10) as resp:
            assert resp.status == 200
        server.stop()
        output = server.output()
    assert "hunter2-secret-value" not in output
    assert "sk_live_0123456789abcdefghij" not in output
    for said in ["charging with", "refund with"]:
        lines = [line for line in output.splitlines() if said in line]
        assert len(lines) == 1
        assert json.loads(lines[0])["level"] == "warning"  # the kit's JSON line


def test_a_request_target_without_its_slash_counts_against_the_route() -> None:
    """h11 passes `POST login HTTP/1.1` through (httptools refuses it) and Litestar serves it
    with the `/login` handler: it must meet `/login`'s body and rate limits."""
    limits = {
        "READYKIT_RATE_LIMITS": '{"POST /login": "2/minute"}',
        "READYKIT_BODY_LIMITS": '{"POST /login": 64}',
    }

    def post(target: str, body: bytes) -> str:
        with socket.create_connection((server.host, server.port), timeout=10) as conn:
            head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        return answer.split(b" ", 2)[1].decode()

    command = [*UVICORN, "--http", "h11", "litestar_login_app:app"]
    with serve(command, env=limits) as server:
        big = post("login", b"x" * 100)
        statuses = [post("login", b"x") for _ in range(3)]
        server.stop()
    assert big == "413"
    assert statuses == ["200", "429", "429"]  # the 413 counted too
