"""The bundled Alembic migrations, run from code on a fresh SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from readykit.demo.db import ensure_sqlite_dir, sync_url
from readykit.demo.migrate import alembic_config, downgrade, upgrade
from readykit.demo.models import Base

TABLES = {"customers", "quotes", "quote_lines", "rates"}


@pytest.fixture
def sync_engine(database_url: str) -> Iterator[sa.Engine]:
    ensure_sqlite_dir(database_url)
    engine = sa.create_engine(sync_url(database_url))
    yield engine
    engine.dispose()


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_upgrade_creates_the_schema_on_a_fresh_database(
    database_url: str, sync_engine: sa.Engine
) -> None:
    config = alembic_config(database_url)
    head = ScriptDirectory.from_config(config).get_current_head()

    upgrade(config)

    assert _tables(sync_engine) == TABLES
    assert _revision(sync_engine) == head


def test_downgrade_and_upgrade_round_trip(database_url: str, sync_engine: sa.Engine) -> None:
    config = alembic_config(database_url)
    upgrade(config)
    with sync_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customers (name, email, created_at)"
                " VALUES ('a', 'a@b.c', '2026-11-22')"
            )
        )

    downgrade(config, "base")
    assert _tables(sync_engine) == set()
    assert _revision(sync_engine) is None

    upgrade(config)
    assert _tables(sync_engine) == TABLES
    with sync_engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM customers")) == 0


def test_models_match_the_migrations(database_url: str, sync_engine: sa.Engine) -> None:
    upgrade(alembic_config(database_url))

    with sync_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_there_is_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))

    assert len(script.get_heads()) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///x/demo.db", "sqlite:///x/demo.db"),
        ("sqlite:///x/demo.db", "sqlite:///x/demo.db"),
        ("postgresql+asyncpg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg_async://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
    ],
)
def test_sync_url_swaps_the_async_driver(url: str, expected: str) -> None:
    assert sync_url(url).render_as_string(hide_password=False) == expected


def test_alembic_config_survives_percent_signs_in_passwords() -> None:
    config = alembic_config("postgresql+asyncpg://u:p%25ss@h/db")

    assert config.get_main_option("sqlalchemy.url") == "postgresql+psycopg://u:p%25ss@h/db"
    assert Path(config.get_main_option("script_location") or "").joinpath("env.py").is_file()


def test_ensure_sqlite_dir_creates_the_parent(tmp_path: Path) -> None:
    ensure_sqlite_dir(f"sqlite+aiosqlite:///{tmp_path}/a/b/demo.db")

    assert (tmp_path / "a" / "b").is_dir()
    assert not (tmp_path / "a" / "b" / "demo.db").exists()


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://h/db"]
)
def test_ensure_sqlite_dir_leaves_other_urls_alone(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    ensure_sqlite_dir(url)

    assert list(tmp_path.iterdir()) == []
