"""Built-in health checks, each run against the real thing it checks."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from readykit.errors import ConfigurationError
from readykit.health.checks import (
    alembic_at_head,
    disk_free,
    http_dependency,
    memory,
    redis_ping,
    row_count,
    sqlalchemy_engine,
    writable_dir,
)
from readykit.health.observation import Observation

UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: connections are refused at once


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- engines: SQLite and PostgreSQL, sync and async ----------------------------------------------

ENGINE_KINDS = [
    "sqlite-sync",
    "sqlite-async",
    pytest.param("postgres-sync", marks=pytest.mark.postgres),
    pytest.param("postgres-async", marks=pytest.mark.postgres),
]


@pytest.fixture(params=ENGINE_KINDS)
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Engine | AsyncEngine]:
    kind: str = request.param
    if kind.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'app.db'}"
        async_url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    else:
        base: str = request.getfixturevalue("postgres_url")
        url = base.replace("postgresql://", "postgresql+psycopg://", 1)
        async_url = base.replace("postgresql://", "postgresql+asyncpg://", 1)
    if kind.endswith("async"):
        async_engine = create_async_engine(async_url)
        yield async_engine
        await async_engine.dispose()
    else:
        sync_engine = sa.create_engine(url)
        yield sync_engine
        sync_engine.dispose()


async def execute(engine: Engine | AsyncEngine, *statements: str) -> None:
    if isinstance(engine, AsyncEngine):
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    else:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))


def default_schema(engine: Engine | AsyncEngine) -> str:
    return "main" if engine.dialect.name == "sqlite" else "public"


# --- sqlalchemy_engine ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sqlalchemy_engine_passes_on_a_live_database(engine: Engine | AsyncEngine) -> None:
    result = await sqlalchemy_engine(engine)()

    assert isinstance(result, Observation)
    assert result.status == "pass"
    assert result.unit == "ms"
    assert isinstance(result.value, float)
    assert result.value >= 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("sqlite:///{tmp_path}/missing-dir/app.db", sa.exc.OperationalError),
        (f"postgresql+psycopg://postgres@{UNREACHABLE}/app", sa.exc.OperationalError),
        (f"postgresql+asyncpg://postgres@{UNREACHABLE}/app", ConnectionRefusedError),
    ],
    ids=["sqlite-sync", "postgres-sync", "postgres-async"],
)
async def test_sqlalchemy_engine_raises_when_the_database_cannot_be_reached(
    tmp_path: Path, url: str, error: type[Exception]
) -> None:
    # No aiosqlite case: a failed aiosqlite connect leaves its worker thread posting to the
    # event loop after the test closed it (an aiosqlite race), which pytest reports as an error.
    url = url.format(tmp_path=tmp_path)
    broken: Engine | AsyncEngine = (
        create_async_engine(url) if "asyncpg" in url else sa.create_engine(url)
    )
    try:
        with pytest.raises(error):
            await sqlalchemy_engine(broken)()
    finally:
        if isinstance(broken, AsyncEngine):
            await broken.dispose()
        else:
            broken.dispose()


@pytest.mark.parametrize("factory", [sqlalchemy_engine, lambda e: row_count(e, "rates")])
def test_database_checks_reject_a_url_instead_of_an_engine(factory: object) -> None:
    with pytest.raises(ConfigurationError, match="create_async_engine"):
        factory("sqlite:///app.db")  # type: ignore[operator]


# --- row_count -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_row_count_fails_on_an_empty_reference_table(engine: Engine | AsyncEngine) -> None:
    await execute(engine, "CREATE TABLE rates (id INTEGER PRIMARY KEY)")

    result = await row_count(engine, "rates")()

    assert result == Observation(
        value=0, unit="rows", status="fail", output="table rates has 0 rows, expected >= 1"
    )


@pytest.mark.anyio
async def test_row_count_passes_once_rows_exist(engine: Engine | AsyncEngine) -> None:
    await execute(
        engine,
        "CREATE TABLE rates (id INTEGER PRIMARY KEY)",
        "INSERT INTO rates (id) VALUES (1), (2)",
    )
    qualified = f"{default_schema(engine)}.rates"

    assert await row_count(engine, "rates")() == Observation(value=2, unit="rows")
    assert await row_count(engine, qualified)() == Observation(value=2, unit="rows")
    too_few = await row_count(engine, "rates", min_rows=3)()
    assert too_few is not None
    assert too_few.status == "fail"
    assert too_few.output == "table rates has 2 rows, expected >= 3"


@pytest.mark.anyio
async def test_row_count_raises_when_the_table_is_missing(engine: Engine | AsyncEngine) -> None:
    with pytest.raises(sa.exc.DBAPIError):
        await row_count(engine, "no_such_table")()


@pytest.mark.parametrize(
    "name",
    [
        "rates; DROP TABLE rates",
        "rates --",
        'rates"',
        "a.b.c",
        "",
        "1rates",
        "rates)",
        ".rates",
    ],
)
def test_row_count_rejects_table_names_that_are_not_identifiers(name: str) -> None:
    engine = sa.create_engine("sqlite://")
    try:
        with pytest.raises(ConfigurationError, match="table name like"):
            row_count(engine, name)
    finally:
        engine.dispose()


@pytest.mark.parametrize("min_rows", [-1, 1.5, True])
def test_row_count_rejects_a_bad_min_rows(min_rows: int) -> None:
    engine = sa.create_engine("sqlite://")
    try:
        with pytest.raises(ConfigurationError, match="min_rows"):
            row_count(engine, "rates", min_rows=min_rows)
    finally:
        engine.dispose()


# --- alembic_at_head -----------------------------------------------------------------------------

REV_1 = "1a2b3c4d5e6f"
REV_2 = "3c4d5e6f7a8b"

ENV_PY = """\
from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
"""

REVISION_PY = """\
import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None


