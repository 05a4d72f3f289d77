"""Bad input: corrupt, truncated and tampered backups, wrong keys, unknown ids, failed writes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from click.testing import Result

from readykit.backup import datafile
from readykit.backup.create import create_backup
from readykit.backup.repo import Repository
from readykit.backup.source import parse_source
from support import need

Run = Callable[..., Result]


@pytest.fixture
def made(run: Run, sqlite_db: Path, repo: Path, key_file: Path) -> str:
    """One encrypted backup of `sqlite_db` in `repo`; returns its id."""
    result = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file)
    assert result.exit_code == 0, result.output
    return result.stdout.split()[0]


def _data(repo: Path, backup_id: str) -> Path:
    return repo / f"{backup_id}.rkb"


def _verify(run: Run, repo: Path, key_file: Path) -> tuple[Result, dict[str, object]]:
    result = run("verify", "--repo", repo, "--key-file", key_file, "--json")
    return result, json.loads(result.stdout)


def test_flipped_byte_fails_at_the_checksum_step(
    run: Run, repo: Path, key_file: Path, made: str
) -> None:
    path = _data(repo, made)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    result, report = _verify(run, repo, key_file)
    assert result.exit_code == 1
    assert report["failed_step"] == "checksum"
    assert "verify failed at step 'checksum'" in result.stderr
    listed = json.loads(run("list", "--repo", repo, "--json").stdout)
    assert listed[0]["verify"] == "failed"


def test_truncated_file_fails_at_the_checksum_step(
    run: Run, repo: Path, key_file: Path, made: str
) -> None:
    path = _data(repo, made)
    path.write_bytes(path.read_bytes()[:-100])
    result, report = _verify(run, repo, key_file)
    assert result.exit_code == 1
    assert report["failed_step"] == "checksum"
    steps = {s["name"]: s["status"] for s in report["steps"]}  # type: ignore[attr-defined]
    assert steps == {
        "checksum": "failed",
        "decrypt": "skipped",
        "restore": "skipped",
        "row_counts": "skipped",
        "schema": "skipped",
    }


def test_tampering_that_also_rewrites_the_manifest_fails_authentication(
    run: Run, repo: Path, key_file: Path, made: str
) -> None:
    path = _data(repo, made)
    blob = bytearray(path.read_bytes())
    blob[-20] ^= 0x01
    path.write_bytes(bytes(blob))
    manifest_path = repo / f"{made}.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(blob).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    result = run("verify", "--repo", repo, "--key-file", key_file, "--json")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {manifest_path}: manifest authentication failed (HMAC-SHA256): modified, "
        "or not written with this repository's key\n"
    )


def test_row_count_mismatch_fails_the_drill(run: Run, sqlite_db: Path, repo: Path) -> None:
    # Without a key nothing is authenticated: the drill is what catches a wrong manifest.
    made = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--unencrypted")
    assert made.exit_code == 0, made.output
    backup_id = made.stdout.split()[0]
    manifest_path = repo / f"{backup_id}.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["orders"] = 199
    manifest_path.write_text(json.dumps(manifest))
    result = run("verify", "--repo", repo, backup_id, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["failed_step"] == "row_counts"
    assert "orders: 199 → 200" in result.stderr


def test_wrong_key_is_a_clear_one_line_error(
    run: Run, repo: Path, tmp_path: Path, made: str
) -> None:
    other = tmp_path / "other.key"
    other.write_text("z" * 44)
    for args in (
        ["verify", "--repo", repo],
        ["restore", "--repo", repo, made, "--to", f"sqlite:///{tmp_path / 'x.db'}"],
    ):
        result = run(*args, "--key-file", other)
        assert result.exit_code == 2
        assert "wrong key" in result.stderr
        assert result.stderr.strip().count("\n") == 0
    listed = json.loads(run("list", "--repo", repo, "--json").stdout)
    assert listed[0]["verify"] == "never"  # a wrong key says nothing about the backup


def test_encrypted_backup_without_a_key(run: Run, repo: Path, made: str) -> None:
    result = run("verify", "--repo", repo)
    assert result.exit_code == 2
    assert "is encrypted" in result.stderr


def test_unknown_id_is_one_line_exit_2(run: Run, repo: Path, key_file: Path, made: str) -> None:
    for args in (
        ["verify", "--repo", repo, "nope"],
        ["restore", "--repo", repo, "nope", "--to", "sqlite:///x.db"],
    ):
        result = run(*args, "--key-file", key_file)
        assert result.exit_code == 2
        assert result.stderr == (
            f"Error: no backup with id 'nope' in {repo.absolute()} "
            "(ids look like 20240601T030000Z-3fa2c1)\n"
        )


def test_missing_repository_is_a_user_error(run: Run, tmp_path: Path) -> None:
    result = run("list", "--repo", tmp_path / "nothing")
    assert result.exit_code == 2
    assert "no backup repository" in result.stderr


def test_unreachable_postgres_is_one_line_exit_3(run: Run, repo: Path, key_file: Path) -> None:
    url = "postgresql://postgres:s3cret@127.0.0.1:1/app"
    result = run("create", "--db", url, "--repo", repo, "--key-file", key_file)
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "Error: cannot connect to postgresql://postgres@127.0.0.1:1/app"
    )
    assert result.stderr.strip().count("\n") == 0
    assert "s3cret" not in result.output
    assert json.loads(run("list", "--repo", repo, "--json").stdout) == []


def test_disk_full_mid_write_leaves_no_visible_backup(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pack = datafile.pack

    def failing_pack(blocks, out: BinaryIO, compression: str, key):  # type: ignore[no-untyped-def]
        class Full:
            def __init__(self) -> None:
                self.written = 0

            def write(self, data: bytes) -> int:
                room = 100 - self.written
                if len(data) > room:  # a partial write, then the disk is full
                    out.write(data[:room])
                    raise OSError(errno.ENOSPC, "No space left on device")
                self.written += len(data)
                return out.write(data)

        return real_pack(blocks, Full(), compression, key)  # type: ignore[arg-type]

    monkeypatch.setattr("readykit.backup.create.pack", failing_pack)
    result = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file)
    assert result.exit_code == 3
    assert "No space left on device" in result.stderr
    # no temp file, no data file, no manifest: only the repository's config and lock file
    assert sorted(p.name for p in repo.iterdir()) == ["config", "lock"]
    assert json.loads(run("list", "--repo", repo, "--json").stdout) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs, unmounted afterwards; skipped where it cannot be mounted (not root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    argv = ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)]
    if shutil.which("mount") is None or subprocess.run(argv, capture_output=True).returncode:
        need("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _fill(disk: Path) -> None:
    """Fill `disk` up: the next write fails with ENOSPC."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, bytes(2 << 20))  # more than the disk holds: written short, filling it
        with pytest.raises(OSError, match="No space left on device"):
            os.write(fd, bytes(4096))
    finally:
        os.close(fd)


