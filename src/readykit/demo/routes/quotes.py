"""Quotes: line items priced in roubles, totals converted at the stored exchange rates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fastapi import APIRouter, HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from readykit.demo.models import Customer, ExchangeRate, Quote, QuoteLine
from readykit.demo.money import RUB, convert_rub, line_total, total_rub
from readykit.demo.routes.deps import Session
from readykit.demo.schemas import LineOut, QuoteIn, QuoteOut

router = APIRouter(prefix="/quotes", tags=["quotes"])


async def _rate(session: AsyncSession, currency: str) -> ExchangeRate | None:
    return None if currency == RUB else await session.get(ExchangeRate, currency)


def _quote_out(quote: Quote, rate: ExchangeRate | None) -> QuoteOut:
    rub = total_rub((line.quantity, line.unit_price) for line in quote.lines)
    per_unit = rate.per_unit if rate is not None else None
    converted: Decimal | None = None
    if quote.currency == RUB:
        converted = rub
    elif per_unit is not None:
        converted = convert_rub(rub, per_unit)
    return QuoteOut(
        id=quote.id,
        customer_id=quote.customer_id,
        currency=quote.currency,
        created_at=quote.created_at,
        lines=[
            LineOut(
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                total=line_total(line.quantity, line.unit_price),
            )
            for line in quote.lines
        ],
        total_rub=rub,
        rate=per_unit,
        rates_as_of=rate.as_of if rate is not None else None,
        total=converted,
    )


@router.post("", status_code=201, responses={422: {"description": "Unknown customer or currency"}})
async def create_quote(body: QuoteIn, session: Session) -> QuoteOut:
    """Price a list of line items for a customer, in RUB and in the quote's currency."""
    if await session.get(Customer, body.customer_id) is None:
        raise HTTPException(422, f"customer {body.customer_id} does not exist")
    rate = await _rate(session, body.currency)
    if body.currency != RUB and rate is None:
        raise HTTPException(422, f"no exchange rate for {body.currency}; see GET /rates")
    quote = Quote(
        customer_id=body.customer_id,
        currency=body.currency,
        created_at=datetime.now(UTC),
        lines=[
            QuoteLine(
                position=i,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for i, line in enumerate(body.lines)
        ],
    )
    session.add(quote)
    await session.commit()
    return _quote_out(quote, rate)


@router.get("/{quote_id}", responses={404: {"description": "No such quote"}})
async def get_quote(quote_id: int, session: Session) -> QuoteOut:
    """One quote with its total, converted at today's stored rate."""
    quote = await session.get(Quote, quote_id)
    if quote is None:
        raise HTTPException(404, f"quote {quote_id} not found")
    return _quote_out(quote, await _rate(session, quote.currency))
