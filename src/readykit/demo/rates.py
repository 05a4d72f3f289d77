"""Exchange rates: fetch an XML_daily document, swap the rates table atomically, on a timer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import aiohttp
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from readykit.demo.models import ExchangeRate
from readykit.demo.xml_daily import RatesFileError, RatesSnapshot, parse_xml_daily

logger = logging.getLogger("readykit.demo")

MAX_DOCUMENT_BYTES = 1_000_000  # a real XML_daily is ~10 kB
HTTP_TIMEOUT_S = 10.0

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[object]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _read_file(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise RatesFileError(f"rates file {path} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return data


async def _read_http(url: str) -> bytes:
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        if response.status != 200:
            raise RatesFileError(f"GET {url} answered {response.status}, expected 200")
        data = await response.content.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise RatesFileError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
    return data


async def fetch_document(url: str) -> bytes:
    """The bytes at `url`: http(s)://, file:// or a plain path. Errors are RatesFileError."""
    parts = urlsplit(url)
    try:
        if parts.scheme in ("http", "https"):
            return await _read_http(url)
        if parts.scheme == "file":
            path = Path(url2pathname(unquote(parts.path)))
        elif len(parts.scheme) <= 1:  # no scheme, or a Windows drive letter
            path = Path(url)
        else:
            raise RatesFileError(f"rates URL {url!r}: use http(s)://, file:// or a path")
        return await asyncio.to_thread(_read_file, path)
    except (OSError, aiohttp.ClientError, TimeoutError) as exc:
        raise RatesFileError(f"cannot read rates from {url}: {exc!r}") from exc


async def replace_rates(
    engine: AsyncEngine, snapshot: RatesSnapshot, refreshed_at: datetime
) -> None:
    """Swap the whole rates table for `snapshot` in one transaction: readers see old or new."""
    rows = [
        {
            "code": r.code,
            "num_code": r.num_code,
            "name": r.name,
            "nominal": r.nominal,
            "value": r.value,
            "as_of": snapshot.as_of,
            "refreshed_at": refreshed_at,
        }
        for r in snapshot.rates
    ]
    async with engine.begin() as conn:
        await conn.execute(delete(ExchangeRate))
        await conn.execute(insert(ExchangeRate), rows)


async def refresh_rates(engine: AsyncEngine, url: str, *, clock: Clock = _utcnow) -> RatesSnapshot:
    """Fetch, parse and store the rates at `url`; on any error the table is left untouched."""
    snapshot = parse_xml_daily(await fetch_document(url))
    await replace_rates(engine, snapshot, clock())
    logger.info("loaded %d exchange rates of %s from %s", len(snapshot.rates), snapshot.as_of, url)
    return snapshot


async def refresh_forever(
    engine: AsyncEngine,
    url: str,
    interval_s: float,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = _utcnow,
    on_refresh: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Refresh every `interval_s` seconds until cancelled; a failed refresh keeps the old rates.

    `on_refresh` runs after each successful refresh (the demo drops its cached rates there).
    """
    while True:
        await sleep(interval_s)
        try:
            await refresh_rates(engine, url, clock=clock)
            if on_refresh is not None:
                await on_refresh()
        except Exception:
            logger.exception(
                "exchange rate refresh from %s failed; keeping the previous rates", url
            )
