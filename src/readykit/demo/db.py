"""The async engine, and the sync URL the migrations run with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# async driver → the sync driver Alembic uses for the same database
_SYNC_DRIVERS = {"aiosqlite": "", "asyncpg": "psycopg", "psycopg_async": "psycopg"}


def sync_url(url: str | URL) -> URL:
    """The same database with a synchronous driver: sqlite+aiosqlite → sqlite, asyncpg → psycopg."""
    parsed = make_url(url)
    driver = _SYNC_DRIVERS.get(parsed.get_driver_name())
    if driver is None:  # already synchronous
        return parsed
    backend = parsed.get_backend_name()
    return parsed.set(drivername=f"{backend}+{driver}" if driver else backend)


def ensure_sqlite_dir(url: str | URL) -> None:
    """Create the directory of a SQLite database file, so a fresh checkout just works."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # a URI filename: leave it to SQLite
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str | URL) -> AsyncEngine:
    """An async engine; on SQLite, foreign keys are enforced as on any other database."""
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_foreign_keys)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
