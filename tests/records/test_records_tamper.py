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

from readykit.cli import cli
from readykit.records import ChainKey
from readykit.records.schema import UNKEYED_THROUGH
from readykit.records.store import (
    GENESIS,
    SEQ_MIN,
    BrokenLink,
    chain_hash,
    row_mac,
    verify_rows,
)
from support import kit_writes

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
def env(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kit's and verify's environment: the store, the key, the state dir."""
    monkeypatch.setenv("READYKIT_AUDIT_KEY", SECRET)
    monkeypatch.setenv("READYKIT_SPILL_PATH", str(tmp_path / "state" / "spill.jsonl"))
    monkeypatch.setenv("READYKIT_STORE_URL", store_url)
    return store_url


@pytest.fixture
def audited(env: str, caplog: pytest.LogCaptureFixture) -> str:
    """ROWS audit events written by a kit (so the head is anchored), verify's env set up."""
    store_url = env
    with caplog.at_level(logging.INFO, logger="readykit.records"):
        kit = kit_writes(ROWS)
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
    recompute_from(audited, 12, sha256_link)
    out = verify()
    assert out.exit_code == 1
    assert "audit chain broken at seq 12 (id " in out.output
    assert "an unkeyed row after keyed ones" in out.output


def test_rows_inserted_below_seq_1_are_read_and_named(audited: str) -> None:
    """Rows numbered 0 or below (readykit numbers from 1) are listed by `audit list`: verify
    reads them too, down to the lowest seq a 64-bit column holds, and names the first."""
    forged = [(SEQ_MIN, "forged-min"), (-7, "forged-neg"), (0, "forged-zero")]
    execute(
        audited,
        *(
            "INSERT INTO rk_audit (seq, id, ts, actor, action, resource, status, request_id,"  # noqa: S608
            f" details, prev_hash, hash, key_id) VALUES ({seq}, '{id_}', 1.0, 'bob',"
            f" 'payments.approve', 'payment:42', 200, NULL, 'null', '{GENESIS}', 'x', NULL)"
            for seq, id_ in forged
        ),
    )
    from readykit.records import store_from_url

    async def seqs() -> list[int]:
        store = store_from_url(audited)
        await store.open()
        try:
            return [row[0] async for row in store.audit_rows(page=2)]
        finally:
            await store.close()

    assert asyncio.run(seqs()) == [SEQ_MIN, -7, 0, *range(1, ROWS + 1)]
    out = verify()
    assert out.exit_code == 1, out.output
    assert f"audit chain broken at seq {SEQ_MIN} (id forged-min): seq {SEQ_MIN} is below 1" in (
        out.output
    )
    execute(audited, f"DELETE FROM rk_audit WHERE seq = {SEQ_MIN}")  # noqa: S608
    out = verify()
    assert out.exit_code == 1, out.output
    assert "audit chain broken at seq -7 (id forged-neg): seq -7 is below 1" in out.output
    execute(audited, "DELETE FROM rk_audit WHERE seq < 0")
    assert "audit chain broken at seq 0 (id forged-zero)" in verify().output


def test_an_unkeyed_row_whose_details_are_not_json_is_named_not_raised() -> None:
    row = (1, "old-1", 1.0, None, "quote.create", None, None, None, '{"n": ', GENESIS, "h", None)
    broken = verify_rows([row], None).broken
    assert broken == BrokenLink(1, "old-1", "its details are not JSON: edited")


def sha256_link(row: tuple[Any, ...], prev: str) -> tuple[str, str, None]:
    """The link an attacker without the key can make: the public SHA-256 of pre-key rows."""
    _, id_, ts, actor, action, resource, status, request_id, details = row[:9]
    event = {"id": id_, "kind": "audit", "ts": ts, "actor": actor, "action": action,
             "resource": resource, "status": status, "request_id": request_id,
             "details": json.loads(details)}  # fmt: skip
    return prev, chain_hash(prev, event), None


def test_a_whole_chain_rewritten_without_the_key_is_named(audited: str, tmp_path: Path) -> None:
    """Every row edited and relinked unkeyed (as rows from before keyed chains), the checkpoint
    deleted: the store recorded that no row predates keyed chains, so seq 1 is named."""
    recompute_from(audited, 1, sha256_link)
    (tmp_path / "state" / "audit-head.json").unlink()
    out = verify()
    assert out.exit_code == 1, out.output
    assert "audit chain broken at seq 1 (id " in out.output
    assert "the rows that predate keyed chains end at seq 0: written without the key" in (
        out.output
    )


@pytest.mark.parametrize("record", ["'1000'", "'many'", None])
def test_a_keyless_rewrite_with_its_record_edited_is_not_taken_as_intact(
    audited: str, tmp_path: Path, record: str | None
) -> None:
    """The record of pre-key rows lives in the database too: raised, garbled or deleted along
    with the rewrite, verify (given the key) still does not call an all-unkeyed chain that
    nothing anchors intact."""
    recompute_from(audited, 1, sha256_link)
    (tmp_path / "state" / "audit-head.json").unlink()
    edit = (
        f"UPDATE rk_meta SET value = {record} WHERE key = '{UNKEYED_THROUGH}'"  # noqa: S608
        if record is not None
        else f"DELETE FROM rk_meta WHERE key = '{UNKEYED_THROUGH}'"  # noqa: S608
    )
    execute(audited, edit)
    out = verify()
    assert out.exit_code == 1, out.output
    assert "audit chain broken at seq 1 (id " in out.output
    if record == "'1000'":
        assert "every row is unkeyed and no anchor covers them" in out.output
    else:
        assert "end at seq 0: written without the key" in out.output


def legacy_store(url: str, count: int) -> None:
    """A store as schema version 2 left it: `count` unkeyed rows linked by SHA-256."""
    from readykit.records import schema

    sqlite = url.startswith("sqlite")
    types = {"serial": "INTEGER", "float": "REAL"} if sqlite else {
        "serial": "BIGSERIAL", "float": "DOUBLE PRECISION"}  # fmt: skip
    statements = [schema.META, "INSERT INTO rk_meta (key, value) VALUES ('schema_version', '2')"]
    statements += [sql.format(**types) for version in (1, 2) for sql in schema.MIGRATIONS[version]]
    prev = GENESIS
    for n in range(1, count + 1):
        event = {"id": f"old-{n}", "kind": "audit", "ts": 1_700_000_000.0 + n, "actor": "user:1",
                 "action": "quote.create", "resource": f"quote:{n}", "status": 201,
                 "request_id": None, "details": {"n": n}}  # fmt: skip
        link = chain_hash(prev, event)
        statements.append(
            "INSERT INTO rk_audit (seq, id, ts, actor, action, resource, status, request_id,"  # noqa: S608
            f" details, prev_hash, hash) VALUES ({n}, 'old-{n}', {event['ts']}, 'user:1',"
            f" 'quote.create', 'quote:{n}', 201, NULL, '{{\"n\": {n}}}', '{prev}', '{link}')"
        )
        prev = link
    execute(url, *statements)


def test_rows_from_before_keyed_chains_still_verify_and_bound_the_unkeyed_ones(
    env: str, tmp_path: Path
) -> None:
    """A store from before keyed chains, brought up to date by a kit: its old rows verify as
    an unkeyed prefix (the store recorded where they end), keyed rows follow; a rewrite of
    the whole chain without the key is named at the first row after the old ones."""
    legacy_store(env, 4)
    kit_writes(3)
    out = verify()
    assert out.exit_code == 0, out.output
    assert "audit chain intact: 7 events, head seq 7" in out.output
    assert "note: the first 4 events predate keyed chains" in out.output
    (tmp_path / "state" / "audit-head.json").unlink()
    assert verify().exit_code == 0  # the keyed rows after them pin the old ones
    recompute_from(env, 1, sha256_link)
    out = verify()
    assert out.exit_code == 1, out.output
    assert "audit chain broken at seq 5 (id " in out.output
    assert "the rows that predate keyed chains end at seq 4: written without the key" in (
        out.output
    )


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
