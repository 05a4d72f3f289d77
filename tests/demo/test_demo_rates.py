"""Loading exchange rates: fetching, atomic replacement, and the refresh job."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from readykit.demo.models import ExchangeRate
from readykit.demo.rates import (
    MAX_DOCUMENT_BYTES,
    fetch_document,
    refresh_forever,
    refresh_rates,
    replace_rates,
)
from readykit.demo.settings import BUNDLED_RATES
from readykit.demo.xml_daily import Rate, RatesFileError, RatesSnapshot

pytestmark = pytest.mark.anyio

MakeXml = Callable[..., bytes]
T1 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
USD_90 = ("USD", "840", "1", "Доллар США", "90,0000")
XDR = ("XDR", "960", "1", "СДР (специальные права заимствования)", "108,1234")


async def _stored(engine: AsyncEngine) -> dict[str, tuple[Decimal, int, date, datetime]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(ExchangeRate.__table__))
        return {r.code: (r.value, r.nominal, r.as_of, r.refreshed_at) for r in rows}


async def test_refresh_loads_the_bundled_file(engine: AsyncEngine) -> None:
    snapshot = await refresh_rates(engine, BUNDLED_RATES.as_uri(), clock=lambda: T1)

    stored = await _stored(engine)
    assert set(stored) == {r.code for r in snapshot.rates}
    assert stored["USD"] == (Decimal("81.5000"), 1, date(2026, 11, 22), T1)
    assert stored["JPY"][:2] == (Decimal("52.7410"), 100)


async def test_refresh_replaces_the_whole_table(
    engine: AsyncEngine, tmp_path: Path, make_xml: MakeXml
) -> None:
    await refresh_rates(engine, str(BUNDLED_RATES), clock=lambda: T1)
    second = tmp_path / "second.xml"
    second.write_bytes(make_xml([USD_90, XDR], date="23.11.2026"))

    await refresh_rates(engine, str(second), clock=lambda: T2)

    assert await _stored(engine) == {
        "USD": (Decimal("90.0000"), 1, date(2026, 11, 23), T2),
        "XDR": (Decimal("108.1234"), 1, date(2026, 11, 23), T2),
    }


async def test_a_bad_file_changes_nothing(
    engine: AsyncEngine, tmp_path: Path, make_xml: MakeXml
) -> None:
    await refresh_rates(engine, str(BUNDLED_RATES), clock=lambda: T1)
    before = await _stored(engine)
    bad = tmp_path / "bad.xml"
    # the first entry is fine, the second is not: nothing at all may be applied
    bad.write_bytes(make_xml([USD_90, ("EUR", "978", "1", "Евро", "n/a")]))

    with pytest.raises(RatesFileError, match=r"Valute #2 \(EUR\)"):
        await refresh_rates(engine, str(bad), clock=lambda: T2)

    assert await _stored(engine) == before


async def test_a_failed_write_is_rolled_back(engine: AsyncEngine) -> None:
    await refresh_rates(engine, str(BUNDLED_RATES), clock=lambda: T1)
    before = await _stored(engine)
    usd = Rate("USD", "840", "Доллар США", 1, Decimal("90"))
    duplicate = RatesSnapshot(date(2026, 11, 23), (usd, usd))  # the parser would refuse this

    with pytest.raises(IntegrityError):
        await replace_rates(engine, duplicate, T2)

    assert await _stored(engine) == before


async def test_fetch_reads_paths_and_file_urls(tmp_path: Path) -> None:
    path = tmp_path / "курсы валют.xml"
    path.write_bytes(b"<ValCurs/>")

    assert await fetch_document(str(path)) == b"<ValCurs/>"
    assert await fetch_document(path.as_uri()) == b"<ValCurs/>"


async def test_fetch_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RatesFileError, match="cannot read rates from"):
        await fetch_document(str(tmp_path / "missing.xml"))


async def test_fetch_refuses_unknown_schemes() -> None:
    with pytest.raises(RatesFileError, match=r"use http\(s\)://, file:// or a path"):
        await fetch_document("ftp://example.invalid/XML_daily.xml")


async def test_fetch_refuses_oversized_files(tmp_path: Path) -> None:
    path = tmp_path / "huge.xml"
    path.write_bytes(b" " * (MAX_DOCUMENT_BYTES + 1))

    with pytest.raises(RatesFileError, match="larger than"):
        await fetch_document(str(path))


@pytest.fixture
async def rates_server(make_xml: MakeXml) -> AsyncIterator[TestServer]:
    async def daily(request: web.Request) -> web.Response:
        return web.Response(body=make_xml([USD_90]), content_type="application/xml")

    app = web.Application()
    app.router.add_get("/scripts/XML_daily.asp", daily)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_refresh_over_http(engine: AsyncEngine, rates_server: TestServer) -> None:
    url = str(rates_server.make_url("/scripts/XML_daily.asp"))

    await refresh_rates(engine, url, clock=lambda: T1)

    assert set(await _stored(engine)) == {"USD"}


async def test_http_errors_are_rates_errors(rates_server: TestServer) -> None:
    with pytest.raises(RatesFileError, match="answered 404, expected 200"):
        await fetch_document(str(rates_server.make_url("/nothing-here")))


class _Stop(Exception):
    pass


async def test_refresh_job_survives_a_failed_refresh(
    engine: AsyncEngine, tmp_path: Path, make_xml: MakeXml, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "rates.xml"
    source.write_bytes(make_xml())
    sleeps: list[float] = []
    after_failure: dict[str, tuple[Decimal, int, date, datetime]] = {}

    async def sleep(seconds: float) -> None:
        """Stands in for asyncio.sleep: each wake-up prepares what the next refresh reads."""
        sleeps.append(seconds)
        if len(sleeps) == 2:
            source.write_bytes(b"<html>maintenance</html>")
        elif len(sleeps) == 3:
            after_failure.update(await _stored(engine))
            source.write_bytes(make_xml([USD_90, XDR]))
        elif len(sleeps) == 4:
            raise _Stop

    with caplog.at_level(logging.ERROR, "readykit.demo"), pytest.raises(_Stop):
        await refresh_forever(engine, str(source), 600.0, sleep=sleep, clock=lambda: T1)

    assert sleeps == [600.0] * 4
    assert set(after_failure) == {"USD", "EUR", "JPY"}  # the failure kept the first load
    assert set(await _stored(engine)) == {"USD", "XDR"}
    assert "refresh from" in caplog.text
    assert "keeping the previous rates" in caplog.text
