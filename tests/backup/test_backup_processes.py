"""Real `readykit backup` processes: the repository lock between concurrent runs, and a verify
killed with SIGKILL while it holds its plaintext scratch copy."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from backup_processes import kill9
from click.testing import Result

Run = Callable[..., Result]
Start = Callable[..., subprocess.Popen[bytes]]


def test_a_second_create_prune_or_verify_fails_fast_while_a_create_holds_the_lock(
    run: Run, start_paused: Start, sqlite_db: Path, repo: Path, key_file: Path
) -> None:
    db = f"sqlite:///{sqlite_db}"
    holder = start_paused(
        "readykit.backup.create:pack",
        "before",
        "create",
        "--db",
        db,
        "--repo",
        repo,
        "--key-file",
        key_file,
    )
    pid = holder.pid
    for args in (
        ["create", "--db", db, "--repo", repo, "--key-file", key_file],
        ["prune", "--repo", repo, "--keep-last", "1"],
        ["verify", "--repo", repo, "--key-file", key_file],
    ):
        result = run(*args)
        assert result.exit_code == 3, result.output
        holder_line = f"is locked by readykit backup create (pid {pid} on "
        assert result.stderr.startswith(f"Error: repository {repo.absolute()} {holder_line}")
        assert result.stderr.endswith("try again when it has finished\n")
        assert result.stderr.count("\n") == 1
    assert run("list", "--repo", repo).exit_code == 0  # readers take no lock

    kill9(holder)
    # The kernel released the lock with the process: nothing stale to clear by hand.
    result = run("create", "--db", db, "--repo", repo, "--key-file", key_file)
    assert result.exit_code == 0, result.output
    assert len(json.loads(run("list", "--repo", repo, "--json").stdout)) == 1


def test_a_sigkilled_sqlite_verify_leaves_no_plaintext_behind(
    run: Run,
    start_paused: Start,
    sqlite_db: Path,
    repo: Path,
    key_file: Path,
    scratch_parent: Path,
) -> None:
    made = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file)
    assert made.exit_code == 0, made.output
    verifying = start_paused(
        "readykit.backup.sqlite:integrity_problems",
        "before",
        "verify",
        "--repo",
        repo,
        "--key-file",
        key_file,
    )
    assert not [p for p in repo.iterdir() if p.name.startswith((".scratch-", ".tmp-"))]
    scratch = [p for p in scratch_parent.iterdir() if p.name.startswith(".scratch-")]
    assert len(scratch) == 1
    plain = scratch[0] / "restored"
    assert plain.read_bytes().startswith(b"SQLite format 3")  # decrypted data on disk

    kill9(verifying)
    assert plain.exists()  # nobody cleaned up after the killed process...

    result = run("verify", "--repo", repo, "--key-file", key_file)
    assert result.exit_code == 0, result.output
    # ...until the next run, which removed it because its owner's lock was free.
    assert [p.name for p in scratch_parent.iterdir()] == []
    assert [p.name for p in repo.iterdir() if p.name.startswith((".scratch-", ".tmp-"))] == []
