"""Control: a hardened nginx (the real server) serving a static site gets no blocker.

Security headers, `server_tokens off`, unknown Host names dropped (444), a small body limit,
`/healthz`; no OpenAPI, no metrics, no login. Skipped where nginx is not installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from readykit.check.probe import ProbeOptions
from readykit.check.runner import CheckOptions, check
from readykit.serve import free_port, wait_for_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

CONFIG = """
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
worker_processes 1;
events {{ worker_connections 128; }}
http {{
    access_log off;
    default_type text/html;
    server_tokens off;
    client_max_body_size 64k;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} default_server;
        server_name _;
        return 444;
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name 127.0.0.1;
        root {tmp}/www;
        add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;
        add_header X-Content-Type-Options nosniff always;
        add_header X-Frame-Options DENY always;
        add_header Referrer-Policy no-referrer always;
        location = /healthz {{ default_type text/plain; return 200 "ok"; }}
        location / {{ try_files $uri $uri/index.html =404; }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[str]:
    assert NGINX is not None
    (tmp_path / "www" / "about").mkdir(parents=True)
    (tmp_path / "www" / "index.html").write_text('<h1>site</h1><a href="/about/">About</a>')
    (tmp_path / "www" / "about" / "index.html").write_text("<h1>about</h1>")
    tmp_path.chmod(0o755)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONFIG.format(tmp=tmp_path, port=port))
    if os.geteuid() == 0:  # workers would run as nobody and could not read the files
        conf.write_text("user root;\n" + conf.read_text())
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.DEVNULL
    )
    try:
        if not wait_for_port("127.0.0.1", port, time.monotonic() + 15):
            pytest.skip(f"nginx did not start: {(tmp_path / 'error.log').read_text()[-500:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_hardened_nginx_gets_no_blocker(nginx: str) -> None:
    options = CheckOptions(nginx, probe=ProbeOptions(load_users=(1, 4), load_step_s=0.5))
    report = asyncio.run(check(options))
    blockers = [(f.check, f.title) for f in report.findings if f.severity == "blocker"]
    assert blockers == []
    found = {f.check for f in report.findings}
    assert "exposure.any-host" not in found
    assert "exposure.version-banner" not in found
    assert report.discovery["sources"].get("GET /about/") == "crawl (link)"
