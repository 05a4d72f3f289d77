"""PostgreSQL: pg_dump/pg_restore matched to the server, snapshot-consistent counts, scratch dbs.

Passwords reach libpq tools through the PGPASSWORD environment variable, never through argv.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from readykit.backup.errors import BackupError, ToolFailure
from readykit.backup.fingerprint import fingerprint
from readykit.backup.lock import private_scratch_parent, scratch_dir
from readykit.backup.source import Source

BIN_DIR_PATTERNS = ("/usr/lib/postgresql/{major}/bin", "/usr/pgsql-{major}/bin")
CONNECT_TIMEOUT_S = 10
# How long pg_restore waits for a lock on the target's objects: a database in use is reported,
# not waited on forever while the application queues behind pg_restore's DROP.
LOCK_TIMEOUT_S = 10
_USER_NAMESPACES = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
)
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
    "AND d.objid = c.oid AND d.deptype = 'e')"
)


def _query(text: str) -> Any:
    """`text` with the {ns} (user schemas) and {ext} (not extension-owned) filters filled in."""
    from psycopg import sql

    return sql.SQL(text).format(ns=sql.SQL(_USER_NAMESPACES), ext=sql.SQL(_NOT_EXTENSION))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise BackupError(
            "PostgreSQL backups need the extra: pip install 'readykit[postgres]'"
        ) from exc
    return psycopg


def connect(
    source: Source, autocommit: bool = False, application_name: str = "readykit-backup"
) -> Any:
    """A psycopg connection to `source`; an unreachable server is a ToolFailure."""
    psycopg = _psycopg()
    kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": autocommit}
    if source.password is not None:
        kwargs["password"] = source.password
    if source.sslpassword is not None:
        kwargs["sslpassword"] = source.sslpassword
    try:
        return psycopg.connect(source.url, application_name=application_name, **kwargs)
    except psycopg.Error as exc:
        raise ToolFailure(f"cannot connect to {source.redacted_url}: {_first_line(exc)}") from exc


@contextlib.contextmanager
def database_errors(what: str) -> Iterator[None]:
    """Turn a psycopg error raised inside the block into a one-line ToolFailure."""
    psycopg = _psycopg()
    try:
        yield
    except psycopg.Error as exc:
        raise ToolFailure(f"{what}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


@contextlib.contextmanager
def tool_env(source: Source) -> Iterator[dict[str, str]]:
    """Environment for pg_dump/pg_restore: PGPASSWORD when the URL had a password; an
    `sslpassword` (libpq has no environment variable for it) in a service file of its own in
    this user's private scratch directory, removed afterwards."""
    env = dict(os.environ)
    env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_S))
    if source.password is not None:
        env["PGPASSWORD"] = source.password
    if source.sslpassword is None:
        yield env
        return
    with scratch_dir(private_scratch_parent()) as private:
        service = private / "pg_service.conf"
        fd = os.open(service, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"[readykit]\nsslpassword={source.sslpassword}\n")
        env["PGSERVICEFILE"] = str(service)
        env["PGSERVICE"] = "readykit"
        yield env


def server_major(conn: Any) -> int:
    """The server's major version (15 for 15.4)."""
    return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


