"""The checkpoint of the audit chain's head: a corrupt one is replaced (and said once), never
left to stop anchoring; it is on disk before it replaces the old one; verify names a corrupt
one in one line."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from readykit.cli import cli
from readykit.records.anchor import write_checkpoint
from readykit.records.store import Head
from support import kit_writes


@pytest.mark.parametrize("corrupt", [b"", b'{"seq": 5, "ha', b"[5]", b"\xff\xfe"])
def test_a_corrupt_checkpoint_is_replaced_by_the_head_and_said_once(
    corrupt: bytes, state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = state / "audit-head.json"
    kit_writes(5)
    assert json.loads(checkpoint.read_text())["seq"] == 5
    checkpoint.write_bytes(corrupt)  # a torn write, or someone emptied it
    with caplog.at_level(logging.ERROR, logger="readykit.records"):
        kit_writes(5)
    assert json.loads(checkpoint.read_text())["seq"] == 10
    said = [r.getMessage() for r in caplog.records if str(checkpoint) in r.getMessage()]
    assert len(said) == 1, said
    assert "replaced by the head 6:" in said[0]
    out = CliRunner().invoke(cli, ["audit", "verify"])
    assert out.exit_code == 0, out.output
    assert "audit chain intact: 10 events, head seq 10" in out.output


def test_the_checkpoint_is_on_disk_before_it_replaces_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tmp_path / "audit-head.json"
    write_checkpoint(checkpoint, Head(1, "a" * 64), "k")
    steps: list[str] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        steps.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")
        fsync(fd)

    def recording_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        steps.append(f"replace {src} -> {dst}")
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    assert write_checkpoint(checkpoint, Head(2, "b" * 64), "k") == Head(2, "b" * 64)
    tmp = checkpoint.with_name(checkpoint.name + ".tmp")
    assert steps == [f"fsync {tmp}", f"replace {tmp} -> {checkpoint}", f"fsync {tmp_path}"]
    assert json.loads(checkpoint.read_text())["seq"] == 2


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "is not JSON"),
        (b'{"seq": 20, "hash": "ab', "is not JSON"),
        (b"\xff\xfe", "is not JSON"),
        (b"[20]", "has no seq and hash"),
        (b'"20:abc"', "has no seq and hash"),
        (b'{"seq": 20}', "has no seq and hash"),
    ],
)
def test_verify_names_a_corrupt_checkpoint_in_one_line(
    content: bytes, said: str, state: Path
) -> None:
    kit_writes(3)
    checkpoint = state / "audit-head.json"
    checkpoint.write_bytes(content)
    out = CliRunner().invoke(cli, ["audit", "verify"])
    assert out.exit_code == 2, out.output
    assert isinstance(out.exception, SystemExit)  # said, not raised
    assert len(out.output.strip().splitlines()) == 1, out.output
    assert f"the checkpoint {checkpoint} {said}" in out.output
    assert "cut short or edited" in out.output
