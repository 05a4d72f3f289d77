"""What an attacker (or a broken disk) leaves where `readykit audit verify|list|export` and the
service read: a row edited with sqlite3, a checkpoint or key file rewritten, a FIFO in their
place, rk_meta edited. Each is one line naming the bad seq or the file and a non-zero exit, never
a traceback or a hang; the commands that could hang run in a process of their own, under a
timeout."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.cli import cli
from support import kit_writes

ROWS = 8


@pytest.fixture
def db(state: Path) -> Path:
    """The SQLite file of the store, holding ROWS audit events written by a kit."""
    kit_writes(ROWS)
    return state.parent / "records.db"


def tamper(db: Path, sql: str, *params: Any) -> None:
    """What an attacker with the file does: sqlite3 on it, no readykit involved."""
    with sqlite3.connect(db) as conn:
        assert conn.execute(sql, params).rowcount == 1
    conn.close()


def invoke(*argv: str) -> Result:
    return CliRunner().invoke(cli, list(argv))


def said(result: Result, code: int) -> str:
    """The one line on stderr of a command that exited `code`, raised nothing."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # said, not raised
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def in_process(*argv: str) -> subprocess.CompletedProcess[str]:
    """`readykit ARGV` in a process of its own (environment inherited), killed if it hangs."""
    command = [sys.executable, "-m", "readykit", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ)


# --- a row's hash edited to what compare_digest refuses ---


@pytest.mark.parametrize("value", ["é" * 64, b"\x00" * 32], ids=["non-ascii-text", "blob"])
def test_a_hash_edited_to_non_ascii_text_or_a_blob_is_named_by_its_seq(
    value: str | bytes, db: Path
) -> None:
    tamper(db, "UPDATE rk_audit SET hash = ? WHERE seq = 3", value)
    line = said(invoke("audit", "verify"), 1)
    assert "audit chain broken at seq 3 (id " in line
    assert "content does not match its MAC (edited or recomputed)" in line


# --- the checkpoint: numbers and nesting json reads but a checkpoint cannot hold ---


HOSTILE_CHECKPOINTS = [
    (b'{"seq": 1e999, "hash": "' + b"a" * 64 + b'"}', "has no seq and hash"),
    (b"[" * 2040 + b"]" * 2040, "is not JSON"),  # past the recursion limit, under 4 KiB
    (b'{"seq": 1, "hash": "' + b"a" * 8000 + b'"}', "is larger than 4096 bytes"),
]


@pytest.mark.parametrize(("content", "what"), HOSTILE_CHECKPOINTS, ids=["1e999", "deep", "big"])
def test_verify_names_a_hostile_checkpoint_in_one_line(
    content: bytes, what: str, db: Path, state: Path
) -> None:
    checkpoint = state / "audit-head.json"
    checkpoint.write_bytes(content)
    line = said(invoke("audit", "verify"), 2)
    assert f"the checkpoint {checkpoint} {what}" in line


@pytest.mark.parametrize(("content", "what"), HOSTILE_CHECKPOINTS, ids=["1e999", "deep", "big"])
def test_the_service_replaces_a_hostile_checkpoint_and_goes_on_anchoring(
    content: bytes, what: str, db: Path, state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = state / "audit-head.json"
    checkpoint.write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="readykit.records"):
        kit_writes(2)
    assert json.loads(checkpoint.read_text())["seq"] == ROWS + 2
    (line,) = [r.getMessage() for r in caplog.records if str(checkpoint) in r.getMessage()]
    assert what in line
    assert f"replaced by the head {ROWS + 1}:" in line
    out = invoke("audit", "verify")
    assert out.exit_code == 0, out.output
    assert f"audit chain intact: {ROWS + 2} events" in out.output


# --- a FIFO in place of the checkpoint or the key file: refused, not waited on ---


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("audit-head.json", "the checkpoint {path} is not a regular file"),
        # the default key file, next to the spill file (read when no READYKIT_AUDIT_KEY)
        ("audit.key", "audit key file {path}: cannot read it (not a regular file)"),
    ],
)
def test_verify_refuses_a_fifo_in_place_of_the_checkpoint_or_key(
    db: Path, state: Path, monkeypatch: pytest.MonkeyPatch, name: str, said: str
) -> None:
    if name == "audit.key":
        monkeypatch.delenv("READYKIT_AUDIT_KEY")
    path = state / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    done = in_process("audit", "verify")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert said.format(path=path) in done.stderr


