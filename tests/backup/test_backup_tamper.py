"""Attacks on a repository, each its own test: a planted or downgraded backup, a tampered
manifest or config, an older data file or backup put in place of the newest, an unreadable
newest manifest, ids that leave the repository. Each must fail with one line naming the file and
the check, a non-zero exit, and nothing restored."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from readykit.backup import drill, restore
from readykit.backup.create import create_backup
from readykit.backup.crypto import load_key
from readykit.backup.manifest import Manifest
from readykit.backup.repo import Repository
from readykit.backup.source import parse_source

Run = Callable[..., Result]
PLANTED = "29991231T235959Z-000000"


def _create(run: Run, db: Path, repo: Path, *extra: str | Path) -> str:
    result = run("create", "--db", f"sqlite:///{db}", "--repo", repo, *extra)
    assert result.exit_code == 0, result.output
    return result.stdout.split()[0]


def _manifest(repo: Path, backup_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / f"{backup_id}.json").read_text())
    return data


def _save(repo: Path, name: str, data: dict[str, Any]) -> Path:
    path = repo / name
    path.write_text(json.dumps(data, indent=2))
    return path


def _one_line(result: Result) -> str:
    assert result.stderr.startswith("Error: "), result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    return result.stderr


def _restore(run: Run, repo: Path, ref: str, target: Path, *extra: str | Path) -> Result:
    return run("restore", "--repo", repo, ref, "--to", f"sqlite:///{target}", *extra)


@pytest.fixture
def two(run: Run, sqlite_db: Path, repo: Path, key_file: Path) -> tuple[str, str]:
    """Two encrypted backups of `sqlite_db`; the second after one more user was added."""
    first = _create(run, sqlite_db, repo, "--key-file", key_file)
    with sqlite3.connect(sqlite_db) as conn:
        conn.execute("INSERT INTO users(name) VALUES ('newest')")
    conn.close()
    second = _create(run, sqlite_db, repo, "--key-file", key_file)
    return first, second


def _plant_plaintext(repo: Path, tmp_path: Path, real_id: str) -> Path:
    """What an attacker without the key can do: an unencrypted backup of their own database,
    with a manifest that says `"encryption": null` and claims to follow the newest backup."""
    evil = tmp_path / "evil.db"
    with sqlite3.connect(evil) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users(name) VALUES ('mallory')")
    conn.close()
    blob = evil.read_bytes()
    (repo / f"{PLANTED}.rkb").write_bytes(blob)
    real = _manifest(repo, real_id)
    planted = real | {
        "id": PLANTED,
        "data_file": f"{PLANTED}.rkb",
        "created_at": "2999-12-31T23:59:59+00:00",
        "size": len(blob),
        "raw_size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "compression": "none",
        "encryption": None,
        "tables": {"users": 1},
        "sequence": real["sequence"] + 1,
        "previous": real["mac"],
        "mac": None,
        "verification": None,
    }
    return _save(repo, f"{PLANTED}.json", planted)


def test_manifests_are_authenticated_and_chained(
    run: Run, repo: Path, two: tuple[str, str]
) -> None:
    first, second = (_manifest(repo, i) for i in two)
    config = json.loads((repo / "config").read_text())
    assert config["encrypted"] is True
    assert len(config["mac"]) == 64
    assert (first["sequence"], second["sequence"]) == (1, 2)
    assert first["previous"] is None
    assert second["previous"] == first["mac"]
    assert first["repository"] == second["repository"] == config["id"]
    assert config["head"] == {"sequence": 2, "id": two[1], "link": second["mac"]}


def test_planted_plaintext_backup_is_refused_when_a_key_is_given(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    planted = _plant_plaintext(repo, tmp_path, two[1])
    target = tmp_path / "restored.db"
    for ref in ("latest", PLANTED):
        line = _one_line(_restore(run, repo, ref, target, "--key-file", key_file))
        assert str(planted) in line
        assert "manifest authentication failed" in line
        assert not target.exists()
    verified = run("verify", "--repo", repo, PLANTED, "--key-file", key_file)
    assert verified.exit_code == 1
    assert "it has no MAC" in _one_line(verified)


def test_downgraded_config_is_refused_when_a_key_is_given(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    _plant_plaintext(repo, tmp_path, two[1])
    config = json.loads((repo / "config").read_text())
    config |= {"encrypted": False, "key_id": None, "mac": None}
    config["head"] = {"sequence": 3, "id": PLANTED, "link": "0" * 64}
    config_path = _save(repo, "config", config)
    target = tmp_path / "restored.db"
    result = _restore(run, repo, "latest", target, "--key-file", key_file)
    assert result.exit_code == 1
    line = _one_line(result)
    assert line.startswith(f"Error: {config_path}: the repository has no key")
    assert "refusing a possible downgrade" in line
    assert not target.exists()


def test_downgraded_config_is_noticed_even_without_the_key(
    run: Run, repo: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    planted = _plant_plaintext(repo, tmp_path, two[1])
    config = json.loads((repo / "config").read_text())
    config |= {"encrypted": False, "key_id": None, "mac": None}
    link = Manifest.from_json(planted.read_bytes()).link  # what a careful attacker writes
    config["head"] = {"sequence": 3, "id": PLANTED, "link": link}
    _save(repo, "config", config)
    target = tmp_path / "restored.db"
    result = _restore(run, repo, "latest", target)
    assert result.exit_code == 1
    # The genuine backups still carry MACs: the config cannot have been made without a key.
    assert "carries a MAC but the repository config says unencrypted, no key" in _one_line(result)
    assert not target.exists()


def test_tampered_manifest_fails_naming_the_file_and_nothing_is_restored(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    manifest = _manifest(repo, two[1])
    manifest["tables"]["users"] = 1_000
    path = _save(repo, f"{two[1]}.json", manifest)
    expected = (
        f"Error: {path}: manifest authentication failed (HMAC-SHA256): modified, "
        "or not written with this repository's key\n"
    )
    target = tmp_path / "restored.db"
    for args in (
        ["verify", "--repo", repo, "--key-file", key_file],
        [
            "restore",
            "--repo",
            repo,
            "latest",
            "--to",
            f"sqlite:///{target}",
            "--key-file",
            key_file,
        ],
    ):
        result = run(*args)
        assert result.exit_code == 1
        assert result.stderr == expected
    assert not target.exists()


def test_tampered_config_fails_authentication(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    config = json.loads((repo / "config").read_text())
    first = _manifest(repo, two[0])
    config["head"] = {"sequence": 1, "id": two[0], "link": first["mac"]}  # roll back the head
    path = _save(repo, "config", config)
    target = tmp_path / "restored.db"
    result = _restore(run, repo, "latest", target, "--key-file", key_file)
    assert result.exit_code == 1
    assert _one_line(result) == (
        f"Error: {path}: repository config failed authentication (HMAC-SHA256): "
        "modified or replaced\n"
    )
    assert not target.exists()


def test_older_data_file_copied_over_the_newest_fails_the_checksum(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    newest = repo / f"{two[1]}.rkb"
    shutil.copyfile(repo / f"{two[0]}.rkb", newest)
    verified = run("verify", "--repo", repo, "--key-file", key_file)
    assert verified.exit_code == 1
    assert f"verify failed at step 'checksum': {newest}: " in _one_line(verified)
    target = tmp_path / "restored.db"
    restored = _restore(run, repo, "latest", target, "--key-file", key_file)
    assert restored.exit_code == 1
    assert _one_line(restored).startswith(f"Error: {newest}: checksum failed")
    assert not target.exists()


def test_older_data_file_with_its_checksum_fixed_fails_authentication(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    old = _manifest(repo, two[0])
    shutil.copyfile(repo / f"{two[0]}.rkb", repo / f"{two[1]}.rkb")
    newest = _manifest(repo, two[1]) | {k: old[k] for k in ("sha256", "size", "raw_size")}
    path = _save(repo, f"{two[1]}.json", newest)
    target = tmp_path / "restored.db"
    for ref in ("latest", two[1]):
        result = _restore(run, repo, ref, target, "--key-file", key_file)
        assert result.exit_code == 1
        assert _one_line(result).startswith(f"Error: {path}: manifest authentication failed")
    assert not target.exists()


def test_older_backup_copied_over_the_newest_is_reported(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    for suffix in (".json", ".rkb"):
        shutil.copyfile(repo / f"{two[0]}{suffix}", repo / f"{two[1]}{suffix}")
    target = tmp_path / "restored.db"
    result = _restore(run, repo, "latest", target, "--key-file", key_file)
    assert result.exit_code == 1
    line = _one_line(result)
    assert line.startswith(f"Error: {repo / two[1]}.json: unreadable manifest")
    assert f"holds backup id {two[0]}" in line
    assert not target.exists()


def test_deleting_the_newest_backup_is_reported_not_rolled_back(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    for suffix in (".json", ".rkb"):
        (repo / f"{two[1]}{suffix}").unlink()
    target = tmp_path / "restored.db"
    result = _restore(run, repo, "latest", target, "--key-file", key_file)
    assert result.exit_code == 1
    assert _one_line(result) == (
        f"Error: {repo / two[1]}.json: missing, but it is the newest backup (sequence 2) per "
        "config: refusing to use an older backup\n"
    )
    assert not target.exists()


def test_unreadable_newest_manifest_never_falls_back_to_the_one_before(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    path = repo / f"{two[1]}.json"
    path.write_text(path.read_text()[:100])
    target = tmp_path / "restored.db"
    for args in (
        [
            "restore",
            "--repo",
            repo,
            "latest",
            "--to",
            f"sqlite:///{target}",
            "--key-file",
            key_file,
        ],
        ["verify", "--repo", repo, "--key-file", key_file],
    ):
        result = run(*args)
        assert result.exit_code == 1
        assert _one_line(result).startswith(f"Error: {path}: unreadable manifest")
    assert not target.exists()
    assert _manifest(repo, two[0])["verification"] is None  # the older one was not verified


@pytest.mark.parametrize("field", ["id", "data_file"])
def test_ids_that_leave_the_repository_are_refused_everywhere(
    run: Run, sqlite_db: Path, repo: Path, tmp_path: Path, field: str
) -> None:
    # No key: the id check must not depend on authentication.
    real = _create(run, sqlite_db, repo, "--unencrypted")
    outside = {name: tmp_path / name for name in ("x.json", "x.rkb")}
    for path in outside.values():
        path.write_text("precious")
    evil = _manifest(repo, real) | {"sequence": 2, "verification": None}
    if field == "id":
        evil |= {"id": "../x", "data_file": "../x.rkb"}
        name = "evil.json"
    else:
        evil |= {"id": PLANTED, "data_file": "../x.rkb"}
        name = f"{PLANTED}.json"
    evil_path = _save(repo, name, evil)

    verified = run("verify", "--repo", repo)
    if field == "id":  # not named like a backup: ignored with a warning, never followed
        assert verified.exit_code == 0, verified.output
        assert f"warning: {evil_path}: unreadable manifest (id '../x' is not" in verified.stderr
    else:  # named like a backup newer than the head: `latest` cannot be told, so it stops
        assert verified.exit_code == 1
        assert _one_line(verified).startswith(f"Error: {evil_path}: unreadable manifest")
    for args in (["verify", "--repo", repo, "../x"], ["verify", "--repo", repo, "../../x"]):
        result = run(*args)
        assert result.exit_code == 2
        assert "no backup with id '../" in _one_line(result)
    restored = _restore(run, repo, "../x", tmp_path / "t.db")
    assert restored.exit_code == 2
    pruned = run("prune", "--repo", repo, "--keep-last", "1")
    assert pruned.exit_code == 0, pruned.output
    listed = run("list", "--repo", repo)
    assert f"warning: {evil_path}: unreadable manifest" in listed.stderr
    for path in outside.values():
        assert path.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".json", ".rkb")) == [
        "x.json",
        "x.rkb",
    ]


def test_missing_config_is_refused(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    (repo / "config").unlink()
    target = tmp_path / "restored.db"
    result = _restore(run, repo, "latest", target, "--key-file", key_file)
    assert result.exit_code == 1
    assert _one_line(result).startswith(
        f"Error: {repo / 'config'}: missing, but the repository holds backups"
    )
    assert not target.exists()


def test_create_refuses_to_downgrade_a_repository(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, tmp_path: Path
) -> None:
    _create(run, sqlite_db, repo, "--key-file", key_file)
    for extra in (["--unencrypted", "--key-file", key_file], ["--unencrypted"]):
        result = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, *extra)
        assert result.exit_code == 2
        assert "is encrypted: refusing an unencrypted backup (downgrade)" in _one_line(result)
    plain = tmp_path / "plain"
    _create(run, sqlite_db, plain, "--unencrypted")
    keyed = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", plain, "--key-file", key_file)
    assert keyed.exit_code == 2
    assert "was made without a key" in _one_line(keyed)
    assert len(list(repo.glob("*.json"))) == len(list(plain.glob("*.json"))) == 1


def test_unencrypted_backups_are_authenticated_when_there_is_a_key(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, tmp_path: Path
) -> None:
    made = _create(
        run, sqlite_db, repo, "--unencrypted", "--key-file", key_file, "--compression", "gzip"
    )
    assert gzip.decompress((repo / f"{made}.rkb").read_bytes()).startswith(b"SQLite format 3")
    manifest = _manifest(repo, made)
    assert manifest["encryption"] is None
    assert len(manifest["mac"]) == 64
    without = run("verify", "--repo", repo)
    assert without.exit_code == 2
    assert "is authenticated with a key: give --key-file" in _one_line(without)
    assert run("verify", "--repo", repo, "--key-file", key_file).exit_code == 0
    encrypted = run(
        "create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file
    )
    assert encrypted.exit_code == 2
    assert "pass --unencrypted" in _one_line(encrypted)

    manifest["tables"]["users"] = 7
    path = _save(repo, f"{made}.json", manifest)
    target = tmp_path / "restored.db"
    result = _restore(run, repo, made, target, "--key-file", key_file)
    assert result.exit_code == 1
    assert _one_line(result).startswith(f"Error: {path}: manifest authentication failed")
    assert not target.exists()


def test_a_create_killed_before_the_config_update_still_chains(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _create(run, sqlite_db, repo, "--key-file", key_file)
    key = load_key(key_file)
    repository = Repository.open(repo)

    def killed(*args: object) -> None:
        raise KeyboardInterrupt  # stands in for SIGKILL after the manifest was published

    monkeypatch.setattr(Repository, "advance_head", killed)
    with pytest.raises(KeyboardInterrupt):
        create_backup(repository, parse_source(f"sqlite:///{sqlite_db}"), "zstd", key)
    monkeypatch.undo()
    assert json.loads((repo / "config").read_text())["head"]["id"] == first
    second = repository.resolve("latest", repository.access(key))
    assert second.id != first
    assert second.sequence == 2
    third = _create(run, sqlite_db, repo, "--key-file", key_file)
    assert _manifest(repo, third)["previous"] == second.mac
    assert json.loads((repo / "config").read_text())["head"]["id"] == third


def test_missing_newest_data_file_is_reported_not_rolled_back(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str]
) -> None:
    data = repo / f"{two[1]}.rkb"
    data.unlink()
    target = tmp_path / "restored.db"
    result = _restore(run, repo, "latest", target, "--key-file", key_file)
    assert result.exit_code == 1
    assert _one_line(result) == (
        f"Error: {data}: checksum failed: the data file is missing: not restored\n"
    )
    assert not target.exists()


def test_a_lock_file_symlinked_outside_the_repository_is_not_followed(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("precious")
    repo.mkdir(mode=0o700)
    (repo / "lock").symlink_to(outside)
    result = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file)
    assert result.exit_code == 3
    assert _one_line(result).startswith(f"Error: cannot open lock file {repo.absolute()}/lock")
    assert outside.read_text() == "precious"


def test_an_unreadable_older_manifest_is_a_warning_not_a_stop(
    run: Run, sqlite_db: Path, repo: Path, key_file: Path, tmp_path: Path
) -> None:
    repository = Repository.open(repo, create=True)
    source = parse_source(f"sqlite:///{sqlite_db}")
    then = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)  # older than the next one, whatever the clock
    old = create_backup(repository, source, "zstd", load_key(key_file), now=then)
    _create(run, sqlite_db, repo, "--key-file", key_file)
    older = repo / f"{old.id}.json"
    older.write_text("{")
    target = tmp_path / "restored.db"
    result = _restore(run, repo, "latest", target, "--key-file", key_file)
    assert result.exit_code == 0, result.output
    assert f"warning: {older}: unreadable manifest" in result.stderr
    made = run("create", "--db", f"sqlite:///{sqlite_db}", "--repo", repo, "--key-file", key_file)
    assert made.exit_code == 0, made.output
    assert f"warning: {older}: unreadable manifest" in made.stderr


@pytest.mark.parametrize("command", ["restore", "verify"])
def test_a_data_file_swapped_after_its_checksum_passed_is_caught_on_the_read_that_restores(
    run: Run, repo: Path, key_file: Path, tmp_path: Path, two: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch, command: str,
) -> None:  # fmt: skip
    """An attacker who can write the repository swaps the newest data file for an older one
    (same key: it decrypts) in the gap between the checksum pass and the read that restores."""
    older, newest = (repo / f"{backup_id}.rkb" for backup_id in two)
    module = restore if command == "restore" else drill
    checked = module.checksum

    def checksum_then_swap(path: Path, limit: int) -> tuple[str, int]:
        result = checked(path, limit)
        shutil.copyfile(older, newest)  # what the race does, deterministically
        return result

    monkeypatch.setattr(module, "checksum", checksum_then_swap)
    target = tmp_path / "restored.db"
    args = ["--key-file", key_file]
    result = (
        _restore(run, repo, "latest", target, *args)
        if command == "restore"
        else run("verify", "--repo", repo, *args)
    )
    assert result.exit_code == 1, result.output
    assert "changed while read" in _one_line(result)
    assert not target.exists()
