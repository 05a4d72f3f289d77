"""The demo's exporters and erasers: the demo user's customers and quotes.

The demo has one user, who keeps every customer and quote; a real service would select the
subject's own rows. Erasing anonymises customers (their quotes refer to them) and keeps quotes,
which accounting law makes a business keep: they are reported as retained, with the reason.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from readykit.demo.models import Customer, Quote
from readykit.kit import ReadyKit

QUOTES_KEPT = "quotes are kept 5 years for accounting; their customer is anonymised"


def register_privacy(kit: ReadyKit, sessions: async_sessionmaker[AsyncSession], user: str) -> None:
    """Exporters and erasers for `user:<user>`, the owner of the demo's data."""
    owner = f"user:{user}"

    @kit.privacy.exporter("customers")
    async def export_customers(subject: str) -> list[dict[str, Any]]:
        if subject != owner:
            return []
        async with sessions() as session:
            rows = await session.scalars(select(Customer).order_by(Customer.id))
            return [
                {
                    "id": c.id,
                    "name": c.name,
                    "email": c.email,
                    "created_at": c.created_at.isoformat(),
                }
                for c in rows
            ]

    @kit.privacy.exporter("quotes")
    async def export_quotes(subject: str) -> list[dict[str, Any]]:
        if subject != owner:
            return []
        async with sessions() as session:
            quotes = await session.scalars(
                select(Quote).options(selectinload(Quote.lines)).order_by(Quote.id)
            )
            return [
                {
                    "id": q.id,
                    "customer_id": q.customer_id,
                    "currency": q.currency,
                    "created_at": q.created_at.isoformat(),
                    "lines": [
                        {
                            "description": li.description,
                            "quantity": li.quantity,
                            "unit_price": str(li.unit_price),
                        }
                        for li in q.lines
                    ],
                }
                for q in quotes
            ]

    @kit.privacy.eraser("customers")
    async def erase_customers(subject: str) -> dict[str, Any]:
        if subject != owner:
            return {"removed": 0}
        async with sessions() as session, session.begin():
            customers = list(await session.scalars(select(Customer)))
            for c in customers:
                tag = hashlib.sha256(c.email.encode()).hexdigest()[:12]
                await session.execute(
                    update(Customer)
                    .where(Customer.id == c.id)
                    .values(name="erased", email=f"erased-{tag}@invalid")
                )
        return {"removed": len(customers)}

    @kit.privacy.eraser("quotes")
    async def erase_quotes(subject: str) -> dict[str, Any]:
        if subject != owner:
            return {"removed": 0}
        async with sessions() as session:
            kept = await session.scalar(select(func.count()).select_from(Quote))
        return {"removed": 0, "retained": int(kept or 0), "reasons": [QUOTES_KEPT]}