@pytest.mark.parametrize("command", ["create", "verify"])
def test_a_full_disk_at_the_lock_is_one_line_exit_3(
    run: Run, sqlite_db: Path, key_file: Path, small_disk: Path, command: str
) -> None:
    repo = small_disk / "repo"
    create = ["create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file]
    if command == "verify":
        assert run(*create).exit_code == 0
    else:
        repo.mkdir()
    _fill(small_disk)
    result = run(*create) if command == "create" else run("verify", "--repo", repo,
                                                          "--key-file", key_file)  # fmt: skip
    assert result.exit_code == 3, result.output
    assert isinstance(result.exception, SystemExit)  # not a crash: translated at the root
    assert result.stderr == (
        f"Error: cannot write lock file {repo}/lock: No space left on device (ENOSPC)\n"
    )


def test_crash_between_data_and_manifest_leaves_no_listed_backup(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(self: object, manifest: object) -> None:
        raise KeyboardInterrupt  # stands in for SIGKILL after the data file was renamed

    monkeypatch.setattr("readykit.backup.repo.Repository.write_manifest", killed)
    repository = Repository.open(repo, create=True)
    source = parse_source(f"sqlite:///{sqlite_db}")
    with pytest.raises(KeyboardInterrupt):
        create_backup(repository, source, "zstd", None)
    monkeypatch.undo()
    assert json.loads(run("list", "--repo", repo, "--json").stdout) == []
    orphan = next(repo.glob("*.rkb")).name
    assert Repository.open(repo).remove_stale(now=4e9) == [orphan]
    assert sorted(p.name for p in repo.iterdir()) == ["config"]


def test_textfile_metrics_after_create(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, tmp_path: Path
) -> None:
    prom = tmp_path / "metrics" / "backup.prom"
    prom.parent.mkdir()
    result = run(
        "create",
        "--db",
        f"sqlite:///{sqlite_db}",
        "--repo",
        repo,
        "--key-file",
        key_file,
        "--textfile",
        prom,
    )
    assert result.exit_code == 0, result.output
    text = prom.read_text()
    assert "# TYPE readykit_backup_last_success_timestamp_seconds gauge" in text
    size = next(repo.glob("*.rkb")).stat().st_size
    assert f'readykit_backup_last_size_bytes{{repo="{repo.absolute()}"}} {float(size)!r}' in text
    assert [p.name for p in prom.parent.iterdir()] == ["backup.prom"]


def test_backup_is_a_verb_of_readykit(run: Run) -> None:
    from click.testing import CliRunner

    from readykit.cli import cli

    assert "backup" in CliRunner().invoke(cli, ["--help"]).output
    result = run("--help")
    assert result.exit_code == 0
    for verb in ("create", "list", "verify", "restore", "prune"):
        assert verb in result.output


def test_zstd_without_its_extra_is_refused_before_the_repository_is_made(
    run: Run, sqlite_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `zstandard` a zstd backup failed after creating an empty repository."""
    monkeypatch.setitem(sys.modules, "zstandard", None)  # not installed
    repo = tmp_path / "new-repo"
    result = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo,
                 "--compression", "zstd", "--unencrypted")  # fmt: skip
    assert result.exit_code == 2
    assert "readykit[backup]" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not repo.exists()
