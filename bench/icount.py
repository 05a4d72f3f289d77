"""Instructions per request of each variant served by the real server, under callgrind.

`python -m bench.icount [--requests N] [--only VARIANT ...]` serves each variant of
`bench.apps` with uvicorn (uvloop, httptools: as `bench.run` serves it) under `valgrind
--tool=callgrind`, sends a warm-up, zeroes the counters, sends exactly N keep-alive GETs over 32
loopback connections, and dumps: the instructions of the server's main thread divided by N.
The count does not depend on what else the machine runs, so two runs of the same build agree to
a fraction of a percent where wrk's ratios move by 0.2; the server's share (parsing, writing
each response header) is in it, which `bench.inproc` leaves out. Time-driven work (a timer, a
watchdog thread) is left out: valgrind runs the server ~50x slower, so it would weigh ~50x too
much per request. Needs valgrind (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.apps import VARIANTS
from bench.harness import ROOT, uvicorn_argv
from readykit.serve import serve

CONNECTIONS = 32
WARM_UP = 640
_REQUEST = b"GET /items/42 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


async def _get(port: int, requests: int) -> None:
    """`requests` GETs over CONNECTIONS keep-alive connections, each read to its end."""

    async def connection(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(count):
                writer.write(_REQUEST)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                length = _LENGTH.search(head)
                if not head.startswith(b"HTTP/1.1 200") or length is None:
                    raise RuntimeError(f"unexpected response: {head[:200]!r}")
                await reader.readexactly(int(length.group(1)))
        finally:
            writer.close()

    await asyncio.gather(*(connection(requests // CONNECTIONS) for _ in range(CONNECTIONS)))


def _main_thread_total(dump: Path) -> int:
    """The instructions callgrind counted in the dump of the server's main thread."""
    match = re.search(r"^(?:summary|totals): *(\d+)", dump.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no totals in {dump}")
    return int(match.group(1))


def measure(variant: str, requests: int) -> float:
    """Instructions of the server's main thread per request of `variant`."""
    requests -= requests % CONNECTIONS
    with tempfile.TemporaryDirectory(prefix="readykit-icount-") as tmp:
        out = Path(tmp) / "callgrind.out"
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            *uvicorn_argv(variant),
        ]
        with serve(argv, cwd=ROOT, start_timeout=180) as server:
            pid = str(server.process.pid)
            asyncio.run(_get(server.port, WARM_UP))
            subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
            asyncio.run(_get(server.port, requests))
            subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
            server.process.send_signal(signal.SIGINT)
            server.process.wait(timeout=60)
        # one file per thread; the first thread is the server's event loop
        dumps = sorted(Path(tmp).glob("callgrind.out.1-01"))
        if not dumps:
            raise RuntimeError(f"callgrind wrote no dump of the main thread in {tmp}")
        return _main_thread_total(dumps[0]) / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3200)
    parser.add_argument("--only", action="append", choices=sorted(VARIANTS))
    parser.add_argument("--json", type=Path, help="write the counts to this file")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench.icount needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    variants = ["bare", *[v for v in args.only or VARIANTS if v != "bare"]]
    bare = None
    counts: dict[str, float] = {}
    for variant in variants:
        try:
            count = measure(variant, args.requests)
        except Exception as exc:  # a peer library or a service not there
            print(f"{variant:>28}: skipped ({type(exc).__name__}: {exc})", flush=True)
            continue
        bare = count if bare is None else bare
        counts[variant] = count
        print(
            f"{variant:>28}: {count / 1000:7.1f} k instructions/request  "
            f"(+{(count - bare) / 1000:6.1f} k, bare / this {bare / count:.3f})",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"requests": args.requests, "per_request": counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
