"""Request and response bodies of the demo API (money is Decimal, sent as JSON strings)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
CurrencyCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")
]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class CustomerIn(BaseModel):
    name: Annotated[Text, Field(max_length=200)]
    email: Email


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str
    created_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )


class LineIn(BaseModel):
    description: Annotated[Text, Field(max_length=500)]
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Decimal = Field(ge=0, max_digits=16, decimal_places=2, description="In RUB.")


class QuoteIn(BaseModel):
    customer_id: int = Field(ge=1)
    currency: CurrencyCode = Field(description="ISO 4217 code: RUB or one of GET /rates.")
    lines: list[LineIn] = Field(min_length=1, max_length=100)


class LineOut(BaseModel):
    description: str
    quantity: int
    unit_price: Decimal
    total: Decimal


class QuoteOut(BaseModel):
    id: int
    customer_id: int
    currency: str
    created_at: datetime
    lines: list[LineOut]
    total_rub: Decimal
    rate: Decimal | None = Field(description="RUB per one unit of `currency`; null if unknown.")
    rates_as_of: date | None
    total: Decimal | None = Field(description="`total_rub` in `currency`; null without a rate.")


class RateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    num_code: str
    name: str
    nominal: int
    value: Decimal = Field(description="RUB for `nominal` units.")
    per_unit: Decimal = Field(description="RUB for one unit.")
    as_of: date


class RatesOut(BaseModel):
    as_of: date | None
    refreshed_at: datetime | None
    rates: list[RateOut]


class StatsOut(BaseModel):
    customers: int
    quotes: int
    rates: int
    rates_as_of: date | None
    rates_refreshed_at: datetime | None
