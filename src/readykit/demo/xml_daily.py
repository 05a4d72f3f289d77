"""Parse the Bank of Russia `XML_daily` rates document: a pure function, all or nothing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from readykit.errors import ReadykitError

_CODE = re.compile(r"[A-Z]{3}")
_NUM_CODE = re.compile(r"[0-9]{3}")
_NUMBER = re.compile(r"[0-9]+(?:,[0-9]+)?")


class RatesFileError(ReadykitError):
    """A rates document is unreadable or malformed; nothing was loaded from it."""


@dataclass(frozen=True, slots=True)
class Rate:
    """One currency: `value` roubles buy `nominal` units of `code`."""

    code: str
    num_code: str
    name: str
    nominal: int
    value: Decimal

    @property
    def per_unit(self) -> Decimal:
        """Roubles for one unit of the currency."""
        return self.value / self.nominal


@dataclass(frozen=True, slots=True)
class RatesSnapshot:
    """Every rate of one XML_daily document, for the date it states."""

    as_of: date
    rates: tuple[Rate, ...]


def _number(text: str, what: str) -> Decimal:
    """'81,5000' (comma decimal separator, as the Bank of Russia writes it) → Decimal."""
    if not _NUMBER.fullmatch(text):
        raise RatesFileError(f"{what} {text!r} is not a number like 81,5000")
    return Decimal(text.replace(",", "."))


def _field(valute: ET.Element, tag: str, where: str) -> str:
    text = valute.findtext(tag)
    if text is None or not text.strip():
        raise RatesFileError(f"{where}: <{tag}> is missing or empty")
    return text.strip()


def _rate(valute: ET.Element, index: int) -> Rate:
    where = f"Valute #{index}"
    code = _field(valute, "CharCode", where)
    where = f"Valute #{index} ({code})"
    if not _CODE.fullmatch(code):
        raise RatesFileError(f"{where}: CharCode must be three capital letters")
    num_code = _field(valute, "NumCode", where)
    if not _NUM_CODE.fullmatch(num_code):
        raise RatesFileError(f"{where}: NumCode {num_code!r} must be three digits")
    nominal_text = _field(valute, "Nominal", where)
    if not nominal_text.isascii() or not nominal_text.isdigit() or int(nominal_text) == 0:
        raise RatesFileError(f"{where}: Nominal {nominal_text!r} must be a positive integer")
    value = _number(_field(valute, "Value", where), f"{where}: Value")
    if value <= 0:
        raise RatesFileError(f"{where}: Value must be positive")
    return Rate(code, num_code, _field(valute, "Name", where), int(nominal_text), value)


def parse_xml_daily(data: bytes) -> RatesSnapshot:
    """Parse an XML_daily document (its own encoding declaration, usually windows-1251).

    Raises RatesFileError naming the first problem; a document type or entity declaration is
    refused outright, so no entity expansion can happen.
    """
    head = data.upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise RatesFileError("rates document refused: it declares a DOCTYPE or ENTITY")
    if b"\x00" in data:
        raise RatesFileError("rates document refused: expected windows-1251 or UTF-8, not UTF-16")
    try:
        root = ET.fromstring(data)  # noqa: S314 - DOCTYPE/ENTITY refused above
    except ET.ParseError as exc:
        raise RatesFileError(f"rates document is not well-formed XML: {exc}") from exc
    if root.tag != "ValCurs":
        raise RatesFileError(f"rates document root is <{root.tag}>, expected <ValCurs>")
    try:
        as_of = datetime.strptime(root.get("Date", ""), "%d.%m.%Y").date()
    except ValueError as exc:
        raise RatesFileError("<ValCurs Date> must be a date like 22.11.2026") from exc
    rates = tuple(_rate(v, i) for i, v in enumerate(root.findall("Valute"), start=1))
    if not rates:
        raise RatesFileError("rates document has no <Valute> entries")
    codes = [r.code for r in rates]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise RatesFileError(f"rates document lists {', '.join(duplicates)} more than once")
    return RatesSnapshot(as_of, rates)
