"""SQLite end to end: a live database under concurrent writes, verify, list, restore."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import Result

Run = Callable[..., Result]


@contextmanager
def _writer(path: Path, journal_mode: str) -> Iterator[list[int]]:
    """Commit pairs of rows (one per table) in a loop until the block exits."""
    with sqlite3.connect(path) as setup:
        setup.execute(f"PRAGMA journal_mode={journal_mode}")
        setup.execute("CREATE TABLE a (n INTEGER)")
        setup.execute("CREATE TABLE b (n INTEGER)")
        # ~4 MB of filler so the copy takes long enough for commits to land during it.
        setup.execute("CREATE TABLE filler (x BLOB)")
        setup.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 200,)] * 20_000)
    setup.close()
    commits = [0]
    stop = threading.Event()
    started = threading.Event()

    def loop() -> None:
        conn = sqlite3.connect(path, timeout=30)
        try:
            while not stop.is_set():
                with conn:
                    conn.execute("INSERT INTO a VALUES (?)", (commits[0],))
                    conn.execute("INSERT INTO b VALUES (?)", (commits[0],))
                commits[0] += 1
                if commits[0] == 200:
                    started.set()
        finally:
            conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    assert started.wait(60), "writer never got going"
    try:
        yield commits
    finally:
        stop.set()
        thread.join(60)


def _counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        a = conn.execute("SELECT count(*) FROM a").fetchone()[0]
        b = conn.execute("SELECT count(*) FROM b").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    return int(a), int(b)


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_backup_of_a_live_database_is_consistent(
    run: Run, tmp_path: Path, repo: Path, key_file: Path, journal_mode: str
) -> None:
    db = tmp_path / "live.db"
    with _writer(db, journal_mode) as commits:
        before = commits[0]
        created = run("create", "--db", f"sqlite:///{db}", "--repo", repo, "--key-file", key_file)
        after_backup = commits[0]
        verified = run("verify", "--repo", repo, "--key-file", key_file, "--json")
    assert created.exit_code == 0, created.output
    assert verified.exit_code == 0, verified.output
    assert after_backup >= before >= 200

    manifest = json.loads(next(repo.glob("*.json")).read_text())
    rows = manifest["tables"]
    # Each commit adds one row to a and one to b: a consistent copy has equal counts.
    assert rows["a"] == rows["b"] >= before

    target = tmp_path / "restored.db"
    restored = run(
        "restore", "--repo", repo, "latest", "--to", f"sqlite:///{target}", "--key-file", key_file
    )
    assert restored.exit_code == 0, restored.output
    assert _counts(target) == (rows["a"], rows["b"])
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]] == [
        "checksum",
        "decrypt",
        "restore",
        "row_counts",
        "schema",
    ]


def test_files_are_private_and_list_shows_the_verify_status(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path
) -> None:
    assert (
        run(
            "create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file
        ).exit_code
        == 0
    )
    listed = json.loads(run("list", "--repo", repo, "--json").stdout)
    assert [b["verify"] for b in listed] == ["never"]
    assert run("verify", "--repo", repo, listed[0]["id"], "--key-file", key_file).exit_code == 0
    listed = json.loads(run("list", "--repo", repo, "--json").stdout)
    assert listed[0]["verify"] == "passed"
    assert listed[0]["source"] == f"sqlite:///{sqlite_db}"
    for path in repo.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(repo.stat().st_mode) == 0o700
    text = run("list", "--repo", repo).stdout
    assert listed[0]["id"] in text
    assert "passed" in text


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_unencrypted_backups_with_other_compressions(
    run: Run, sqlite_db: Path, repo: Path, compression: str
) -> None:
    refused = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo)
    assert refused.exit_code == 2
    assert "no encryption key" in refused.stderr
    made = run(
        "create",
        "--db",
        f"sqlite:///{sqlite_db}",
        "--repo",
        repo,
        "--unencrypted",
        "--compression",
        compression,
    )
    assert made.exit_code == 0, made.output
    assert run("verify", "--repo", repo).exit_code == 0


def test_key_from_the_environment(run: Run, sqlite_db: Path, repo: Path) -> None:
    env = {"READYKIT_BACKUP_KEY": "e" * 44}
    assert run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, env=env).exit_code == 0
    assert run("verify", "--repo", repo, env=env).exit_code == 0


def test_restore_refuses_a_non_empty_target_without_force(
    run: Run, sqlite_db: Path, tmp_path: Path, repo: Path, key_file: Path
) -> None:
    assert (
        run(
            "create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file
        ).exit_code
        == 0
    )
    target = tmp_path / "busy.db"
    with sqlite3.connect(target) as conn:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE precious (x)")
        conn.execute("INSERT INTO precious VALUES (1)")
    conn.close()

    refused = run(
        "restore", "--repo", repo, "latest", "--to", f"sqlite:///{target}", "--key-file", key_file
    )
    assert refused.exit_code == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "not empty" in refused.stderr
    assert "--force" in refused.stderr
    check = sqlite3.connect(target)
    assert check.execute("SELECT count(*) FROM precious").fetchone()[0] == 1
    check.close()

    forced = run(
        "restore",
        "--repo",
        repo,
        "latest",
        "--to",
        f"sqlite:///{target}",
        "--key-file",
        key_file,
        "--force",
    )
    assert forced.exit_code == 0, forced.output
    conn = sqlite3.connect(target)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"users", "orders"}
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 200
    conn.close()
    assert not Path(f"{target}-wal").exists() or Path(f"{target}-wal").stat().st_size == 0
    assert [p.name for p in tmp_path.iterdir() if ".rk-restore-" in p.name] == []


def test_missing_sqlite_file_is_a_tool_failure(run: Run, tmp_path: Path, repo: Path) -> None:
    result = run(
        "create", "--db", f"sqlite:///{tmp_path / 'nope.db'}", "--repo", repo, "--unencrypted"
    )
    assert result.exit_code == 3
    assert "no such file" in result.stderr
    assert not (tmp_path / "nope.db").exists()
