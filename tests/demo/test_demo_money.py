"""Quote arithmetic: exact Decimal totals in roubles, one rounding, conversion at stored rates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from readykit.demo.money import convert_rub, line_total, total_rub
from readykit.demo.xml_daily import Rate


def test_line_total_is_exact() -> None:
    assert line_total(3, Decimal("100.10")) == Decimal("300.30")


def test_total_has_no_float_error() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in binary floating point
    assert total_rub([(1, Decimal("0.10")), (1, Decimal("0.20"))]) == Decimal("0.30")


def test_total_sums_quantities_times_prices() -> None:
    lines = [(3, Decimal("100.10")), (2, Decimal("0.99")), (1000, Decimal("1.01"))]

    assert total_rub(lines) == Decimal("1312.28")


def test_total_of_nothing_is_zero_kopecks() -> None:
    assert total_rub([]) == Decimal("0.00")
    assert str(total_rub([])) == "0.00"


def test_conversion_rounds_to_cents() -> None:
    # 300.40 / 81.5 = 3.68588...
    assert convert_rub(Decimal("300.40"), Decimal("81.5")) == Decimal("3.69")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("0.25", "0.02"), ("0.35", "0.04"), ("0.45", "0.04")],
)
def test_conversion_rounds_half_to_even(amount: str, expected: str) -> None:
    assert convert_rub(Decimal(amount), Decimal("10")) == Decimal(expected)


def test_conversion_uses_the_rate_per_unit_not_per_nominal() -> None:
    jpy = Rate("JPY", "392", "Японских иен", 100, Decimal("52.7410"))

    # 1000 RUB at 52.7410 RUB per 100 JPY is 1896.06 JPY, not 18.96
    assert convert_rub(Decimal("1000.00"), jpy.per_unit) == Decimal("1896.06")


def test_conversion_round_trip_stays_within_a_cent() -> None:
    rate = Decimal("94.213")
    converted = convert_rub(Decimal("12345.67"), rate)

    assert abs(converted * rate - Decimal("12345.67")) <= rate * Decimal("0.005")


@pytest.mark.parametrize("rate", [Decimal(0), Decimal("-1")])
def test_conversion_refuses_non_positive_rates(rate: Decimal) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        convert_rub(Decimal(1), rate)
