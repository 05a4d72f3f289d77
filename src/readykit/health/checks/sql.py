"""SQL database checks: reachability, row counts, Alembic migrations at head."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from readykit.errors import ConfigurationError
from readykit.health.observation import Observation

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

from readykit.health.checks._common import (
    _IDENTIFIER,
    Check,
    T,
    _is_int,
    _ms_since,
    hinted,
)


def sqlalchemy_engine(engine: Engine | AsyncEngine) -> Check:
    """Check that the database answers `SELECT 1`; the value is the round trip in ms."""
    _require_engine(engine, "sqlalchemy_engine")

    def select_one(conn: Connection) -> None:
        from sqlalchemy import text

        conn.execute(text("SELECT 1")).scalar_one()

    async def check() -> Observation:
        start = time.perf_counter()
        await _on_connection(engine, select_one)
        return Observation(value=_ms_since(start), unit="ms")

    return hinted(check, measurement="responseTime", component_type="datastore")


def row_count(engine: Engine | AsyncEngine, table: str, *, min_rows: int = 1) -> Check:
    """Check that `table` ("name" or "schema.name") holds at least `min_rows` rows.

    Meant for small reference tables: it runs `SELECT count(*)`, which scans large tables.
    """
    _require_engine(engine, "row_count")
    if not isinstance(table, str) or not all(
        _IDENTIFIER.fullmatch(part) for part in table.split(".", 1)
    ):
        raise ConfigurationError(
            f"row_count() needs a table name like 'rates' or 'public.rates' (letters, digits, "
            f"underscores), got {table!r}"
        )
    if not _is_int(min_rows) or min_rows < 0:
        raise ConfigurationError(f"row_count(min_rows=...) must be an int >= 0, got {min_rows!r}")
    schema, _, name = table.rpartition(".")

    def count(conn: Connection) -> int:
        import sqlalchemy as sa

        query = sa.select(sa.func.count()).select_from(sa.table(name, schema=schema or None))
        return int(conn.execute(query).scalar_one())

    async def check() -> Observation:
        rows = await _on_connection(engine, count)
        if rows < min_rows:
            output = f"table {table} has {rows} rows, expected >= {min_rows}"
            return Observation(value=rows, unit="rows", status="fail", output=output)
        return Observation(value=rows, unit="rows")

    return hinted(check, measurement="rows", component_type="datastore")


def alembic_at_head(engine: Engine | AsyncEngine, config: Config | str) -> Check:
    """Check that the database's Alembic revision is the migration scripts' head.

    `config` is an alembic `Config`, a path to `alembic.ini`, or the script directory itself.
    The scripts are read once, here; the value is the database's current revision.
    """
    _require_engine(engine, "alembic_at_head")
    try:
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError
    except ImportError as exc:
        raise ConfigurationError("alembic_at_head() needs Alembic: pip install alembic") from exc

    cfg = _alembic_config(config, Config)
    try:
        script = ScriptDirectory.from_config(cfg)
        heads = frozenset(script.get_heads())
        known = frozenset(rev.revision for rev in script.walk_revisions())
    except CommandError as exc:
        raise ConfigurationError(f"alembic_at_head() cannot read the migrations: {exc}") from exc
    head = _revisions(heads)

    def current_heads(conn: Connection) -> tuple[str, ...]:
        return MigrationContext.configure(conn).get_current_heads()

    async def check() -> Observation:
        current = frozenset(await _on_connection(engine, current_heads))
        if not current:
            output = f"database has no alembic revision, head is {head}: run `alembic upgrade head`"
            return Observation(status="fail", output=output)
        value = _revisions(current)
        if current == heads:
            return Observation(value=value)
        if current - known:
            output = (
                f"database at {value}, which these migrations do not contain (head is {head}): "
                "the database is newer than the deployed code"
            )
        else:
            output = f"database at {value}, head is {head}: run `alembic upgrade head`"
        return Observation(value=value, status="fail", output=output)

    return hinted(check, measurement="revision", component_type="datastore")


def _require_engine(engine: object, factory: str) -> None:
    try:
        from sqlalchemy.engine import Engine
        from sqlalchemy.ext.asyncio import AsyncEngine
    except ImportError as exc:
        raise ConfigurationError(
            f"{factory}() needs SQLAlchemy: pip install 'readykit[sqlalchemy]'"
        ) from exc
    if not isinstance(engine, Engine | AsyncEngine):
        raise ConfigurationError(
            f"{factory}() takes a SQLAlchemy engine, e.g. {factory}(create_async_engine(url)), "
            f"not {type(engine).__name__}"
        )


async def _on_connection(engine: Engine | AsyncEngine, fn: Callable[[Connection], T]) -> T:
    """Run `fn` on a connection: on the loop for async engines, in a thread for sync ones."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    if isinstance(engine, AsyncEngine):
        async with engine.connect() as conn:
            return await conn.run_sync(fn)

    def run() -> T:
        with engine.connect() as conn:
            return fn(conn)

    return await asyncio.to_thread(run)


def _alembic_config(config: object, config_type: type[Config]) -> Config:
    if isinstance(config, config_type):
        return config
    if not isinstance(config, str | os.PathLike):
        raise ConfigurationError(
            "alembic_at_head() takes an alembic Config or the path of alembic.ini or of the "
            f"migrations directory, not {type(config).__name__}"
        )
    path = Path(config)
    if path.is_dir():
        cfg = config_type()
        cfg.set_main_option("script_location", str(path))
        return cfg
    if path.is_file():
        return config_type(str(path))
    raise ConfigurationError(
        f"alembic_at_head(): {str(path)!r} does not exist; pass the path of alembic.ini "
        "or of the migrations directory"
    )


def _revisions(revisions: Iterable[str]) -> str:
    return ",".join(sorted(revisions))
