"""Files an attacker (or a broken disk) leaves in a repository where readykit reads: each gets
one line naming the file and a non-zero exit, never a traceback, a hang or memory filled. The
commands that could hang run in a real process under a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

Run = Callable[..., Result]
NEWER = "29991231T235959Z-000000"  # sorts after every real backup: the newest


def _create(run: Run, db: Path, repo: Path, *extra: str | Path) -> str:
    result = run("create", "--db", f"sqlite:///{db}", "--repo", repo, *extra)
    assert result.exit_code == 0, result.output
    return result.stdout.split()[0]


def _one_line(stderr: str) -> str:
    assert stderr.startswith("Error: "), stderr
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    return stderr


def _process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`readykit backup ARGS…` in a process of its own, killed if it hangs."""
    argv = [sys.executable, "-m", "readykit", "backup", *(str(a) for a in args)]
    env = {**os.environ, "READYKIT_BACKUP_KEY": ""}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def _read_back(
    command: str, repo: Path, key_file: Path, target: Path
) -> subprocess.CompletedProcess[str]:
    """`verify`, or `restore latest` into `target`, in a process of its own."""
    to = ["latest", "--to", f"sqlite:///{target}"] if command == "restore" else []
    return _process(command, "--repo", repo, *to, "--key-file", key_file)


def test_a_manifest_nested_deeper_than_the_parser_goes_is_unreadable(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path
) -> None:
    _create(run, sqlite_db, repo, "--key-file", key_file)
    planted = repo / f"{NEWER}.json"
    planted.write_text("[" * 200_000)
    listed = run("list", "--repo", repo)  # list warns and goes on
    assert "Traceback" not in listed.output
    assert f"{planted}: unreadable manifest" in listed.stderr
    for args in (["verify"], ["restore", "latest", "--to", "sqlite:///x.db"]):
        result = run(args[0], "--repo", repo, *args[1:], "--key-file", key_file)
        assert result.exit_code == 1
        assert _one_line(result.stderr).startswith(f"Error: {planted}: unreadable manifest")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_manifest_that_is_no_regular_file_is_refused_without_reading_it(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, kind: str
) -> None:
    _create(run, sqlite_db, repo, "--key-file", key_file)
    planted = repo / f"{NEWER}.json"
    if kind == "fifo":
        os.mkfifo(planted)
    else:
        planted.symlink_to("/dev/zero")
    done = _process("verify", "--repo", repo, "--key-file", key_file)
    assert done.returncode == 1
    assert _one_line(done.stderr).startswith(f"Error: {planted}: unreadable manifest")


@pytest.mark.parametrize("command", ["verify", "restore"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_data_file_that_is_no_regular_file_is_refused_without_reading_it(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, tmp_path: Path, kind: str, command: str
) -> None:
    """A FIFO would hang the read (verify holding the repository lock), /dev/zero never end it."""
    data = repo / f"{_create(run, sqlite_db, repo, '--key-file', key_file)}.rkb"
    data.unlink()
    if kind == "fifo":
        os.mkfifo(data)
    else:
        data.symlink_to("/dev/zero")
    target = tmp_path / "restored.db"
    done = _read_back(command, repo, key_file, target)
    assert done.returncode == 1, done.stderr
    line = _one_line(done.stderr)
    assert f"{data}: " in line
    assert "checksum" in line
    assert "not a regular file" in line
    assert not target.exists()
    if command == "verify":  # the lock went with the process: the next run is not refused
        assert _process("verify", "--repo", repo, "--key-file", key_file).returncode == 1


@pytest.mark.parametrize("command", ["verify", "restore"])
def test_a_data_file_larger_than_its_manifest_says_is_not_read_to_its_end(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, tmp_path: Path, command: str
) -> None:
    """Grown to a (sparse) terabyte: read on, the command would run for hours."""
    backup_id = _create(run, sqlite_db, repo, "--key-file", key_file)
    data = repo / f"{backup_id}.rkb"
    size = data.stat().st_size
    os.truncate(data, 1 << 40)
    target = tmp_path / "restored.db"
    done = _read_back(command, repo, key_file, target)
    assert done.returncode == 1, done.stderr
    line = _one_line(done.stderr)
    assert f"{data}: " in line
    assert f"larger than the {size} bytes the manifest says" in line
    assert not target.exists()


def test_a_lock_that_is_a_fifo_is_refused_not_waited_on(
    sqlite_db: Path, repo: Path, key_file: Path
) -> None:
    repo.mkdir(mode=0o700)
    os.mkfifo(repo / "lock")
    done = _process("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo,
                    "--key-file", key_file)  # fmt: skip
    assert done.returncode == 3
    assert _one_line(done.stderr).endswith("lock is not a regular file: remove it\n")


def test_a_scratch_owner_that_is_a_fifo_is_left_alone_not_waited_on(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path
) -> None:
    _create(run, sqlite_db, repo, "--key-file", key_file)
    (repo / ".scratch-planted").mkdir()
    os.mkfifo(repo / ".scratch-planted" / ".owner")
    done = _process("verify", "--repo", repo, "--key-file", key_file)
    assert done.returncode == 0, done.stderr
    assert (repo / ".scratch-planted").exists()  # not ours to delete


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("compression", "bogus", "compression 'bogus' is not one of"),
        ("tables", {"users": "many"}, "tables is not a map"),
        ("tables", [1], "tables is not a map"),
        ("created_at", "2020-01-01T00:00:00", "is not a time with its zone"),
        ("source", {"kind": "sqlite"}, "source url is not text"),
        ("verification", {"status": {"x": 1}, "at": "2020-01-01T00:00:00+00:00"}, "status"),
        ("verification", {"status": "passed", "at": "garbage"}, "is not a time with its zone"),
        # `list` formatted it as a float: OverflowError
        pytest.param("size", 10**400, "size is not a byte count", id="size-10**400"),
        ("size", -1, "size is not a byte count"),
        ("raw_size", 2**63, "raw_size is not a byte count"),
        ("size", 1.5, "size is not a byte count"),
    ],
)
def test_a_manifest_field_every_command_reads_is_checked_when_it_is_read(
    run: Run, sqlite_db: Path, repo: Path, field: str, value: Any, says: str
) -> None:
    """Without a key nothing is authenticated, and `verification` never is (each verify
    rewrites it): a field a command formats, compares or decompresses with is checked."""
    backup_id = _create(run, sqlite_db, repo, "--unencrypted")
    path = repo / f"{backup_id}.json"
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    for args in (["verify", backup_id], ["restore", backup_id, "--to", "sqlite:///x.db"]):
        result = run(args[0], "--repo", repo, *args[1:])
        assert result.exit_code == 1, result.output
        line = _one_line(result.stderr)
        assert line.startswith(f"Error: {path}: unreadable manifest")
        assert says in line
    listed = run("list", "--repo", repo)
    assert listed.exit_code == 0, listed.output
    assert "Traceback" not in listed.output
    assert says in listed.stderr
