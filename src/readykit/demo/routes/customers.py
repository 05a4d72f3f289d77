"""Customers: create, fetch one, list in pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from readykit.demo.models import Customer
from readykit.demo.routes.deps import Session
from readykit.demo.schemas import CustomerIn, CustomerOut, CustomerPage

router = APIRouter(prefix="/customers", tags=["customers"])


@router.post("", status_code=201, responses={409: {"description": "Email already registered"}})
async def create_customer(body: CustomerIn, session: Session) -> CustomerOut:
    """Register a customer; emails are unique (compared lower-cased)."""
    customer = Customer(name=body.name, email=body.email, created_at=datetime.now(UTC))
    session.add(customer)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(409, f"a customer with email {body.email} already exists") from None
    return CustomerOut.model_validate(customer)


@router.get("/{customer_id}", responses={404: {"description": "No such customer"}})
async def get_customer(customer_id: int, session: Session) -> CustomerOut:
    """One customer by id."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise HTTPException(404, f"customer {customer_id} not found")
    return CustomerOut.model_validate(customer)


@router.get("")
async def list_customers(
    session: Session,
    after: Annotated[int, Query(ge=0, description="Last id of the previous page.")] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CustomerPage:
    """Customers in id order, a page at a time (keyset pagination: stable and index-only)."""
    query = select(Customer).where(Customer.id > after).order_by(Customer.id).limit(limit + 1)
    rows = list(await session.scalars(query))
    items = [CustomerOut.model_validate(c) for c in rows[:limit]]
    next_after = items[-1].id if len(rows) > limit else None
    return CustomerPage(items=items, next_after=next_after)
