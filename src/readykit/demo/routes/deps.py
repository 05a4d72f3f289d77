"""What every route needs: the demo's state and a database session per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from alembic.config import Config
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from readykit.demo.settings import DemoSettings


@dataclass(frozen=True)
class DemoState:
    """Everything the demo builds once and shares: kept on `app.state.demo`."""

    settings: DemoSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    alembic: Config


def get_state(request: Request) -> DemoState:
    state = request.app.state.demo
    assert isinstance(state, DemoState)
    return state


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_state(request).sessions() as session:
        yield session


State = Annotated[DemoState, Depends(get_state)]
Session = Annotated[AsyncSession, Depends(get_session)]
