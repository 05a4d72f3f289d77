"""PostgreSQL end to end with the real server and Debian's pg_dump/pg_restore."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backup_processes import kill9, wait_until
from click.testing import Result

from support import need

pytestmark = pytest.mark.postgres
Run = Callable[..., Result]

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     customer_id int NOT NULL REFERENCES customers(id),
                     total numeric(10, 2) CHECK (total >= 0));
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
CREATE SCHEMA audit;
CREATE TABLE audit.a (n int);
CREATE TABLE audit.b (n int);
INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 300) g;
INSERT INTO orders (customer_id, total) SELECT 1 + g % 300, g FROM generate_series(1, 1000) g;
"""


@pytest.fixture(autouse=True)
def _tools() -> None:
    if not (glob.glob("/usr/lib/postgresql/*/bin/pg_dump") or shutil.which("pg_dump")):
        need("pg_dump is not installed")


def _sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows: list[tuple[object, ...]] = []
        for statement in statements:
            cur = conn.execute(statement)
            if cur.description is not None:
                rows = cur.fetchall()
        return rows


@pytest.fixture
def target_url(postgres_url: str) -> Iterator[str]:
    """A database name that does not exist yet; dropped afterwards."""
    url = f"{postgres_url}_copy"
    name = url.rsplit("/", 1)[1]
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    try:
        yield url
    finally:
        _sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", "postgresql://postgres:pw-not-stored@")


def test_backup_verify_restore_round_trip_under_concurrent_writes(
    run: Run, postgres_url: str, target_url: str, repo: Path, key_file: Path
) -> None:
    _sql(postgres_url, SCHEMA)
    stop = threading.Event()

    def writer() -> None:
        import psycopg

        with psycopg.connect(postgres_url) as conn:
            n = 0
            while not stop.is_set():
                with conn.transaction():
                    conn.execute("INSERT INTO audit.a VALUES (%s)", (n,))
                    conn.execute("INSERT INTO audit.b VALUES (%s)", (n,))
                n += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        url = _with_password(postgres_url)
        created = run("create", "--db", url, "--repo", repo, "--key-file", key_file, "--json")
    finally:
        stop.set()
        thread.join(30)
    assert created.exit_code == 0, created.output

    manifest_text = next(repo.glob("*.json")).read_text()
    assert "pw-not-stored" not in manifest_text
    manifest = json.loads(manifest_text)
    assert manifest["source"]["url"] == postgres_url
    assert "PostgreSQL" in manifest["tools"]["pg_dump"]
    tables = manifest["tables"]
    assert tables["public.customers"] == 300
    assert tables["public.orders"] == 1000
    # Counts come from the same snapshot pg_dump used: a and b were always written together.
    assert tables["audit.a"] == tables["audit.b"]

    verified = run("verify", "--repo", repo, "--key-file", key_file, "--json")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    scratch = report["steps"][2]["detail"].rsplit(" ", 1)[1]
    assert scratch.startswith("rk_verify_")
    assert (scratch,) not in _sql(postgres_url, "SELECT datname FROM pg_database")
    listed = json.loads(run("list", "--repo", repo, "--json").stdout)
    assert listed[0]["verify"] == "passed"

    restored = run("restore", "--repo", repo, "latest", "--to", target_url, "--key-file", key_file)
    assert restored.exit_code == 0, restored.output
    rows = _sql(target_url, "SELECT (SELECT count(*) FROM audit.a), (SELECT count(*) FROM audit.b)")
    assert rows == [(tables["audit.a"], tables["audit.b"])]
    assert _sql(target_url, "SELECT count(*) FROM big_orders") == [(900,)]