def upgrade():
    {upgrade}


def downgrade():
    pass
"""


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """An Alembic script directory with two revisions, and an alembic.ini beside it."""
    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(ENV_PY)
    (scripts / "versions" / f"{REV_1}_rates.py").write_text(
        REVISION_PY.format(
            revision=REV_1,
            down_revision=None,
            upgrade='op.create_table("rates", sa.Column("id", sa.Integer, primary_key=True))',
        )
    )
    (scripts / "versions" / f"{REV_2}_rate_value.py").write_text(
        REVISION_PY.format(
            revision=REV_2,
            down_revision=REV_1,
            upgrade='op.add_column("rates", sa.Column("value", sa.Numeric))',
        )
    )
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    return scripts


async def upgrade(engine: Engine | AsyncEngine, scripts: Path, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(scripts))

    def run(conn: sa.Connection) -> None:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    if isinstance(engine, AsyncEngine):
        async with engine.begin() as async_conn:
            await async_conn.run_sync(run)
    else:
        with engine.begin() as sync_conn:
            run(sync_conn)


@pytest.mark.anyio
async def test_alembic_at_head_fails_behind_head_and_passes_at_head(
    engine: Engine | AsyncEngine, migrations: Path
) -> None:
    check = alembic_at_head(engine, str(migrations.parent / "alembic.ini"))

    await upgrade(engine, migrations, REV_1)
    behind = await check()
    await upgrade(engine, migrations, "head")
    at_head = await check()

    assert behind == Observation(
        value=REV_1,
        status="fail",
        output=f"database at {REV_1}, head is {REV_2}: run `alembic upgrade head`",
    )
    assert at_head == Observation(value=REV_2)


@pytest.mark.anyio
async def test_alembic_at_head_fails_without_an_alembic_version_table(
    engine: Engine | AsyncEngine, migrations: Path
) -> None:
    result = await alembic_at_head(engine, str(migrations))()

    assert result is not None
    assert result.status == "fail"
    assert result.output == (
        f"database has no alembic revision, head is {REV_2}: run `alembic upgrade head`"
    )


@pytest.mark.anyio
async def test_alembic_at_head_names_a_revision_the_code_does_not_know(
    engine: Engine | AsyncEngine, migrations: Path
) -> None:
    await execute(
        engine,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
        "INSERT INTO alembic_version (version_num) VALUES ('ffffffffffff')",
    )
    config = Config()
    config.set_main_option("script_location", str(migrations))

    result = await alembic_at_head(engine, config)()

    assert result is not None
    assert result.status == "fail"
    assert result.value == "ffffffffffff"
    assert result.output is not None
    assert "database is newer than the deployed code" in result.output


def test_alembic_at_head_rejects_a_config_it_cannot_read(tmp_path: Path) -> None:
    engine = sa.create_engine("sqlite://")
    no_location = tmp_path / "alembic.ini"
    no_location.write_text("[alembic]\n")
    try:
        with pytest.raises(ConfigurationError, match="does not exist"):
            alembic_at_head(engine, str(tmp_path / "nowhere.ini"))
        with pytest.raises(ConfigurationError, match="script_location"):
            alembic_at_head(engine, str(no_location))
        with pytest.raises(ConfigurationError, match="alembic Config"):
            alembic_at_head(engine, 42)  # type: ignore[arg-type]
    finally:
        engine.dispose()


# --- redis_ping ----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.redis
async def test_redis_ping_passes_on_a_live_redis_from_a_url(redis_url: str) -> None:
    check = redis_ping(redis_url)
    try:
        first = await check()
        second = await check()
    finally:
        await check.aclose()

    for result in (first, second):
        assert result is not None
        assert result.status == "pass"
        assert result.unit == "ms"


@pytest.mark.anyio
@pytest.mark.redis
async def test_redis_ping_leaves_a_callers_client_open(redis_url: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        check = redis_ping(client)
        result = await check()
        connection_before = await client.client_id()
        await check.aclose()
        connection_after = await client.client_id()
    finally:
        await client.aclose()

    assert result is not None
    assert result.status == "pass"
    assert connection_after == connection_before  # the pool was not closed under the caller


@pytest.mark.anyio
async def test_redis_ping_raises_when_redis_is_unreachable() -> None:
    import redis.exceptions

    check = redis_ping(f"redis://{UNREACHABLE}/0")
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await check()
    finally:
        await check.aclose()


def test_redis_ping_rejects_what_it_cannot_use() -> None:
    import redis

    sync_client = redis.Redis()
    try:
        with pytest.raises(ConfigurationError, match=r"redis://, rediss:// or unix://"):
            redis_ping("http://127.0.0.1:6379")
        with pytest.raises(ConfigurationError, match=r"redis\.asyncio\.Redis"):
            redis_ping(sync_client)  # type: ignore[arg-type]
    finally:
        sync_client.close()


def test_redis_ping_names_the_extra_when_redis_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)

    with pytest.raises(ConfigurationError, match=r"readykit\[redis\]"):
        redis_ping("redis://127.0.0.1:6379/0")


# --- http_dependency -----------------------------------------------------------------------------


class Dependency:
    """A tiny real HTTP server on 127.0.0.1 with a random port."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.peers: list[tuple[str, int]] = []
        self.release = asyncio.Event()