def test_the_service_replaces_a_fifo_in_place_of_the_checkpoint(
    db: Path, state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = state / "audit-head.json"
    checkpoint.unlink()
    os.mkfifo(checkpoint)
    with caplog.at_level(logging.ERROR, logger="readykit.records"):
        kit_writes(1)  # a hang here is the test's timeout
    assert json.loads(checkpoint.read_text())["seq"] == ROWS + 1
    assert any("is not a regular file; replaced by the head" in m for m in caplog.messages)


def test_the_service_is_not_hung_by_fifos_beside_the_checkpoint(
    db: Path, state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = state / "audit-head.json"
    lock = state / "audit-head.json.lock"
    lock.unlink()
    os.mkfifo(lock)  # the lock: refused, said; nothing hangs
    with caplog.at_level(logging.ERROR, logger="readykit.records"):
        kit_writes(1)
    assert any(f"cannot write the audit checkpoint {checkpoint}" in m for m in caplog.messages)
    lock.unlink()
    os.mkfifo(state / "audit-head.json.tmp")  # the temporary file: replaced, not opened
    kit_writes(1)
    assert json.loads(checkpoint.read_text())["seq"] == ROWS + 2


# --- a key file that is not UTF-8 ---


def test_a_key_file_that_is_not_utf8_is_named(db: Path, state: Path) -> None:
    key = state / "other.key"
    key.write_bytes(b"\xff\xfe" + b"k" * 30)
    line = said(invoke("audit", "verify", "--key-file", str(key)), 2)
    assert f"cannot read the audit key: audit key file {key}: not UTF-8 text (byte 0)" in line


def test_the_service_refuses_to_start_with_a_key_file_that_is_not_utf8(tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    key.write_bytes(b"0123456789abcdef\xc3")
    settings = Settings(
        configure_logging=False,
        store_url=f"sqlite:///{tmp_path}/records.db",
        spill_path=str(tmp_path / "spill.jsonl"),
    )
    kit = ReadyKit(settings)  # kept, and named when the service starts (kit.wrap)
    assert kit.config_error is not None
    assert f"audit key file {key}: not UTF-8 text (byte 16)" in str(kit.config_error)


# --- audit list / export: a tampered row is named, the others still shown ---


def tamper_rows(db: Path) -> None:
    tamper(db, "UPDATE rk_audit SET details = 'not json {' WHERE seq = 3")
    tamper(db, "UPDATE rk_audit SET ts = 1e300 WHERE seq = 5")
    tamper(db, "UPDATE rk_audit SET actor = X'00ff' WHERE seq = 6")


@pytest.mark.parametrize(
    "argv",
    [["audit", "list"], ["audit", "export"], ["audit", "export", "--format", "csv"]],
    ids=["list", "jsonl", "csv"],
)
def test_list_and_export_name_unreadable_rows_and_still_show_the_others(
    argv: list[str], db: Path
) -> None:
    tamper_rows(db)
    out = invoke(*argv)
    line = said(out, 3)
    assert "audit event seq 3 cannot be read: its details are not JSON; 2 more (seq 5, 6)" in line
    assert f"the other {ROWS - 3} are" in line
    assert "readykit audit verify" in line
    shown = out.stdout.splitlines()
    if argv[-1] == "csv":
        shown = shown[1:]
    seqs = [int(json.loads(s)["seq"]) if s.startswith("{") else int(s.split(",")[0].split()[0])
            for s in shown]  # fmt: skip
    assert seqs == [1, 2, 4, 7, 8]


def test_a_ts_that_is_text_is_named(db: Path) -> None:
    tamper(db, "UPDATE rk_audit SET ts = 'yesterday' WHERE seq = 2")
    line = said(invoke("audit", "list"), 3)
    assert "audit event seq 2 cannot be read: its ts 'yesterday' is not a time" in line


# --- rk_meta edited: the schema version is not a number ---


@pytest.mark.parametrize(
    "argv", [["audit", "verify"], ["audit", "list"], ["apm", "list", "--kind", "stall"]]
)
def test_a_schema_version_that_is_not_a_number_is_named_by_the_cli(
    argv: list[str], db: Path
) -> None:
    tamper(db, "UPDATE rk_meta SET value = 'zz' WHERE key = 'schema_version'")
    line = said(invoke(*argv), 3)
    assert f"{db}: rk_meta holds schema_version 'zz', not a version number" in line


def test_the_service_refuses_to_start_on_a_schema_version_that_is_not_a_number(
    db: Path,
) -> None:
    tamper(db, "UPDATE rk_meta SET value = 'zz' WHERE key = 'schema_version'")
    kit = ReadyKit(Settings(configure_logging=False))
    with pytest.raises(ConfigurationError) as raised:
        asyncio.run(kit.startup())
    message = str(raised.value)
    assert f"{db}: rk_meta holds schema_version 'zz', not a version number" in message
    assert "\n" not in message