def test_restore_refuses_a_non_empty_database_without_force(
    run: Run, postgres_url: str, target_url: str, repo: Path, key_file: Path
) -> None:
    _sql(postgres_url, SCHEMA)
    assert (
        run("create", "--db", postgres_url, "--repo", repo, "--key-file", key_file).exit_code == 0
    )
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    _sql(admin, f'CREATE DATABASE "{target_url.rsplit("/", 1)[1]}"')
    _sql(target_url, "CREATE TABLE precious (x int)", "INSERT INTO precious VALUES (1)")

    refused = run("restore", "--repo", repo, "latest", "--to", target_url, "--key-file", key_file)
    assert refused.exit_code == 2
    assert "not empty" in refused.stderr
    assert _sql(target_url, "SELECT count(*) FROM precious") == [(1,)]

    forced = run(
        "restore", "--repo", repo, "latest", "--to", target_url, "--key-file", key_file, "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert _sql(target_url, "SELECT count(*) FROM orders") == [(1000,)]


def test_drill_catches_a_schema_that_differs_from_the_manifest(
    run: Run, postgres_url: str, repo: Path
) -> None:
    _sql(postgres_url, "CREATE TABLE t (x int)")
    assert run("create", "--db", postgres_url, "--repo", repo, "--unencrypted").exit_code == 0
    path = next(repo.glob("*.json"))
    manifest = json.loads(path.read_text())
    manifest["schema_fingerprint"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(manifest))
    # By id: `latest` would refuse the edited manifest (it no longer matches the chain's head).
    result = run("verify", "--repo", repo, manifest["id"])
    assert result.exit_code == 1
    assert "verify failed at step 'schema'" in result.stderr


def test_missing_pg_dump_is_exit_3(
    run: Run, postgres_url: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("readykit.backup.postgres.BIN_DIR_PATTERNS", (str(tmp_path / "{major}"),))
    result = run(
        "create", "--db", postgres_url, "--repo", repo, "--unencrypted", env={"PATH": str(tmp_path)}
    )
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: no pg_dump for PostgreSQL ")
    assert result.stderr.strip().count("\n") == 0
    assert json.loads(run("list", "--repo", repo, "--json").stdout) == []


def test_a_sigkilled_verify_leaves_no_scratch_database_after_the_next_run(
    run: Run,
    start_paused: Callable[..., subprocess.Popen[bytes]],
    postgres_url: str,
    repo: Path,
    key_file: Path,
) -> None:
    _sql(postgres_url, SCHEMA)
    assert (
        run("create", "--db", postgres_url, "--repo", repo, "--key-file", key_file).exit_code == 0
    )
    # Stopped right after pg_restore filled the scratch database, before it is dropped.
    verifying = start_paused(
        "readykit.backup.postgres:run_restore",
        "after",
        "verify",
        "--repo",
        repo,
        "--key-file",
        key_file,
    )
    prefix = f"rk_verify_{verifying.pid}_"
    scratch = [
        str(name)
        for (name,) in _sql(postgres_url, "SELECT datname FROM pg_database")
        if str(name).startswith(prefix)
    ]
    assert len(scratch) == 1
    name = scratch[0]
    assert _sql(postgres_url.rsplit("/", 1)[0] + f"/{name}", "SELECT count(*) FROM orders") == [
        (1000,)
    ]

    kill9(verifying)
    owner = f"readykit-verify {name}"

    def owner_gone() -> bool:
        query = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{owner}'"  # noqa: S608
        return _sql(postgres_url, query) == [(0,)]

    wait_until(owner_gone, "the server to notice the killed verify's session")
    assert (name,) in _sql(postgres_url, "SELECT datname FROM pg_database")  # left behind

    again = run("verify", "--repo", repo, "--key-file", key_file, "--json")
    assert again.exit_code == 0, again.output
    restore_step = json.loads(again.stdout)["steps"][2]
    assert f"dropped scratch databases of killed runs: {name}" in restore_step["detail"]
    leftovers = _sql(
        postgres_url, "SELECT datname FROM pg_database WHERE datname LIKE 'rk\\_verify\\_%'"
    )
    assert (name,) not in leftovers


def test_restore_force_into_a_database_in_use_stops_instead_of_hanging(
    run: Run, postgres_url: str, repo: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from readykit.backup import postgres

    _sql(postgres_url, SCHEMA)
    made = run("create", "--db", postgres_url, "--repo", repo, "--key-file", key_file)
    assert made.exit_code == 0, made.output
    monkeypatch.setattr(postgres, "LOCK_TIMEOUT_S", 1)
    with psycopg.connect(postgres_url) as app:  # the application, mid-transaction
        app.execute("SELECT count(*) FROM orders").fetchone()
        result = run("restore", "--repo", repo, "latest", "--to", postgres_url, "--force",
                     "--key-file", key_file)  # fmt: skip
        # the application's transaction was not blocked or cancelled
        assert app.execute("SELECT count(*) FROM customers").fetchone() == (300,)
        app.rollback()
    assert result.exit_code == 3, result.output
    assert result.stderr.count("\n") == 1
    assert "is in use: pg_restore waited 1 s for a lock held by another session" in result.stderr
    assert "target left unchanged" in result.stderr
    assert _sql(postgres_url, "SELECT count(*) FROM orders") == [(1000,)]
    # once the application lets go, the same restore goes through
    again = run("restore", "--repo", repo, "latest", "--to", postgres_url, "--force",
                "--key-file", key_file)  # fmt: skip
    assert again.exit_code == 0, again.output


def test_sslpassword_is_neither_stored_shown_nor_on_a_command_line(
    run: Run, postgres_url: str, repo: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from readykit.backup import postgres
    from readykit.backup.source import parse_source, redact

    _sql(postgres_url, SCHEMA)
    secret = "ssl-secret-not-stored"
    seen: list[tuple[list[str], str]] = []
    real_popen = subprocess.Popen

    def spy(args: list[str], *a: object, **kw: object) -> object:
        env = kw.get("env") or {}
        assert isinstance(env, dict)
        service = Path(env["PGSERVICEFILE"]).read_text() if "PGSERVICEFILE" in env else ""
        seen.append((list(args), service))
        return real_popen(args, *a, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(postgres.subprocess, "Popen", spy)
    url = f"{postgres_url}?sslmode=disable&sslpassword={secret}"
    created = run("create", "--db", url, "--repo", repo, "--key-file", key_file)
    assert created.exit_code == 0, created.output
    assert secret not in next(repo.glob("*.json")).read_text()
    listed = run("list", "--repo", repo, "--json")
    assert secret not in listed.stdout
    assert "sslmode=disable" in listed.stdout
    assert all(secret not in " ".join(argv) for argv, _ in seen)
    [service] = [service for argv, service in seen if "--format=custom" in argv]
    assert f"sslpassword={secret}" in service  # handed over in a private file instead
    assert secret not in redact(url)
    assert parse_source(url).sslpassword == secret


def test_the_drill_does_not_run_the_backups_code_as_a_superuser(
    run: Run, postgres_url: str, repo: Path, key_file: Path
) -> None:
    # An unprivileged role that owns a schema plants a CHECK constraint calling its function;
    # the drill (connected as the superuser postgres) runs it during COPY. Here it only says
    # whether it ran as a superuser: the restore fails if it did.
    _sql(
        postgres_url,
        "CREATE SCHEMA app AUTHORIZATION pg_monitor",
        "SET ROLE pg_monitor",
        "CREATE FUNCTION app.not_superuser(int) RETURNS boolean LANGUAGE sql"
        " AS $$ SELECT NOT rolsuper FROM pg_roles WHERE rolname = current_user $$",
        "CREATE TABLE app.orders (id int CHECK (app.not_superuser(id)))",
        "INSERT INTO app.orders VALUES (1), (2)",
    )
    made = run("create", "--db", postgres_url, "--repo", repo, "--key-file", key_file)
    assert made.exit_code == 0, made.output
    verified = run("verify", "--repo", repo, "--key-file", key_file, "--json")
    assert verified.exit_code == 0, verified.output
    detail = json.loads(verified.stdout)["steps"][2]["detail"]
    assert "as non-superuser role rk_verify_" in detail
    roles = _sql(postgres_url, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'rk_verify_%'")
    assert roles == []


def test_sslpassword_with_a_service_is_refused_in_one_line() -> None:
    """The tools get sslpassword through readykit's own service file, which would hide the
    user's service (`service=`) from pg_dump: said up front, not as pg_dump's error later."""
    from readykit.backup.errors import BackupError
    from readykit.backup.source import parse_source

    with pytest.raises(BackupError, match="put sslpassword in that service's definition") as err:
        parse_source("postgresql://127.0.0.1:5432/app?service=prod&sslpassword=s3cret")
    assert "s3cret" not in str(err.value)
