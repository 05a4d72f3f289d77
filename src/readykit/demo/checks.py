"""The demo's readiness checks, registered in one place from readykit's built-in checks."""

from __future__ import annotations

from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from readykit import ReadyKit
from readykit.health.checks import alembic_at_head, row_count, sqlalchemy_engine


def register_checks(kit: ReadyKit, engine: AsyncEngine, alembic_config: Config) -> None:
    """Readiness: the database answers, its schema is current, exchange rates are loaded."""
    kit.add_check("database", sqlalchemy_engine(engine), timeout=1.0)
    kit.add_check("migrations", alembic_at_head(engine, alembic_config), timeout=2.0)
    kit.add_check("rates", row_count(engine, "rates"), timeout=1.0)
