"""The XML_daily parser: encodings, comma decimals, nominals, and refusal of bad documents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from readykit.demo.settings import BUNDLED_RATES
from readykit.demo.xml_daily import RatesFileError, parse_xml_daily

MakeXml = Callable[..., bytes]
USD = ("USD", "840", "1", "Доллар США", "81,5000")
EUR = ("EUR", "978", "1", "Евро", "94,2130")
JPY = ("JPY", "392", "100", "Японских иен", "52,7410")


def test_bundled_file_parses() -> None:
    data = BUNDLED_RATES.read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="windows-1251"?>')

    snapshot = parse_xml_daily(data)

    assert snapshot.as_of == date(2026, 11, 22)
    codes = [r.code for r in snapshot.rates]
    assert len(codes) >= 10
    assert {"USD", "EUR", "CNY", "JPY"} <= set(codes)
    usd = next(r for r in snapshot.rates if r.code == "USD")
    assert (usd.num_code, usd.nominal, usd.value, usd.name) == (
        "840",
        1,
        Decimal("81.5000"),
        "Доллар США",
    )
    assert any(r.nominal > 1 for r in snapshot.rates)


def test_windows_1251_names_are_decoded(make_xml: MakeXml) -> None:
    data = make_xml([EUR])
    assert "Евро".encode("cp1251") in data  # really single-byte Cyrillic, not UTF-8

    (rate,) = parse_xml_daily(data).rates

    assert rate.name == "Евро"


def test_utf8_documents_are_read_too(make_xml: MakeXml) -> None:
    (rate,) = parse_xml_daily(make_xml([USD], encoding="utf-8")).rates

    assert rate.name == "Доллар США"


def test_comma_decimal_separator_gives_exact_decimal(make_xml: MakeXml) -> None:
    (rate,) = parse_xml_daily(make_xml([("USD", "840", "1", "Доллар США", "81,1234")])).rates

    assert rate.value == Decimal("81.1234")
    assert isinstance(rate.value, Decimal)


@pytest.mark.parametrize(
    ("nominal", "value", "per_unit"),
    [
        ("1", "81,5000", Decimal("81.5")),
        ("10", "19,2150", Decimal("1.9215")),
        ("100", "52,7410", Decimal("0.52741")),
        ("1000", "56,0120", Decimal("0.056012")),
    ],
)
def test_value_is_for_nominal_units(
    make_xml: MakeXml, nominal: str, value: str, per_unit: Decimal
) -> None:
    (rate,) = parse_xml_daily(make_xml([("XXX", "999", nominal, "test", value)])).rates

    assert rate.nominal == int(nominal)
    assert rate.per_unit == per_unit


def test_rates_keep_document_order_and_date(make_xml: MakeXml) -> None:
    snapshot = parse_xml_daily(make_xml([JPY, USD], date="01.02.2027"))

    assert snapshot.as_of == date(2027, 2, 1)
    assert [r.code for r in snapshot.rates] == ["JPY", "USD"]


BILLION_LAUGHS = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>\n'


@pytest.mark.parametrize(
    "prolog",
    [BILLION_LAUGHS, '<!doctype ValCurs SYSTEM "http://example.invalid/x.dtd">\n'],
    ids=["entities", "external-dtd-lowercase"],
)
def test_doctype_and_entities_are_refused(make_xml: MakeXml, prolog: str) -> None:
    with pytest.raises(RatesFileError, match="DOCTYPE or ENTITY"):
        parse_xml_daily(make_xml([USD], prolog=prolog))


def test_utf16_is_refused(make_xml: MakeXml) -> None:
    with pytest.raises(RatesFileError, match="UTF-16"):
        parse_xml_daily(make_xml([USD], encoding="utf-16"))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("USD", "840", "1", "Доллар США", "81.5000")], r"Value '81.5000' is not a number"),
        ([("USD", "840", "1", "Доллар США", "1 081,50")], "is not a number"),
        ([("USD", "840", "1", "Доллар США", "0,0000")], "Value must be positive"),
        ([("USD", "840", "0", "Доллар США", "81,5")], "Nominal '0' must be a positive integer"),
        ([("USD", "840", "-1", "Доллар США", "81,5")], "Nominal '-1'"),
        ([("usd", "840", "1", "Доллар США", "81,5")], "CharCode must be three capital"),
        ([("USD", "84", "1", "Доллар США", "81,5")], "NumCode '84' must be three digits"),
        ([("USD", "840", "1", "", "81,5")], r"Valute #1 \(USD\): <Name> is missing"),
        ([USD, ("EUR", "978", "1", "Евро", "abc")], r"Valute #2 \(EUR\): Value 'abc'"),
        ([USD, EUR, USD], "lists USD more than once"),
        ([], "no <Valute> entries"),
    ],
)
def test_malformed_entries_are_refused(
    make_xml: MakeXml, rows: list[tuple[str, ...]], expected: str
) -> None:
    with pytest.raises(RatesFileError, match=expected):
        parse_xml_daily(make_xml(rows))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "not well-formed"),
        (b"<ValCurs Date='22.11.2026'><Valute>", "not well-formed"),
        (b"not xml at all", "not well-formed"),
        (b"<Rates Date='22.11.2026'/>", "root is <Rates>, expected <ValCurs>"),
        (b"<ValCurs><Valute/></ValCurs>", "Date> must be a date"),
        (b"<ValCurs Date='2026-11-22'/>", "Date> must be a date"),
        (b"<ValCurs Date='22.11.2026'><Valute/></ValCurs>", "<CharCode> is missing"),
    ],
)
def test_malformed_documents_are_refused(data: bytes, expected: str) -> None:
    with pytest.raises(RatesFileError, match=expected):
        parse_xml_daily(data)