@pytest.fixture
async def dependency(anyio_backend: str) -> AsyncIterator[Dependency]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    dep = Dependency(f"http://127.0.0.1:{port}")

    async def ok(request: web.Request) -> web.Response:
        dep.peers.append(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        return web.Response(text="ok")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/broken")

    async def hang(request: web.Request) -> web.Response:
        await dep.release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/moved", moved)
    app.router.add_get("/hang", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield dep
    finally:
        dep.release.set()
        await runner.cleanup()


@pytest.mark.anyio
async def test_http_dependency_passes_on_200_and_reuses_its_session(
    dependency: Dependency,
) -> None:
    check = http_dependency(f"{dependency.base}/ok")
    try:
        first = await check()
        second = await check()
    finally:
        await check.aclose()

    assert first == second == Observation(value=200)
    assert len(dependency.peers) == 2
    assert dependency.peers[0] == dependency.peers[1]  # same keep-alive connection


@pytest.mark.anyio
async def test_http_dependency_fails_on_500(dependency: Dependency) -> None:
    with_secrets = dependency.base.replace("http://", "http://me:pw@") + "/broken?token=secret"
    check = http_dependency(with_secrets)
    try:
        result = await check()
    finally:
        await check.aclose()

    assert result == Observation(
        value=500,
        status="fail",
        output=f"GET {dependency.base}/broken returned 500, expected 200-399",
    )


@pytest.mark.anyio
async def test_http_dependency_judges_a_redirect_without_following_it(
    dependency: Dependency,
) -> None:
    lenient = http_dependency(f"{dependency.base}/moved")
    strict = http_dependency(f"{dependency.base}/moved", expect_status={200, 204})
    try:
        passed = await lenient()
        failed = await strict()
    finally:
        await lenient.aclose()
        await strict.aclose()

    assert passed == Observation(value=302)
    assert failed is not None
    assert failed.status == "fail"
    assert failed.output == f"GET {dependency.base}/moved returned 302, expected 200 or 204"


@pytest.mark.anyio
async def test_http_dependency_fails_when_the_dependency_does_not_answer(
    dependency: Dependency,
) -> None:
    check = http_dependency(f"{dependency.base}/hang", timeout=0.2)
    try:
        result = await check()
    finally:
        await check.aclose()

    assert result == Observation(
        status="fail", output=f"GET {dependency.base}/hang timed out after 0.2 s"
    )


@pytest.mark.anyio
async def test_http_dependency_raises_on_a_closed_port() -> None:
    import aiohttp

    check = http_dependency(f"http://{UNREACHABLE}/health")
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await check()
    finally:
        await check.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://example.com/"}, "http:// or https://"),
        ({"url": "http:///path-only"}, "http:// or https://"),
        ({"url": "http://example.com:99999/"}, "http:// or https://"),
        ({"url": 42}, "http:// or https://"),
        ({"url": "http://example.com/", "method": "POST"}, "GET, HEAD, OPTIONS"),
        ({"url": "http://example.com/", "timeout": 0}, "timeout"),
        ({"url": "http://example.com/", "expect_status": []}, "expect_status"),
        ({"url": "http://example.com/", "expect_status": 999}, "expect_status"),
    ],
)
def test_http_dependency_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        http_dependency(**kwargs)  # type: ignore[arg-type]


