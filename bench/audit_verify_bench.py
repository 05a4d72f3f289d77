"""Audit verify bench: seed a keyed chain of N rows (SQLite, and PostgreSQL if given), then time
`readykit audit verify` on it, streamed, as a separate process (wall time and peak RSS).

.venv/bin/python -m bench.audit_verify_bench [--rows 1000000]
    [--postgres postgresql://postgres@127.0.0.1:5432/test] [--json bench/results-audit-verify.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.records_bench import fresh_postgres
from readykit.records import ChainKey, store_from_url

SECRET = "bench-audit-key-0123456789"
BATCH = 5000


async def seed(url: str, rows: int) -> float:
    """Write `rows` audit events through the store (chained, keyed); seconds taken."""
    store = store_from_url(url, audit_key=ChainKey.from_secret(SECRET))
    await store.open()
    started = time.perf_counter()
    now = time.time()
    try:
        for start in range(0, rows, BATCH):
            await store.write([
                {"id": f"e{n:08d}", "kind": "audit", "ts": now + n, "actor": f"user:{n % 97}",
                 "action": "POST /quotes", "resource": f"/quotes/{n}", "status": 201,
                 "request_id": f"{n:032x}", "details": {"amount": n % 1000}}
                for n in range(start, min(rows, start + BATCH))
            ])  # fmt: skip
    finally:
        await store.close()
    return time.perf_counter() - started


def verify(url: str) -> dict[str, Any]:
    """Run the CLI as its own process; its wall time, peak RSS and first output line."""
    env = {**os.environ, "READYKIT_AUDIT_KEY": SECRET,
           "READYKIT_SPILL_PATH": f"{tempfile.mkdtemp()}/spill.jsonl"}  # fmt: skip
    code = "from readykit.cli import cli; cli()"
    argv = [sys.executable, "-c", code, "audit", "verify", "--store", url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": round(elapsed, 2),
        "peak_rss_mib": round(max(peak_kib, before) / 1024),
        "exit_code": done.returncode,
        "output": (done.stdout + done.stderr).strip().splitlines()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    urls = {"sqlite": f"sqlite:///{tempfile.mkdtemp()}/verify.db"}
    if args.postgres:
        urls["postgresql"] = asyncio.run(fresh_postgres(args.postgres))
    report: dict[str, Any] = {"rows": args.rows}
    for backend, url in urls.items():
        seeded = asyncio.run(seed(url, args.rows))
        result = verify(url)
        result["seed_seconds"] = round(seeded, 1)
        result["rows_per_s"] = round(args.rows / result["seconds"])
        report[backend] = result
        print(backend, result, flush=True)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
