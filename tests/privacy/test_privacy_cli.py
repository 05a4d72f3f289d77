"""`readykit privacy replay` and the hint `readykit backup restore` gives after erasures."""

from __future__ import annotations

import asyncio
import importlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from readykit.cli import cli
from readykit.privacy.cli import restore_hint
from readykit.privacy.jobs import ERASURE
from readykit.privacy.keys import Keys, load_or_create_key
from readykit.records import store_from_url


def seed_erasures(url: str, secret: str, subjects: list[str], ts: float) -> None:
    keys = Keys(load_or_create_key(secret, Path("unused")))

    async def seed() -> None:
        store = store_from_url(url)
        await store.open()
        for i, subject in enumerate(subjects):
            body = {"ts": ts, "subject_hash": keys.subject_hash(subject),
                    "subject": keys.seal(subject), "report": {}}  # fmt: skip
            await store.put_doc(ERASURE, f"e{i}", body, key=body["subject_hash"], ts=ts)
        await store.close()

    asyncio.run(seed())


def test_replay_runs_the_apps_erasers_for_every_logged_erasure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    monkeypatch.setenv("READYKIT_PRIVACY_SECRET", "s3cret-for-tests")
    monkeypatch.setenv("READYKIT_STORE_URL", url)
    monkeypatch.setenv("READYKIT_CONFIGURE_LOGGING", "false")
    seed_erasures(url, "s3cret-for-tests", ["user:1", "user:2"], 1_800_000_000.0)
    app = importlib.reload(importlib.import_module("apps.privacy_app"))
    out = CliRunner().invoke(cli, ["privacy", "replay", "--app", "apps.privacy_app:kit"])
    assert out.exit_code == 0, out.output
    assert "replayed 2 erasure(s) through 1 eraser(s)" in out.output
    assert app.erased == ["user:1", "user:2"]


def test_replay_with_an_app_that_is_not_a_kit_is_one_line() -> None:
    out = CliRunner().invoke(cli, ["privacy", "replay", "--app", "json:dumps"])
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == [
        "Error: --app 'json:dumps' is not a ReadyKit (nor an app holding one)"
    ]


def test_restore_says_when_erasures_are_newer_than_the_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    monkeypatch.setenv("READYKIT_STORE_URL", url)
    seed_erasures(url, "privacy-secret-16", ["user:1"], 1_800_000_000.0)
    before = datetime.fromtimestamp(1_799_999_000, UTC)
    after = datetime.fromtimestamp(1_800_000_500, UTC)
    hint = restore_hint(before)
    assert hint is not None
    assert "1 erasure(s) were recorded after this backup" in hint
    assert "readykit privacy replay" in hint
    assert restore_hint(after) is None


def test_backup_restore_prints_the_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    repo = tmp_path / "repo"
    runner = CliRunner()
    made = runner.invoke(
        cli, ["backup", "create", "--db", f"sqlite:///{db}", "--repo", str(repo), "--unencrypted"]
    )
    assert made.exit_code == 0, made.output
    url = f"sqlite:///{tmp_path}/store.db"
    monkeypatch.setenv("READYKIT_STORE_URL", url)
    seed_erasures(url, "privacy-secret-16", ["user:1"], 4_000_000_000.0)  # long after the backup
    target = tmp_path / "restored.db"
    out = runner.invoke(
        cli, ["backup", "restore", "--repo", str(repo), "latest", "--to", f"sqlite:///{target}"]
    )
    assert out.exit_code == 0, out.output
    assert "readykit privacy replay" in out.output
