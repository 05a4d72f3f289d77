"""Records wired into a kit: auto-audit, kit.audit, slow requests, exceptions, a stall that
names the blocking handler, slow SQL; and the CLI that reads them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.cli import cli
from readykit.records import ChainKey, store_from_url
from readykit.records.apm import normalise_sql
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


async def blocking(request: Request) -> PlainTextResponse:
    time.sleep(0.3)  # the bug the watchdog exists for: a sync call inside async def
    return PlainTextResponse("done")


async def boom(request: Request) -> None:
    raise KeyError("missing")


def make(tmp_path: Path, **settings: Any) -> tuple[ReadyKit, Any]:
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            store_url=f"sqlite:///{tmp_path}/records.db",
            spill_path=str(tmp_path / "spill.jsonl"),
            slow_request_ms=250,
            **settings,
        ),
        principal=lambda scope: dict(scope["headers"]).get(b"x-user", b"").decode() or None,
    )
    routes = [
        Route("/quotes", create, methods=["POST"]),
        Route("/blocking", blocking),
        Route("/boom", boom),
    ]
    return kit, kit.wrap(Starlette(routes=routes))


async def test_everything_lands_in_the_store(tmp_path: Path) -> None:
    kit, app = make(tmp_path)
    async with lifespan(app):
        for _ in range(3):
            r = await asgi_request(app, "POST", "/quotes", headers=[("X-User", "user:7")])
            assert r.status == 201
        await kit.audit.record(
            "quote.approve", resource="quote:1", actor="user:9",
            details={"password": "hunter2", "note": "ok"}, durable=True,
        )  # fmt: skip
        assert (await asgi_request(app, "GET", "/blocking")).status == 200
        assert (await asgi_request(app, "GET", "/boom")).status == 500
    store = store_from_url(f"sqlite:///{tmp_path}/records.db")
    await store.open()
    try:
        audit = await store.audit()
        stalls = await store.entries("stall")
        slow = await store.entries("slow_request")
        errors = await store.entries("exception")
    finally:
        await store.close()
    autos = [e for e in audit if e["action"] == "POST /quotes"]
    assert len(autos) == 3
    assert {(e["actor"], e["status"], e["resource"]) for e in autos} == {("user:7", 201, "/quotes")}
    (manual,) = [e for e in audit if e["action"] == "quote.approve"]
    assert manual["details"] == {"password": "[REDACTED]", "note": "ok"}
    assert stalls
    assert any("in blocking" in s["group"] for s in stalls), stalls
    assert stalls[0]["duration_ms"] >= 100  # only stalls past stall_threshold_ms are kept
    assert any(f"{__file__}" in frame for frame in stalls[0]["data"]["stack"])
    assert [s["group"] for s in slow] == ["GET /blocking"]
    (error,) = errors
    assert error["group"].startswith("builtins.KeyError at ")
    assert error["group"].endswith("in boom")


async def test_unreachable_store_stops_startup_or_spills(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the store's directory should be")
    kit = ReadyKit(Settings(configure_logging=False, store_url=f"sqlite:///{blocked}/r.db"))
    with pytest.raises(ConfigurationError, match="store_url: the store is unreachable"):
        await kit.startup()
    relaxed = ReadyKit(
        Settings(
            configure_logging=False,
            store_url=f"sqlite:///{blocked}/r.db",
            store_required=False,
            spill_path=str(tmp_path / "spill.jsonl"),
        )
    )
    await relaxed.startup()
    await relaxed.audit.record("x.y", durable=True)  # spilled to disk counts as durable
    await relaxed.shutdown()
    assert json.loads((tmp_path / "spill.jsonl").read_text().splitlines()[0])["action"] == "x.y"


async def test_slow_sql_is_grouped_without_parameters(tmp_path: Path) -> None:
    kit, app = make(tmp_path, slow_query_ms=0.0001)
    assert kit.records is not None
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/app.db")
    kit.records.slow_queries.watch(engine)
    async with lifespan(app):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1 WHERE 'secret' = :v"), {"v": "x"})
            await conn.execute(text("SELECT 2 WHERE 'other' = 'x'"))
        await engine.dispose()
    store = store_from_url(f"sqlite:///{tmp_path}/records.db")
    await store.open()
    try:
        groups = [e["group"] for e in await store.entries("slow_query")]
    finally:
        await store.close()
    assert groups == ["SELECT ? WHERE ? = ?", "SELECT ? WHERE ? = ?"]
    assert normalise_sql("SELECT * FROM t WHERE id IN (1, 2, 3)\n  AND x = 'a''b'") == (
        "SELECT * FROM t WHERE id IN (?) AND x = ?"
    )


def test_audit_and_apm_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    secret = "test-audit-key-0123456789"
    monkeypatch.setenv("READYKIT_AUDIT_KEY", secret)
    url = f"sqlite:///{tmp_path}/cli.db"
    store = store_from_url(url, audit_key=ChainKey.from_secret(secret))
    events = [
        {"id": f"a{n}", "kind": "audit", "ts": 1_800_000_000.0 + n, "actor": f"user:{n % 2}",
         "action": "quote.create", "resource": f"quote:{n}", "details": {"n": n}}
        for n in range(4)
    ]  # fmt: skip
    stall = {"id": "s1", "kind": "stall", "ts": 1_800_000_000.0, "group": "a.py:1 in f",
             "duration_ms": 250.0, "data": {"stack": ["a.py:1 in f"]}}  # fmt: skip

    async def seed() -> None:
        await store.open()
        await store.write([*events, stall])
        await store.close()

    asyncio.run(seed())
    runner = CliRunner()
    out = runner.invoke(cli, ["audit", "export", "--store", url, "--actor", "user:1"])
    assert out.exit_code == 0, out.output
    assert [json.loads(line)["id"] for line in out.output.splitlines()] == ["a1", "a3"]
    out = runner.invoke(cli, ["audit", "export", "--store", url, "--format", "csv"])
    assert out.output.splitlines()[0].startswith("seq,id,ts,actor")
    assert len(out.output.splitlines()) == 5
    out = runner.invoke(cli, ["audit", "verify", "--store", url])
    assert out.exit_code == 0
    assert out.output.splitlines()[0] == "audit chain intact: 4 events, head seq 4"
    import sqlite3

    with sqlite3.connect(f"{tmp_path}/cli.db") as conn:
        conn.execute("UPDATE rk_audit SET details = '{\"n\": 99}' WHERE id = 'a2'")
    out = runner.invoke(cli, ["audit", "verify", "--store", url])
    assert out.exit_code == 1
    assert "broken at seq 3 (id a2)" in out.output
    out = runner.invoke(cli, ["audit", "list", "--store", url, "--since", "last tuesday"])
    assert out.exit_code == 2
    assert len(out.output.strip().splitlines()) == 1
    out = runner.invoke(cli, ["apm", "list", "--store", url, "--kind", "stall"])
    assert json.loads(out.output)["group"] == "a.py:1 in f"


def test_grouped_summary_has_count_max_p95_and_a_sample() -> None:
    from readykit.records.apm import summarise

    entries = [
        {"kind": "slow_query", "group": "SELECT ?", "ts": 100.0 + i, "duration_ms": float(i + 1),
         "data": {"request_id": f"r{i}"}}
        for i in range(20)
    ]  # fmt: skip
    entries.append(
        {"kind": "slow_query", "group": "UPDATE t", "ts": 5.0, "duration_ms": 7.0, "data": {}}
    )
    top, other = summarise(entries)
    assert top == {
        "group": "SELECT ?", "kind": "slow_query", "count": 20, "max_ms": 20.0, "p95_ms": 19.0,
        "first_seen": 100.0, "last_seen": 119.0, "sample_request_id": "r19",
    }  # fmt: skip
    assert (other["count"], other["p95_ms"]) == (1, 7.0)


async def test_audit_details_that_are_not_json_are_stored_as_redacted_repr(tmp_path: Path) -> None:
    kit, _ = make(tmp_path)

    class Thing:
        def __repr__(self) -> str:
            return "<Thing token=abcdefgh12345>"

    event = kit.audit.event("x.y", details={"thing": Thing(), "api_key": "k-1"})
    assert event["details"] == {"thing": "<Thing token=[REDACTED]>", "api_key": "[REDACTED]"}


def test_event_ids_are_unique_across_a_fork() -> None:
    import os

    from readykit.records.store import new_id

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    parent = new_id()
    assert child[:16] != parent[:16]
