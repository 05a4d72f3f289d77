"""A real nginx on the same host in front of the kit: the setup that opened everything before.

nginx's default `proxy_pass` adds no forwarding header, so every request reaches the app from
127.0.0.1. The ops endpoints must stay closed all the same, and with forwarding configured a
client must not be able to choose its own rate-limit key.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from readykit.serve import free_port, serve, wait_for_port
from support import need_binary

APPS = Path(__file__).parents[1] / "apps"
TOKEN = "nginx-test-token"

PLAIN = "proxy_pass http://127.0.0.1:{upstream};"
FORWARDING = (
    "proxy_pass http://127.0.0.1:{upstream};\n"
    "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
    "      proxy_set_header X-Forwarded-Proto $scheme;"
)


@contextmanager
def nginx(tmp_path: Path, upstream: int, location: str) -> Iterator[str]:
    """A real nginx on a free loopback port proxying to `upstream`; yields its base URL."""
    binary = need_binary("nginx")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"daemon off;\nmaster_process off;\npid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\nevents {{}}\n"
        "http {\n"
        f"  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  proxy_temp_path {tmp_path};\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n"
        f"    location / {{\n      {location.format(upstream=upstream)}\n    }}\n  }}\n"
        "}\n"
    )
    process = subprocess.Popen([binary, "-c", str(conf), "-p", str(tmp_path)])
    try:
        import time

        assert wait_for_port("127.0.0.1", port, time.monotonic() + 20), (
            tmp_path / "error.log"
        ).read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def app(tmp_path: Path, *uvicorn_options: str, **env: str) -> Iterator[int]:
    """The kit-wrapped app under a real uvicorn; yields its port."""
    argv = [sys.executable, "-m", "uvicorn", *uvicorn_options, "--port", "{port}"]
    argv += ["--app-dir", str(APPS), "ops_app:app"]
    base = {"READYKIT_STORE_URL": f"sqlite:///{tmp_path}/r.db", "READYKIT_LOG_LEVEL": "warning"}
    with serve(argv, env={**base, **env}, cwd=tmp_path) as server:
        yield server.port


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.2",
) -> tuple[int, bytes]:
    """One request from `source`: a loopback address that is not the trusted proxy (nginx,
    127.0.0.1), so the client is somebody else, as on a real network."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=10, source_address=(source, 0)
    )
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(
            method, path, body=b"" if method == "POST" else None, headers=headers or {}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_default_proxy_pass_opens_nothing(tmp_path: Path) -> None:
    """Without a token, nothing but the public health bodies, though every peer is loopback."""
    with app(tmp_path) as upstream, nginx(tmp_path, upstream, PLAIN) as url:
        status, body = fetch(f"{url}/health")
        assert status == 200
        checks = json.loads(body)["checks"]
        assert "description" not in json.loads(body)
        assert all(set(e) == {"status", "componentId"} for v in checks.values() for e in v), checks
        assert fetch(f"{url}/health/ready")[0] == 200
        assert fetch(f"{url}/metrics")[0] == 401
        assert fetch(f"{url}/ops")[0] == 403
        assert fetch(f"{url}/ops/api/audit")[0] == 401
        assert fetch(f"{url}/ops/api/overview")[0] == 401


def test_default_proxy_pass_with_a_token_needs_the_token(tmp_path: Path) -> None:
    with (
        app(tmp_path, READYKIT_OPS_TOKEN=TOKEN) as upstream,
        nginx(tmp_path, upstream, PLAIN) as url,
    ):
        assert fetch(f"{url}/metrics")[0] == 401
        assert fetch(f"{url}/ops/api/audit")[0] == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, body = fetch(f"{url}/metrics", headers=bearer)
        assert status == 200
        assert b"http_server_request_duration_seconds" in body
        assert fetch(f"{url}/ops/api/audit", headers=bearer)[0] == 200
        status, body = fetch(f"{url}/health", headers=bearer)
        assert json.loads(body)["description"] == "app"


def test_a_client_cannot_choose_its_rate_limit_key(tmp_path: Path) -> None:
    """nginx appends the peer to X-Forwarded-For and passes a client's `Forwarded` untouched:
    neither a rotating `Forwarded` nor a forged X-Forwarded-For prefix buys more requests."""
    env = {
        "READYKIT_TRUSTED_PROXIES": '["127.0.0.1"]',
        "READYKIT_RATE_LIMITS": '{"POST /login": "5/minute"}',
    }
    with app(tmp_path, **env) as upstream, nginx(tmp_path, upstream, FORWARDING) as url:
        statuses = [
            fetch(
                f"{url}/login",
                method="POST",
                headers={"Forwarded": f"for=198.51.100.{i}", "X-Forwarded-For": f"203.0.113.{i}"},
            )[0]
            for i in range(30)
        ]
        assert statuses[:5] == [200] * 5
        assert set(statuses[5:]) == {429}
        # the client the app sees is the address nginx saw, not what the client wrote
        status, who = fetch(f"{url}/whoami", headers={"X-Forwarded-For": "203.0.113.99"})
        assert (status, who) == (200, b"127.0.0.2")


def test_forwarded_header_mode_ignores_x_forwarded_for(tmp_path: Path) -> None:
    rfc7239 = (
        "proxy_pass http://127.0.0.1:{upstream};\n"
        '      proxy_set_header Forwarded "for=$remote_addr;proto=$scheme";'
    )
    env = {
        "READYKIT_TRUSTED_PROXIES": '["127.0.0.1"]',
        "READYKIT_FORWARDED_HEADER": "forwarded",
        "READYKIT_RATE_LIMITS": '{"POST /login": "3/minute"}',
    }
    # uvicorn's own --proxy-headers (on by default, trusting 127.0.0.1) would rewrite the
    # client from the X-Forwarded-For nginx passes through: readykit owns forwarding here
    with (
        app(tmp_path, "--no-proxy-headers", **env) as upstream,
        nginx(tmp_path, upstream, rfc7239) as url,
    ):
        statuses = [
            fetch(f"{url}/login", method="POST", headers={"X-Forwarded-For": f"203.0.113.{i}"})[0]
            for i in range(10)
        ]
        assert statuses[:3] == [200] * 3
        assert set(statuses[3:]) == {429}