# --- disk_free -----------------------------------------------------------------------------------

HUGE = 1 << 62  # more free space than any disk has


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("warn", "fail", "status"),
    [(0, 0, "pass"), (HUGE, 0, "warn"), (HUGE, HUGE, "fail")],
)
async def test_disk_free_grades_the_real_disk_by_thresholds(
    tmp_path: Path, warn: int, fail: int, status: str
) -> None:
    result = await disk_free(tmp_path, warn_below_bytes=warn, fail_below_bytes=fail)()

    assert result is not None
    assert result.status == status
    assert result.unit == "bytes"
    assert isinstance(result.value, int)
    assert result.value > 0
    if status == "pass":
        assert result.output is None
    else:
        assert result.output is not None
        assert f"free on {tmp_path}, {status} below" in result.output


@pytest.mark.anyio
async def test_disk_free_raises_for_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await disk_free(tmp_path / "missing")()


@pytest.mark.parametrize(("warn", "fail"), [(1, 2), (-1, -2), (0, -1), (1.5, 0), (True, 0)])
def test_disk_free_rejects_thresholds_out_of_order(warn: int, fail: int) -> None:
    with pytest.raises(ConfigurationError, match="warn_below_bytes >= fail_below_bytes >= 0"):
        disk_free(warn_below_bytes=warn, fail_below_bytes=fail)


# --- writable_dir --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_writable_dir_passes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    result = await writable_dir(tmp_path)()

    assert result is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_writable_dir_fails_for_a_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "dir"

    result = await writable_dir(missing)()

    assert result == Observation(
        status="fail", output=f"cannot create a file in {missing}: No such file or directory"
    )


@pytest.mark.anyio
async def test_writable_dir_fails_for_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a directory")

    result = await writable_dir(a_file)()

    assert result == Observation(
        status="fail", output=f"cannot create a file in {a_file}: Not a directory"
    )


@pytest.mark.parametrize("path", ["", None, 42])
def test_writable_dir_rejects_a_non_path(path: object) -> None:
    with pytest.raises(ConfigurationError, match="needs a directory path"):
        writable_dir(path)  # type: ignore[arg-type]


# --- memory --------------------------------------------------------------------------------------

GIB_KB = 1024 * 1024  # 1 GiB in the kB that /proc reports


