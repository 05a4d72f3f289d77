"""Scratch space (decrypted plaintext) lives in a private directory of the user, never in the
repository, where anyone who can write to the repository could swap it for a symlink."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from readykit.backup.errors import ToolFailure
from readykit.backup.lock import private_scratch_parent

Run = Callable[..., Result]


@contextlib.contextmanager
def _hijacker(repo: Path, attacker: Path) -> Iterator[None]:
    """While the block runs, replace every new directory in `repo` by a symlink to `attacker`
    (what someone with write access to shared backup storage can do)."""
    known = {p.name for p in repo.iterdir()}
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for entry in os.scandir(repo):
                if entry.name in known or not entry.is_dir(follow_symlinks=False):
                    continue
                with contextlib.suppress(OSError):
                    shutil.rmtree(entry.path)
                    os.symlink(attacker, entry.path)
                known.add(entry.name)

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def test_verify_and_restore_write_no_plaintext_where_the_repository_can_redirect_it(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, tmp_path: Path
) -> None:
    made = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file)
    assert made.exit_code == 0, made.output
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    # Also planted ahead of time at the names older versions used.
    os.symlink(attacker, repo / ".scratch-planted")
    os.symlink(attacker, repo / ".tmp-planted")
    target = tmp_path / "restored.db"
    with _hijacker(repo, attacker):
        for _ in range(5):
            verified = run("verify", "--repo", repo, "--key-file", key_file)
            assert verified.exit_code == 0, verified.output
        restored = run("restore", "--repo", repo, "latest", "--to", f"sqlite:///{target}",
                       "--key-file", key_file, "--force")  # fmt: skip
        assert restored.exit_code == 0, restored.output
        again = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo,
                    "--key-file", key_file)  # fmt: skip
        assert again.exit_code == 0, again.output
    assert list(attacker.iterdir()) == []


def test_scratch_space_is_a_private_directory_outside_the_repository(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, scratch_parent: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    made = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file)
    assert made.exit_code == 0, made.output
    seen: list[tuple[Path, int, int]] = []
    from readykit.backup import sqlite

    original = sqlite.integrity_problems

    def spy(path: Path) -> list[str]:
        info = path.parent.stat()
        seen.append((path, stat.S_IMODE(info.st_mode), info.st_uid))
        return original(path)

    monkeypatch.setattr(sqlite, "integrity_problems", spy)
    verified = run("verify", "--repo", repo, "--key-file", key_file)
    assert verified.exit_code == 0, verified.output
    [(plain, mode, uid)] = seen
    assert plain.parent.parent == scratch_parent
    assert repo.resolve() not in plain.resolve().parents
    assert (mode, uid) == (0o700, os.geteuid())
    assert stat.S_IMODE(scratch_parent.stat().st_mode) == 0o700
    assert list(scratch_parent.iterdir()) == []  # removed on a normal exit


def test_a_scratch_parent_that_is_not_private_is_refused(scratch_parent: Path) -> None:
    elsewhere = scratch_parent.with_name("elsewhere")
    elsewhere.mkdir(mode=0o700)
    os.symlink(elsewhere, scratch_parent)
    with pytest.raises(ToolFailure, match="not a private"):
        private_scratch_parent()
    scratch_parent.unlink()
    scratch_parent.mkdir(mode=0o777)
    scratch_parent.chmod(0o777)
    with pytest.raises(ToolFailure, match="not a private"):
        private_scratch_parent()
