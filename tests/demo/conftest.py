"""Fixtures of the demo's tests: settings on a temporary SQLite file, XML_daily documents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from readykit.demo import DemoSettings
from readykit.demo.db import create_engine, ensure_sqlite_dir
from readykit.demo.migrate import alembic_config, upgrade

# (CharCode, NumCode, Nominal, Name, Value) as the Bank of Russia writes them
Row = tuple[str, str, str, str, str]

DEFAULT_ROWS: tuple[Row, ...] = (
    ("USD", "840", "1", "Доллар США", "81,5000"),
    ("EUR", "978", "1", "Евро", "94,2130"),
    ("JPY", "392", "100", "Японских иен", "52,7410"),
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def xml_daily(
    rows: Sequence[Row] = DEFAULT_ROWS,
    *,
    date: str = "22.11.2026",
    encoding: str = "windows-1251",
    prolog: str = "",
) -> bytes:
    """An XML_daily document with `rows`, encoded as the declaration says."""
    valutes = "".join(
        f'<Valute ID="R{i:05d}"><NumCode>{num}</NumCode><CharCode>{code}</CharCode>'
        f"<Nominal>{nominal}</Nominal><Name>{name}</Name><Value>{value}</Value></Valute>\n"
        for i, (code, num, nominal, name, value) in enumerate(rows)
    )
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n{prolog}'
        f'<ValCurs Date="{date}" name="Foreign Currency Market">\n{valutes}</ValCurs>\n'
    )
    return text.encode(encoding)


@pytest.fixture
def make_xml() -> Callable[..., bytes]:
    """`make_xml(rows, date=..., encoding=..., prolog=...)`: an XML_daily document as bytes."""
    return xml_daily


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'demo.db'}"


@pytest.fixture
def demo_settings(database_url: str) -> DemoSettings:
    return DemoSettings(database_url=database_url, secret=SecretStr("test-secret"))


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """`database_url`, its directory created and the migrations applied."""
    ensure_sqlite_dir(database_url)
    upgrade(alembic_config(database_url))
    return database_url


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine on a migrated, empty database; disposed afterwards."""
    engine = create_engine(migrated_url)
    yield engine
    await engine.dispose()
