"""Dashboard bench: /ops/api latency with 1,000,000 stored APM entries (and an hour of traffic
for 20 routes). In-process ASGI calls, median and p95 of 50 calls each.

.venv/bin/python -m bench.ops_bench [--entries 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starlette.applications import Starlette

from readykit import ReadyKit, Settings
from readykit.dashboard.traffic import BOUNDS_MS, TRAFFIC
from readykit.records.sqlite import migrate
from readykit.testing import asgi_request, lifespan

KINDS = ("slow_request", "slow_query", "exception", "stall")


def seed(path: Path, entries: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    migrate(conn)
    now = time.time()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO rk_entries (id, kind, ts, grp, duration_ms, data) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (f"e{i}", KINDS[i % 4], now - (i % 86_400), f"GET /route/{i % 50}", 1000.0 + i % 900,
             '{"request_id": "r"}')
            for i in range(entries)
        ),
    )  # fmt: skip
    hist = json.dumps([1] * (len(BOUNDS_MS) + 1))
    minute = int(now // 60)
    conn.executemany(
        "INSERT INTO rk_docs (kind, id, key, ts, body) VALUES (?, ?, ?, ?, ?)",
        (
            (TRAFFIC, f"{m}:p:{r}", str(m), m * 60.0,
             f'{{"minute": {m}, "route": "GET /r/{r}", "count": 15, "errors": 1, '
             f'"sum_ms": 150.0, "hist": {hist}}}')
            for m in range(minute - 59, minute + 1)
            for r in range(20)
        ),
    )  # fmt: skip
    conn.execute("COMMIT")
    conn.close()


async def measure(url: str) -> dict[str, dict[str, float]]:
    kit = ReadyKit(Settings(configure_logging=False, access_log=False, store_url=url))
    app = kit.wrap(Starlette())
    out: dict[str, dict[str, float]] = {}
    async with lifespan(app):
        for path, query in (("/ops/api/overview", b""), ("/ops/api/entries", b"kind=slow_request"),
                            ("/ops/api/audit", b"")):  # fmt: skip
            times = []
            for _ in range(50):
                started = time.perf_counter()
                r = await asgi_request(app, "GET", path, query_string=query)
                times.append((time.perf_counter() - started) * 1000)
                assert r.status == 200, r.body
            times.sort()
            out[path] = {"median_ms": round(statistics.median(times), 2),
                         "p95_ms": round(times[int(len(times) * 0.95) - 1], 2)}  # fmt: skip
            print(path, out[path], flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "store.db"
    started = time.perf_counter()
    seed(path, args.entries)
    print(f"seeded {args.entries} entries in {time.perf_counter() - started:.1f} s", flush=True)
    result = asyncio.run(measure(f"sqlite:///{path}"))
    if args.json:
        args.json.write_text(json.dumps({"entries": args.entries, "latency": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
