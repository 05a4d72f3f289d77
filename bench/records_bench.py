"""Records bench: audit ingest through the BatchWriter beside a raw executemany of the same rows
(SQLite and PostgreSQL, same run), and request throughput with auto-audit off, durable (commit)
and async (wrk POSTs), on SQLite and PostgreSQL.

.venv/bin/python -m bench.records_bench [--events 20000] [--duration 5] [--rounds 3]
    [--postgres postgresql://postgres@127.0.0.1:5432/test]
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
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.harness import run_variant
from readykit.records import ChainKey, store_from_url
from readykit.records.batch import BatchMetrics, BatchWriter

HERE = Path(__file__).parent
SECRET = "bench-audit-key-0123456789"


def events(n: int) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"id": uuid.uuid4().hex, "kind": "audit", "ts": now + i, "actor": "user:7",
         "action": "POST /quotes", "resource": f"/quotes/{i}", "status": 201,
         "request_id": uuid.uuid4().hex[:16], "details": {"amount": i}}
        for i in range(n)
    ]  # fmt: skip


RAW_TABLE = (
    "CREATE TABLE raw_audit (seq {serial} PRIMARY KEY, id TEXT NOT NULL UNIQUE, ts {float},"
    " actor TEXT, action TEXT, resource TEXT, status INTEGER, request_id TEXT, details TEXT)"
)
RAW_INSERT = (
    "INSERT INTO raw_audit (id, ts, actor, action, resource, status, request_id, details)"
    " VALUES ({params})"
)


def rows(batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (e["id"], e["ts"], e["actor"], e["action"], e["resource"], e["status"], e["request_id"],
         json.dumps(e["details"]))
        for e in batch
    ]  # fmt: skip


async def readykit_ingest(url: str, batch: list[dict[str, Any]]) -> float:
    store = store_from_url(url, audit_key=ChainKey.from_secret(SECRET))
    await store.open()
    spill = Path(tempfile.mkdtemp()) / "spill.jsonl"
    writer = BatchWriter(store, BatchMetrics(CollectorRegistry()), spill_path=spill)
    started = time.perf_counter()
    for event in batch:
        writer.put(event)
    await writer.flush()
    elapsed = time.perf_counter() - started
    assert len(await store.audit(limit=1, offset=len(batch) - 1)) == 1
    await store.close()
    return len(batch) / elapsed


def raw_sqlite(path: Path, batch: list[dict[str, Any]]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # as the store: a commit is an fsync
    conn.execute(RAW_TABLE.format(serial="INTEGER", float="REAL"))
    data = rows(batch)
    started = time.perf_counter()
    for i in range(0, len(data), 500):  # the same batch size as the writer
        conn.execute("BEGIN")
        conn.executemany(RAW_INSERT.format(params=", ".join("?" * 8)), data[i : i + 500])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(batch) / elapsed


async def raw_postgres(url: str, batch: list[dict[str, Any]]) -> float:
    import asyncpg

    conn = await asyncpg.connect(url)
    await conn.execute("DROP TABLE IF EXISTS raw_audit")
    await conn.execute(RAW_TABLE.format(serial="BIGSERIAL", float="DOUBLE PRECISION"))
    sql = RAW_INSERT.format(params=", ".join(f"${i}" for i in range(1, 9)))
    data = rows(batch)
    started = time.perf_counter()
    for i in range(0, len(data), 500):
        async with conn.transaction():
            await conn.executemany(sql, data[i : i + 500])
    elapsed = time.perf_counter() - started
    await conn.execute("DROP TABLE raw_audit")
    await conn.close()
    return len(batch) / elapsed


async def fresh_postgres(admin_url: str) -> str:
    import asyncpg

    name = f"rk_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def ingest(n: int, rounds: int, postgres: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend in ("sqlite", "postgresql") if postgres else ("sqlite",):
        ours, raw = [], []
        for _ in range(rounds):
            batch = events(n)
            tmp = Path(tempfile.mkdtemp())
            if backend == "sqlite":
                raw.append(raw_sqlite(tmp / "raw.db", batch))
                ours.append(asyncio.run(readykit_ingest(f"sqlite:///{tmp}/rk.db", batch)))
            else:
                assert postgres is not None
                url = asyncio.run(fresh_postgres(postgres))
                raw.append(asyncio.run(raw_postgres(url, batch)))
                ours.append(asyncio.run(readykit_ingest(url, batch)))
        out[backend] = {
            "readykit_events_per_s": round(statistics.median(ours)),
            "raw_executemany_per_s": round(statistics.median(raw)),
            "ratio": round(statistics.median(o / r for o, r in zip(ours, raw, strict=True)), 3),
        }
        print(backend, out[backend], flush=True)
    return out


VARIANTS = {  # variant -> (auto-audit, durability)
    "records-audit-off": ("false", "commit"),
    "records-audit-commit": ("true", "commit"),
    "records-audit-async": ("true", "async"),
}


def throughput(
    duration: int, rounds: int, store: str | None = None, connections: int = 32
) -> dict[str, Any]:
    """wrk POSTs with auto-audit off, durable (commit, the default) and async; `store` is a
    PostgreSQL server URL (a fresh database per run) or None for SQLite."""
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(rounds):
        order = list(results) if r % 2 == 0 else list(results)[::-1]
        for variant in order:
            tmp = tempfile.mkdtemp()
            audit, durability = VARIANTS[variant]
            url = asyncio.run(fresh_postgres(store)) if store else f"sqlite:///{tmp}/rk.db"
            env = {
                "READYKIT_STORE_URL": url,
                "READYKIT_SPILL_PATH": f"{tmp}/spill.jsonl",
                "READYKIT_AUDIT_KEY": SECRET,
                "READYKIT_AUDIT_MUTATIONS": audit,
                "READYKIT_AUDIT_DURABILITY": durability,
            }
            result = run_variant(
                "records-app", duration_s=duration, path="/quotes", env=env,
                connections=connections,
                factory_module="bench.records_apps", script=HERE / "post.lua",
            )  # fmt: skip
            print(f"round {r + 1} {variant}: {result.rps:.0f} req/s", flush=True)
            results[variant].append(result.rps)
    off = results["records-audit-off"]
    out: dict[str, Any] = {"audit_off_rps": round(statistics.median(off))}
    for name in ("commit", "async"):
        on = results[f"records-audit-{name}"]
        out[f"audit_{name}_rps"] = round(statistics.median(on))
        out[f"{name}_ratio"] = round(
            statistics.median(a / b for a, b in zip(on, off, strict=True)), 3
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=["ingest", "throughput"])
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (POSTs)")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql", "both"], default="both",
        help="throughput: which store(s) (postgresql needs --postgres)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.backend == "postgresql" and not args.postgres:
        parser.error("--backend postgresql needs --postgres URL (it was given empty)")
    report: dict[str, Any] = {}
    if args.only != "throughput":
        report["ingest"] = ingest(args.events, args.rounds, args.postgres or None)
    if args.only != "ingest":
        report["connections"] = args.connections
        if args.backend != "postgresql":
            report["throughput_sqlite"] = throughput(
                args.duration, args.rounds, connections=args.connections
            )
        if args.postgres and args.backend != "sqlite":
            report["throughput_postgresql"] = throughput(
                args.duration, args.rounds, args.postgres, connections=args.connections
            )
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
