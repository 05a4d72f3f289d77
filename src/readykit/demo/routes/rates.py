"""Exchange rates as last loaded from the XML_daily document."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from readykit.demo.models import ExchangeRate
from readykit.demo.routes.deps import Session
from readykit.demo.schemas import RateOut, RatesOut

router = APIRouter(prefix="/rates", tags=["rates"])


@router.get("")
async def list_rates(session: Session) -> RatesOut:
    """Every stored rate, by currency code."""
    rates = list(await session.scalars(select(ExchangeRate).order_by(ExchangeRate.code)))
    return RatesOut(
        as_of=max((r.as_of for r in rates), default=None),
        refreshed_at=max((r.refreshed_at for r in rates), default=None),
        rates=[RateOut.model_validate(r) for r in rates],
    )


@router.get("/{code}", responses={404: {"description": "No rate for this currency"}})
async def get_rate(code: str, session: Session) -> RateOut:
    """The rate of one currency (ISO 4217 code, any case)."""
    rate = await session.get(ExchangeRate, code.upper())
    if rate is None:
        raise HTTPException(404, f"no exchange rate for {code.upper()}; see GET /rates")
    return RateOut.model_validate(rate)