def find_binary(name: str, major: int) -> tuple[Path, str]:
    """The `name` tool (pg_dump, pg_restore) for server `major`: that version, else the nearest
    newer one installed, else the one on PATH if new enough. Returns (path, version line)."""
    candidates: list[Path] = []
    for newer in range(major, major + 10):
        for pattern in BIN_DIR_PATTERNS:
            candidates.append(Path(pattern.format(major=newer)) / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        version = _version(path)
        if version is not None and version[0] >= major:
            return path, version[1]
    raise ToolFailure(
        f"no {name} for PostgreSQL {major} (looked in /usr/lib/postgresql/*/bin and PATH): "
        f"install postgresql-client-{major}"
    )


def major_of(version_line: str) -> int:
    """The major version in a `pg_dump --version` line; 0 when there is none."""
    match = re.search(r"\)\s*(\d+)", version_line) or re.search(r"(\d+)", version_line)
    return int(match.group(1)) if match else 0


def _version(path: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    major = major_of(out)
    return (major, out) if major else None


def inspect(conn: Any) -> tuple[dict[str, int], str]:
    """Row counts of user tables and the schema fingerprint, inside `conn`'s current transaction."""
    from psycopg import sql

    tables = conn.execute(
        _query(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND {ns} AND {ext} ORDER BY 1, 2"
        )
    ).fetchall()
    counts: dict[str, int] = {}
    for schema, table in tables:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        counts[f"{schema}.{table}"] = int(conn.execute(query).fetchone()[0])
    return counts, fingerprint(_schema(conn))


def _schema(conn: Any) -> dict[str, list[list[Any]]]:
    queries = {
        "schemas": "SELECT n.nspname FROM pg_namespace n WHERE {ns}"
        " AND n.nspname NOT LIKE 'pg\\_%'",
        "relations": "SELECT n.nspname, c.relname, c.relkind FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r','p','v','m','S','f') AND {ns}"
        " AND {ext}",
        # Column order, not attnum: dropped columns shift attnum but vanish in a restore.
        "columns": "SELECT n.nspname, c.relname,"
        " array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)"
        " || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END"
        " || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')"
        " || coalesce(' identity ' || nullif(a.attidentity::text, ''), '') ORDER BY a.attnum)"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum"
        " WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','v','m','f')"
        " AND {ns} AND {ext} GROUP BY 1, 2",
        "constraints": "SELECT n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid)"
        " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {ns}",
        "indexes": "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
        "views": "SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('v','m') AND {ns} AND {ext}",
        "triggers": "SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid)"
        " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal"
        " AND {ns}",
        "functions": "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE {ns} AND NOT EXISTS (SELECT 1 FROM pg_depend d"
        " WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')",
    }
    return {
        name: sorted([list(row) for row in conn.execute(_query(query)).fetchall()], key=repr)
        for name, query in queries.items()
    }


@contextlib.contextmanager
def snapshot_session(source: Source) -> Iterator[tuple[Any, str]]:
    """A read-only REPEATABLE READ transaction and its exported snapshot, shared with pg_dump."""
    psycopg = _psycopg()
    conn = connect(source)
    try:
        with database_errors(f"PostgreSQL error on {source.redacted_url}"):
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])
            yield conn, snapshot
    finally:
        conn.close()


def dump_blocks(
    pg_dump: Path, source: Source, snapshot: str, stderr_path: Path, block: int = 1 << 20
) -> Iterator[bytes]:
    """Stream `pg_dump -Fc` of `source` at `snapshot`; a failing pg_dump raises ToolFailure."""
    args = [
        str(pg_dump),
        "--format=custom",
        "--compress=0",  # readykit compresses the whole stream itself
        "--no-password",
        f"--snapshot={snapshot}",
        f"--dbname={source.url}",
    ]
    with tool_env(source) as env, stderr_path.open("wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=env)
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read(block):
                yield chunk
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    if code != 0:
        raise ToolFailure(f"pg_dump failed (exit {code}): {_last_line(stderr_path)}")


def run_restore(
    pg_restore: Path,
    archive: Path,
    target: Source,
    extra: list[str],
    lock_timeout_s: int | None = None,
) -> None:
    """`pg_restore` the custom-format `archive` into `target` in one transaction.

    With `lock_timeout_s`, a lock not granted in that time (another session uses a table)
    raises DatabaseInUse instead of waiting.
    """
    args = [
        str(pg_restore),
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
        *extra,
        f"--dbname={target.url}",
        str(archive),
    ]
    with tool_env(target) as env:
        if lock_timeout_s is None:
            proc = subprocess.run(args, capture_output=True, env=env, check=False)
            code, err, cancelled = proc.returncode, proc.stderr, False
        else:
            # pg_restore's archive sets lock_timeout = 0 itself, so PGOPTIONS cannot bound its
            # waits: a watchdog session cancels its statement once it waits on a lock too long.
            env["PGAPPNAME"] = f"readykit-restore {secrets.token_hex(8)}"
            code, err, cancelled = _restore_watched(args, env, target, lock_timeout_s)
        if cancelled:
            raise DatabaseInUse(
                f"{target.redacted_url} is in use: pg_restore waited {lock_timeout_s} s for a "
                "lock held by another session; target left unchanged: stop the application "
                "(or end its sessions) and try again"
            )
    if code != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise RestoreFailed(lines[-1] if lines else f"pg_restore exited {code}")


def _restore_watched(
    args: list[str], env: dict[str, str], target: Source, lock_timeout_s: int
) -> tuple[int, bytes, bool]:
    """Run pg_restore; cancel its statement if it waits on a lock for `lock_timeout_s`."""
    cancelled = False
    with (
        tempfile.TemporaryFile() as err,
        connect(target, autocommit=True, application_name="readykit-restore-watch") as watch,
    ):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            while proc.poll() is None:
                with database_errors(f"PostgreSQL error on {target.redacted_url}"):
                    row = watch.execute(
                        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = %s AND wait_event_type = 'Lock'"
                        " AND clock_timestamp() - query_start > make_interval(secs => %s)",
                        (env["PGAPPNAME"], lock_timeout_s),
                    ).fetchone()
                cancelled = cancelled or bool(row and row[0])
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        err.seek(0)
        return proc.returncode, err.read(), cancelled


class RestoreFailed(Exception):
    """pg_restore rejected the archive."""


class DatabaseInUse(ToolFailure):
    """pg_restore could not lock the target's objects: another session uses them (exit 3)."""


def database_exists(admin: Any, name: str) -> bool:
    """Whether database `name` exists on the server `admin` is connected to."""
    row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def is_empty(conn: Any) -> bool:
    """True when the database has no user relations, types or functions."""
    count = conn.execute(
        _query(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE {ns} AND {ext})"
            " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE {ns})"
        )
    ).fetchone()[0]
    return int(count) == 0


