"""Fixtures for the backup tests: a key file, a small SQLite database, and the CLI runner."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from backup_processes import wait_until
from click.testing import CliRunner, Result

import readykit
from readykit.cli import cli

Run = Callable[..., Result]
Start = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture(autouse=True)
def scratch_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of this test's own, in this process and in the processes it starts,
    so scratch space (`<tmp>/readykit-backup-<uid>`) can be inspected."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def scratch_parent(scratch_tmp: Path) -> Path:
    """Where readykit puts its scratch directories during this test."""
    return scratch_tmp / f"readykit-backup-{os.geteuid()}"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "backup.key"
    path.write_text(secrets.token_urlsafe(32) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """A small SQLite database with two tables, an index and a view."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id),
                                 total REAL);
            CREATE INDEX orders_user ON orders(user_id);
            CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 50;
            """
        )
        conn.executemany("INSERT INTO users(name) VALUES (?)", [(f"u{i}",) for i in range(50)])
        conn.executemany(
            "INSERT INTO orders(user_id, total) VALUES (?, ?)",
            [(i % 50 + 1, i * 1.5) for i in range(200)],
        )
    conn.close()
    return path


@pytest.fixture
def run() -> Run:
    """Invoke `readykit backup ARGS…` in-process; returns click's Result."""

    def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
        argv: Sequence[str] = ["backup", *(str(a) for a in args)]
        return CliRunner().invoke(cli, argv, env=env or {"READYKIT_BACKUP_KEY": ""})

    return invoke


@pytest.fixture
def start_paused(tmp_path: Path) -> Iterator[Start]:
    """Start `readykit backup ARGS…` in a real process that stops inside `module:function`
    (`before` or `after` calling it); returns once it is there. Killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []
    src = str(Path(readykit.__file__).parents[1])

    def start(target: str, when: str, *args: str | Path) -> subprocess.Popen[bytes]:
        marker = tmp_path / f"paused-{len(procs)}"
        script = Path(__file__).with_name("paused_cli.py")
        argv = [sys.executable, str(script), str(marker), target, when, "backup"]
        env = {**os.environ, "PYTHONPATH": src, "READYKIT_BACKUP_KEY": ""}
        proc = subprocess.Popen(
            [*argv, *(str(a) for a in args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        procs.append(proc)
        wait_until(lambda: marker.exists() or proc.poll() is not None, f"{target} to be reached")
        if not marker.exists():
            _, err = proc.communicate()
            pytest.fail(f"readykit exited {proc.returncode} before {target}: {err.decode()}")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
