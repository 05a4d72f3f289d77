"""Requests/s per generator core: `readykit load` beside wrk and Locust FastHttpUser.

nginx (one worker, pinned to CPU 0) serves a small static 200 on loopback; each generator runs
alone, pinned to CPU 1, with 32 connections, for `--duration` seconds. Rounds alternate the
order of the tools; the table shows the median req/s of each. Plain client loops (aiohttp on
asyncio and on uvloop, httpx, raw asyncio streams) are measured the same way: they are the
evidence for the client-library choice.

    .venv/bin/python -m bench.load_bench --duration 5 --rounds 2 --json bench/results-load.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CONNECTIONS = 32
NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Hammer(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self):
        self.client.get("/")
"""


def pin(cpu: int) -> list[str]:
    """`taskset -c CPU` when available and the machine has that CPU."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > cpu:
        return ["taskset", "-c", str(cpu)]
    return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nginx() -> Iterator[str]:
    """nginx on a free loopback port, one worker pinned to CPU 0; yields its URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="readykit-nginx-") as tmp:
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
        proc = subprocess.Popen([*pin(0), binary, "-c", str(conf), "-p", tmp])
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/"
        finally:
            proc.terminate()
            proc.wait(10)


def run_wrk(url: str, duration: int) -> float:
    out = subprocess.run(
        [*pin(1), "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


def run_readykit(url: str, duration: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "r.json")
        subprocess.run(
            [*pin(1), sys.executable, "-m", "readykit.cli", "load", url,
             "--users", str(CONNECTIONS), "--duration", f"{duration}s", "--workers", "1",
             "--quiet", "--json", str(out)],
            capture_output=True, check=True, timeout=duration + 60,
        )  # fmt: skip
        return float(json.loads(out.read_text())["rps"])


def run_locust(url: str, duration: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "locustfile.py").write_text(LOCUSTFILE)
        subprocess.run(
            [*pin(1), sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless",
             "-u", str(CONNECTIONS), "-r", str(CONNECTIONS), "-t", f"{duration}s",
             "-H", url.rstrip("/"), "--csv", "out", "--only-summary", "--loglevel", "ERROR"],
            cwd=tmp, capture_output=True, check=False, timeout=duration + 60,
        )  # fmt: skip
        with Path(tmp, "out_stats.csv").open() as f:
            for row in csv.DictReader(f):
                if row["Name"] == "Aggregated":
                    return float(row["Requests/s"])
    return 0.0


# --- plain client loops: the evidence for the client choice --------------------------------

LOOP_SCRIPT = textwrap.dedent(
    """\
    import asyncio, sys, time
    client, loop_kind, url, duration = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    CONN = {conn}

    async def aiohttp_loop():
        import aiohttp
        count = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
            end = time.monotonic() + duration
            async def user():
                nonlocal count
                while time.monotonic() < end:
                    async with s.get(url) as r:
                        await r.read()
                    count += 1
            await asyncio.gather(*(user() for _ in range(CONN)))
        return count

    async def httpx_loop():
        import httpx
        count = 0
        limits = httpx.Limits(max_connections=CONN, max_keepalive_connections=CONN)
        async with httpx.AsyncClient(limits=limits) as c:
            end = time.monotonic() + duration
            async def user():
                nonlocal count
                while time.monotonic() < end:
                    r = await c.get(url)
                    r.read()
                    count += 1
            await asyncio.gather(*(user() for _ in range(CONN)))
        return count

    async def raw_loop():
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        req = f"GET {{parts.path or '/'}} HTTP/1.1\\r\\nHost: {{parts.netloc}}\\r\\n\\r\\n".encode()
        count = 0
        end = time.monotonic() + duration
        async def user():
            nonlocal count
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            while time.monotonic() < end:
                writer.write(req)
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                length = 0
                for line in head.split(b"\\r\\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                count += 1
            writer.close()
        await asyncio.gather(*(user() for _ in range(CONN)))
        return count

    fn = {{"aiohttp": aiohttp_loop, "httpx": httpx_loop, "raw": raw_loop}}[client]
    if loop_kind == "uvloop":
        import uvloop
        uvloop.install()
    start = time.monotonic()
    n = asyncio.run(fn())
    print(n / (time.monotonic() - start))
    """
).format(conn=CONNECTIONS)


def plain_loop(client: str, loop_kind: str) -> Callable[[str, int], float]:
    def run(url: str, duration: int) -> float:
        out = subprocess.run(
            [*pin(1), sys.executable, "-c", LOOP_SCRIPT, client, loop_kind, url, str(duration)],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 60,
        ).stdout
        return float(out.strip().splitlines()[-1])

    return run


TOOLS: dict[str, Callable[[str, int], float]] = {
    "wrk": run_wrk,
    "readykit load": run_readykit,
    "locust FastHttpUser": run_locust,
    "plain aiohttp (asyncio)": plain_loop("aiohttp", "asyncio"),
    "plain aiohttp (uvloop)": plain_loop("aiohttp", "uvloop"),
    "plain httpx (uvloop)": plain_loop("httpx", "uvloop"),
    "plain raw streams (uvloop)": plain_loop("raw", "uvloop"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", action="append", help="Run only these tools (repeatable).")
    args = parser.parse_args()
    names = [n for n in TOOLS if not args.only or n in args.only]
    raw: dict[str, list[float]] = {n: [] for n in names}
    with nginx() as url:
        for r in range(args.rounds):
            order = names if r % 2 == 0 else list(reversed(names))
            for name in order:
                try:
                    rps = TOOLS[name](url, args.duration)
                except (subprocess.SubprocessError, OSError, ValueError) as exc:
                    print(f"{name}: failed: {exc}", file=sys.stderr)
                    rps = 0.0
                raw[name].append(rps)
                print(f"round {r + 1} {name:28s} {rps:10.0f} req/s", flush=True)
    medians = {n: statistics.median(v) for n, v in raw.items()}
    locust = medians.get("locust FastHttpUser", 0.0)
    print(f"\n{'tool':28s} {'median req/s':>12s} {'x locust':>9s}")
    for n in names:
        ratio = medians[n] / locust if locust else 0.0
        print(f"{n:28s} {medians[n]:12.0f} {ratio:9.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": f"{os.cpu_count()} vCPU {platform.machine()}",
                    "python": platform.python_version(),
                    "duration_s": args.duration,
                    "rounds": args.rounds,
                    "connections": CONNECTIONS,
                    "raw": raw,
                    "median": medians,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
