"""Column types that keep money exact and datetimes aware on every database, SQLite included."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine


class _DecimalText(TypeDecorator[Decimal]):
    """Decimal stored as text: SQLite has no decimal type and would round through a float."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def money(precision: int = 18, scale: int = 6) -> TypeEngine[Decimal]:
    """NUMERIC where the database has it, exact text on SQLite."""
    numeric: TypeEngine[Decimal] = Numeric(precision, scale, asdecimal=True)
    return numeric.with_variant(_DecimalText(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime; SQLite returns naive values, so UTC is attached on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
