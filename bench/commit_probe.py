"""Group commit in-process: 32 callers awaiting `kit.audit.record(..., durable=True)` in a loop
for 3 s, on SQLite and PostgreSQL; durable events per second, commits per second, mean batch.

.venv/bin/python -m bench.commit_probe [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time

from bench.records_bench import fresh_postgres
from readykit import ReadyKit, Settings

CALLERS = 32
SECONDS = 3.0


async def probe(url: str) -> dict[str, float]:
    tmp = tempfile.mkdtemp()
    kit = ReadyKit(
        Settings(configure_logging=False, access_log=False, store_url=url,
                 spill_path=f"{tmp}/spill.jsonl", audit_key="bench-audit-key-0123456789")
    )  # fmt: skip
    await kit.startup()
    stop = time.perf_counter() + SECONDS
    done = 0

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await kit.audit.record("quote.create", resource="/quotes/1", durable=True)
            done += 1

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    registry = kit.metrics.registry
    commits = registry.get_sample_value("readykit_records_flush_seconds_count") or 1.0
    seconds = registry.get_sample_value("readykit_records_flush_seconds_sum") or 0.0
    await kit.shutdown()
    return {
        "durable_events_per_s": round(done / SECONDS),
        "commits_per_s": round(commits / SECONDS),
        "mean_batch": round(done / commits, 1),
        "mean_commit_ms": round(seconds / commits * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    urls = {"sqlite": f"sqlite:///{tempfile.mkdtemp()}/probe.db"}
    if args.postgres:
        urls["postgresql"] = asyncio.run(fresh_postgres(args.postgres))
    for backend, url in urls.items():
        print(backend, asyncio.run(probe(url)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