@pytest.fixture
def fake_roots(tmp_path: Path) -> tuple[Path, Path]:
    """A /proc with 1 GiB RSS and 16 GiB RAM, and an empty cgroup root."""
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    cgroup.mkdir()
    (proc / "self" / "status").write_text(f"Name:\tpython\nVmRSS:\t{GIB_KB} kB\nThreads:\t1\n")
    (proc / "meminfo").write_text(f"MemTotal:       {16 * GIB_KB} kB\nMemFree:  1 kB\n")
    (proc / "self" / "cgroup").write_text("0::/\n")
    return proc, cgroup


def limit_v2(cgroup: Path, value: str, group: str = "") -> None:
    directory = cgroup / group
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "memory.max").write_text(f"{value}\n")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("limit_bytes", "status", "percent"),
    [
        (4 * 1024**3, "pass", 25.0),
        (int(1024**3 / 0.95), "warn", 95.0),
        (int(1024**3 / 0.99), "fail", 99.0),
    ],
)
async def test_memory_grades_rss_against_the_cgroup_v2_limit(
    fake_roots: tuple[Path, Path], limit_bytes: int, status: str, percent: float
) -> None:
    proc, cgroup = fake_roots
    limit_v2(cgroup, str(limit_bytes))

    result = await memory(proc_root=proc, cgroup_root=cgroup)()

    assert result is not None
    assert (result.value, result.unit, result.status) == (percent, "percent", status)
    if status != "pass":
        assert result.output is not None
        assert "cgroup limit" in result.output


@pytest.mark.anyio
async def test_memory_reads_the_processs_own_cgroup_first(fake_roots: tuple[Path, Path]) -> None:
    proc, cgroup = fake_roots
    (proc / "self" / "cgroup").write_text("0::/app.slice/web\n")
    limit_v2(cgroup, "max")
    limit_v2(cgroup, str(2 * 1024**3), group="app.slice/web")

    result = await memory(proc_root=proc, cgroup_root=cgroup)()

    assert result is not None
    assert result.value == 50.0


@pytest.mark.anyio
async def test_memory_uses_the_cgroup_v1_limit(fake_roots: tuple[Path, Path]) -> None:
    proc, cgroup = fake_roots
    (proc / "self" / "cgroup").write_text("4:memory:/\n0::/\n")
    (cgroup / "memory").mkdir()
    (cgroup / "memory" / "memory.limit_in_bytes").write_text(f"{1024**3}\n")

    result = await memory(proc_root=proc, cgroup_root=cgroup)()

    assert result is not None
    assert (result.value, result.status) == (100.0, "fail")


@pytest.mark.anyio
@pytest.mark.parametrize("unlimited", ["max", "9223372036854771712"])
async def test_memory_falls_back_to_system_memory_without_a_limit(
    fake_roots: tuple[Path, Path], unlimited: str
) -> None:
    proc, cgroup = fake_roots
    limit_v2(cgroup, unlimited)

    result = await memory(warn_above_percent=5.0, proc_root=proc, cgroup_root=cgroup)()

    assert result == Observation(
        value=6.2,
        unit="percent",
        status="warn",
        output="RSS 1.0 GiB is 6.2% of the 16.0 GiB system memory",
    )


@pytest.mark.anyio
async def test_memory_passes_without_a_value_where_proc_is_missing(tmp_path: Path) -> None:
    result = await memory(proc_root=tmp_path, cgroup_root=tmp_path)()

    assert result is not None
    assert (result.value, result.unit, result.status) == (None, "percent", "pass")
    assert result.output is not None


@pytest.mark.anyio
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_memory_on_this_machine() -> None:
    # the real /proc parses, and the grade follows the thresholds whatever the host has free
    result = await memory()()

    assert result is not None
    assert result.unit == "percent"
    assert isinstance(result.value, float)
    assert 0 <= result.value <= 100
    expected = "fail" if result.value > 98.0 else "warn" if result.value > 90.0 else "pass"
    assert result.status == expected


@pytest.mark.parametrize(("warn", "fail"), [(0, 50), (95, 90), (90, 101), (True, 98)])
def test_memory_rejects_thresholds_out_of_order(warn: float, fail: float) -> None:
    with pytest.raises(ConfigurationError, match="warn_above_percent <= fail_above_percent"):
        memory(warn_above_percent=warn, fail_above_percent=fail)
