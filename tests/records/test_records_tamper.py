"""Tamper evidence: `readykit audit verify` names the first bad sequence number for a cut tail,
a deleted middle row, an edited row and a recomputed chain; a wrong or missing key is said as
such. The head is anchored outside the table: checkpoint file, metric, log line."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from readykit import ReadyKit, Settings
from readykit.cli import cli
from readykit.records import ChainKey
from readykit.records.store import GENESIS, chain_hash, row_mac

SECRET = "test-audit-key-0123456789"
ROWS = 20


def execute(url: str, *statements: str, params: list[tuple[Any, ...]] | None = None) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split(":///", 1)[1]) as conn:
            for sql in statements:
                conn.execute(sql)
            if params:
                conn.executemany(UPDATE_LINK, params)
        return
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            for sql in statements:
                await conn.execute(sql)
            if params:
                await conn.executemany(UPDATE_LINK.replace("?", "${}").format(1, 2, 3, 4), params)
        finally:
            await conn.close()

    asyncio.run(run())


UPDATE_LINK = "UPDATE rk_audit SET prev_hash = ?, hash = ?, key_id = ? WHERE seq = ?"


def rows(url: str) -> list[tuple[Any, ...]]:
    from readykit.records import store_from_url

    async def read() -> list[tuple[Any, ...]]:
        store = store_from_url(url)
        await store.open()
        try:
            return [row async for row in store.audit_rows()]
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def audited(
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> str:
    """ROWS audit events written by a kit (so the head is anchored), verify's env set up."""
    monkeypatch.setenv("READYKIT_AUDIT_KEY", SECRET)
    monkeypatch.setenv("READYKIT_SPILL_PATH", str(tmp_path / "state" / "spill.jsonl"))
    monkeypatch.setenv("READYKIT_STORE_URL", store_url)
    kit = ReadyKit(Settings(configure_logging=False, access_log=False))

    async def write() -> None:
        await kit.startup()
        try:
            for n in range(ROWS):
                await kit.audit.record("quote.create", resource=f"quote:{n}", durable=True)
        finally:
            await kit.shutdown()

    with caplog.at_level(logging.INFO, logger="readykit.records"):
        asyncio.run(write())
    (last,) = [r for r in rows(store_url) if r[0] == ROWS]
    assert kit.metrics.registry.get_sample_value("readykit_audit_head_seq") == ROWS
    assert f"audit chain head {ROWS}:{last[10]}" in caplog.messages
    return store_url


def verify(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", "verify", *args])


def test_an_intact_chain_verifies_against_its_checkpoint(audited: str, tmp_path: Path) -> None:
    out = verify()
    assert out.exit_code == 0, out.output
    assert f"audit chain intact: {ROWS} events, head seq {ROWS}" in out.output
    assert f"anchored by checkpoint {tmp_path / 'state' / 'audit-head.json'}" in out.output


def test_a_truncated_tail_is_named(audited: str) -> None:
    execute(audited, "DELETE FROM rk_audit WHERE seq > 15")
    out = verify()
    assert out.exit_code == 1
    assert "audit chain broken at seq 16: the chain ends at seq 15" in out.output
    assert "the tail from seq 16 was deleted" in out.output


def test_a_truncated_tail_is_named_by_a_head_from_the_log(audited: str, tmp_path: Path) -> None:
    (tmp_path / "state" / "audit-head.json").unlink()  # the attacker removed the checkpoint too
    head = next(r for r in rows(audited) if r[0] == ROWS)
    execute(audited, "DELETE FROM rk_audit WHERE seq > 18")
    out = verify("--head", f"{ROWS}:{head[10]}")
    assert out.exit_code == 1
    assert "audit chain broken at seq 19" in out.output
    assert "warning" not in verify("--head", f"{ROWS}:{head[10]}").output
    assert "warning: no anchor" in verify().output


def test_a_deleted_middle_row_is_named(audited: str) -> None:
    execute(audited, "DELETE FROM rk_audit WHERE seq = 7")
    out = verify()
    assert out.exit_code == 1
    assert "audit chain broken at seq 7: seq 7 is missing (deleted)" in out.output


def test_an_edited_row_is_named(audited: str) -> None:
    execute(audited, "UPDATE rk_audit SET resource = 'quote:999' WHERE seq = 9")
    out = verify()
    assert out.exit_code == 1
    assert "audit chain broken at seq 9 (id " in out.output
    assert "does not match its MAC" in out.output


def recompute_from(url: str, start: int, link: Any) -> None:
    """Edit row `start` and recompute every link from there, as an attacker without our key."""
    execute(url, f"UPDATE rk_audit SET actor = 'attacker' WHERE seq = {int(start)}")  # noqa: S608
    chain = rows(url)
    prev = GENESIS if start == 1 else chain[start - 2][10]
    updates = []
    for row in chain[start - 1 :]:
        prev_hash, hash_, key_id = link(row, prev)
        updates.append((prev_hash, hash_, key_id, row[0]))
        prev = hash_
    execute(url, params=updates)


def test_a_chain_recomputed_with_the_public_hash_is_named(audited: str) -> None:
    def sha256_link(row: tuple[Any, ...], prev: str) -> tuple[str, str, None]:
        _, id_, ts, actor, action, resource, status, request_id, details = row[:9]
        event = {"id": id_, "kind": "audit", "ts": ts, "actor": actor, "action": action,
                 "resource": resource, "status": status, "request_id": request_id,
                 "details": json.loads(details)}  # fmt: skip
        return prev, chain_hash(prev, event), None  # unkeyed, like rows from before keys

    recompute_from(audited, 12, sha256_link)
    out = verify()
    assert out.exit_code == 1
    assert "audit chain broken at seq 12 (id " in out.output
    assert "an unkeyed row after keyed ones" in out.output


def test_a_chain_recomputed_with_another_key_is_named(audited: str) -> None:
    theirs = ChainKey.from_secret("the-attacker-guessed-this-key")

    def their_link(row: tuple[Any, ...], prev: str) -> tuple[str, str, str]:
        return prev, row_mac(theirs, (*row[:9], prev, row[11])), row[11]

    recompute_from(audited, 5, their_link)
    out = verify()
    assert out.exit_code == 1
    assert "audit chain broken at seq 5 (id " in out.output
    assert "does not match its MAC" in out.output


def test_a_whole_chain_rewritten_under_another_key_is_named(audited: str) -> None:
    theirs = ChainKey.from_secret("the-attacker-made-a-new-key")

    def their_link(row: tuple[Any, ...], prev: str) -> tuple[str, str, str]:
        return prev, row_mac(theirs, (*row[:9], prev, theirs.id)), theirs.id

    recompute_from(audited, 1, their_link)
    out = verify()  # the checkpoint says which key wrote the chain: ours
    assert out.exit_code == 1
    assert "audit chain broken at seq 1 (id " in out.output
    assert "written with another key" in out.output


def test_a_wrong_key_is_said(audited: str, tmp_path: Path) -> None:
    (tmp_path / "state" / "audit-head.json").unlink()
    key_file = tmp_path / "other.key"
    key_file.write_text("some-other-key-0123456789\n")
    out = verify("--key-file", str(key_file))
    assert out.exit_code == 2
    assert "wrong audit key: the chain was written with key id" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_a_missing_key_is_said(audited: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("READYKIT_AUDIT_KEY")
    out = verify()
    assert out.exit_code == 2
    assert "the audit chain is keyed (key id " in out.output
    assert "no key was given" in out.output
    out = verify("--key-file", "/nonexistent/audit.key")
    assert out.exit_code == 2
    assert "cannot read the audit key" in out.output
