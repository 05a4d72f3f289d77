"""Quote arithmetic in Decimal: totals in roubles and conversion at the stored rates."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal

RUB = "RUB"
CENT = Decimal("0.01")


def line_total(quantity: int, unit_price: Decimal) -> Decimal:
    """The exact (unrounded) rouble amount of one line."""
    return quantity * unit_price


def total_rub(lines: Iterable[tuple[int, Decimal]]) -> Decimal:
    """Sum of (quantity, unit price) lines in roubles, rounded once to kopecks."""
    return sum((line_total(q, p) for q, p in lines), Decimal(0)).quantize(CENT, ROUND_HALF_EVEN)


def convert_rub(amount_rub: Decimal, rub_per_unit: Decimal) -> Decimal:
    """Roubles into a currency whose one unit costs `rub_per_unit` roubles, rounded to cents."""
    if rub_per_unit <= 0:
        raise ValueError(f"an exchange rate must be positive, got {rub_per_unit}")
    return (amount_rub / rub_per_unit).quantize(CENT, ROUND_HALF_EVEN)