def create_database(admin: Any, name: str, owner: str | None = None) -> None:
    """CREATE DATABASE `name` from template0 (owned by `owner`, if given)."""
    from psycopg import sql

    owned = sql.SQL(" OWNER {}").format(sql.Identifier(owner)) if owner else sql.SQL("")
    admin.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE template0{}").format(sql.Identifier(name), owned)
    )


def drop_database(admin: Any, name: str) -> None:
    """DROP DATABASE `name`, closing other sessions on PostgreSQL 13+."""
    from psycopg import sql

    force = sql.SQL(" WITH (FORCE)") if server_major(admin) >= 13 else sql.SQL("")
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force))


SCRATCH_PREFIX = "rk_verify_"
_SCRATCH_PATTERN = "^rk_verify_[0-9]+_[0-9a-f]{8}$"
_OWNER_PREFIX = "readykit-verify "


@dataclasses.dataclass(frozen=True)
class Scratch:
    """A scratch database, the role to restore as (None: the connecting role), and the stale
    scratch databases and roles of killed runs dropped before it was made."""

    source: Source
    role: str | None
    dropped: list[str]


@contextlib.contextmanager
def scratch_database(server: Source) -> Iterator[Scratch]:
    """A temporary database on `server`'s cluster, dropped afterwards whatever happens.

    A scratch database is named `rk_verify_<pid>_<random>` and owned by the session that made
    it, whose application_name is `readykit-verify <name>` and which stays open until the
    database is dropped; one without that session was left by a killed run. The session, not
    the pid, says who is alive: the pid means nothing on another host or in another container.

    When the connecting role is a superuser, the restore must not run the backup's code (CHECK
    constraints, index expressions) as a superuser: a NOLOGIN non-superuser role of the same
    name is made, owns the database, and is what pg_restore `--role`s to; it is dropped after
    the database.
    """
    from psycopg import sql

    name = f"{SCRATCH_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    owner = f"{_OWNER_PREFIX}{name}"
    with connect(server, autocommit=True, application_name=owner) as admin:
        dropped = drop_stale_scratch(admin)
        with database_errors(f"cannot create a scratch database on {server.redacted_url}"):
            superuser = admin.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            role = name if superuser and superuser[0] else None
            if role is not None:
                admin.execute(
                    sql.SQL(
                        "CREATE ROLE {} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                        " NOREPLICATION NOBYPASSRLS"
                    ).format(sql.Identifier(role))
                )
        try:
            with database_errors(f"cannot create a scratch database on {server.redacted_url}"):
                create_database(admin, name, role)
            try:
                yield Scratch(server.with_database(name), role, dropped)
            finally:
                with database_errors(f"cannot drop scratch database {name}"):
                    drop_database(admin, name)
        finally:
            if role is not None:
                with database_errors(f"cannot drop scratch role {role}"):
                    admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def drop_stale_scratch(admin: Any) -> list[str]:
    """Drop the scratch databases (and then roles) whose owning session is gone; return their
    names."""
    from psycopg import sql

    with database_errors("cannot list scratch databases"):
        stale = [
            str(row[0])
            for row in admin.execute(
                "SELECT d.datname FROM pg_database d WHERE d.datname ~ %s"
                " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a"
                " WHERE a.application_name = %s || d.datname) ORDER BY 1",
                (_SCRATCH_PATTERN, _OWNER_PREFIX),
            ).fetchall()
        ]
    dropped: list[str] = []
    psycopg = _psycopg()
    for name in stale:
        try:
            drop_database(admin, name)
        except psycopg.Error:
            continue  # not ours to drop (another role's), or just dropped by someone else
        dropped.append(name)
    with database_errors("cannot list scratch roles"):
        roles = [
            str(row[0])
            for row in admin.execute(
                "SELECT r.rolname FROM pg_roles r WHERE r.rolname ~ %s"
                " AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = r.rolname)"
                " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a"
                " WHERE a.application_name = %s || r.rolname) ORDER BY 1",
                (_SCRATCH_PATTERN, _OWNER_PREFIX),
            ).fetchall()
        ]
    for role in roles:
        try:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        except psycopg.Error:
            continue
        if role not in dropped:
            dropped.append(role)
    return dropped


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no error output"
