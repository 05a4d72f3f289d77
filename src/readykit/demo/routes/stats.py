"""GET /stats: how much data the demo holds and how fresh its rates are."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from readykit.demo.models import Customer, ExchangeRate, Quote
from readykit.demo.routes.deps import Session
from readykit.demo.schemas import StatsOut

router = APIRouter(tags=["stats"])


@router.get("/stats")
async def stats(session: Session) -> StatsOut:
    """Row counts and the time of the last successful rates refresh."""
    customers = await session.scalar(select(func.count()).select_from(Customer))
    quotes = await session.scalar(select(func.count()).select_from(Quote))
    rates = (
        await session.execute(
            select(
                func.count(),
                func.max(ExchangeRate.as_of),
                func.max(ExchangeRate.refreshed_at),
            )
        )
    ).one()
    return StatsOut(
        customers=customers or 0,
        quotes=quotes or 0,
        rates=rates[0],
        rates_as_of=rates[1],
        rates_refreshed_at=rates[2],
    )
