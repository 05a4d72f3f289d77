"""Alembic, driven from code: the migrations ship inside the package, no alembic.ini needed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL

from readykit.demo.db import sync_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str | URL) -> Config:
    """An Alembic config for the demo's migrations against `database_url` (async URLs welcome)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    url = sync_url(database_url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser escaping
    return config


def upgrade(config: Config, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking: call it through `asyncio.to_thread`)."""
    command.upgrade(config, revision)


def downgrade(config: Config, revision: str) -> None:
    """Revert migrations down to `revision` ("base" empties the schema)."""
    command.downgrade(config, revision)
