"""Assemble the demo: FastAPI app, database, migrations, rates job, and ReadyKit in front."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from sqlalchemy import func, select

from readykit import ReadyKit, Settings
from readykit._types import ASGIApp
from readykit.demo import migrate
from readykit.demo.auth import bearer_principal
from readykit.demo.checks import register_checks
from readykit.demo.db import create_engine, ensure_sqlite_dir, session_factory
from readykit.demo.errors import validation_problem
from readykit.demo.models import ExchangeRate
from readykit.demo.privacy import register_privacy
from readykit.demo.rates import refresh_rates
from readykit.demo.routes import customers, login, quotes, rates, stats
from readykit.demo.routes.deps import DemoState
from readykit.demo.settings import DemoSettings
from readykit.demo.xml_daily import RatesFileError

logger = logging.getLogger("readykit.demo")

SERVICE_NAME = "readykit-demo"


async def _load_rates_at_startup(state: DemoState) -> None:
    """The first load; if it fails, rates already stored from an earlier run will do."""
    try:
        await refresh_rates(state.engine, state.settings.rates_url)
    except RatesFileError as exc:
        async with state.engine.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(ExchangeRate))
        if not stored:
            raise
        logger.warning("%s; serving the %d exchange rates stored earlier", exc, stored)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Migrate and load rates (then the kit's rates.refresh job takes over); close the pool."""
    state: DemoState = app.state.demo
    kit: ReadyKit = app.state.kit
    settings = state.settings
    try:
        ensure_sqlite_dir(settings.database_url)
        await asyncio.to_thread(migrate.upgrade, state.alembic)
        await _load_rates_at_startup(state)
        await kit.invalidate(RATES_TAG)  # a shared cache may hold another run's rates
        app.state.rates_loaded.set()  # from now on the rates.refresh job does the refreshing
        yield
    finally:
        await state.engine.dispose()


# 5 login attempts a minute: enough for a person, not a password-guessing script. The default
# admits what a client of an API may send in bursts, and a `readykit check` (its load sweep sends
# up to ~20 000 requests in seconds) twice in a row: the demo is graded, not its limiter
DEMO_RATE_LIMITS = {"default": "60000/minute", "POST /login": "5/minute"}
# rates change once a refresh: their responses are cached, and dropped by the refresh job
RATES_TAG = "rates"
DEMO_CACHE_ROUTES = {"GET /rates": 300.0, "GET /rates/{code}": 300.0}
DEMO_CACHE_TAGS = {"GET /rates": [RATES_TAG], "GET /rates/{code}": [RATES_TAG]}


def kit_settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    settings = Settings()
    # the demo's own defaults; READYKIT_* variables still win
    defaults = {
        "service_name": SERVICE_NAME,
        "rate_limits": DEMO_RATE_LIMITS,
        "cache_routes": DEMO_CACHE_ROUTES,
        "cache_route_tags": DEMO_CACHE_TAGS,
    }
    unset = {k: v for k, v in defaults.items() if k not in settings.model_fields_set}
    return Settings(**{**settings.model_dump(exclude_unset=True), **unset})


def build(
    settings: Settings | None = None, demo: DemoSettings | None = None
) -> tuple[ReadyKit, FastAPI, ASGIApp]:
    """The kit, the bare FastAPI app, and the kit-wrapped ASGI app to serve.

    Args:
        settings: readykit's settings; default: from `READYKIT_*`, service name "readykit-demo".
        demo: the demo's own settings; default: from `READYKIT_DEMO_*`.
    """
    demo = demo if demo is not None else DemoSettings()
    engine = create_engine(demo.database_url)
    alembic = migrate.alembic_config(demo.database_url)
    kit = ReadyKit(
        kit_settings(settings), principal=bearer_principal(demo.secret.get_secret_value())
    )
    register_checks(kit, engine, alembic)

    # the API docs from the package's own copies of Swagger UI and ReDoc, not a CDN
    app = FastAPIOffline(
        title="readykit demo", summary="Customers and quotes in many currencies.", lifespan=lifespan
    )
    sessions = session_factory(engine)
    app.state.demo = DemoState(demo, engine, sessions, alembic)
    register_privacy(kit, sessions, demo.username)
    app.state.kit = kit
    app.state.rates_loaded = rates_loaded = asyncio.Event()

    @kit.job("rates.refresh", every=demo.rates_refresh_s)
    async def refresh_rates_job() -> None:
        """Fetch the day's rates; a failure keeps the old ones and shows as the job's."""
        if not rates_loaded.is_set():
            return  # the app's startup is loading them right now
        await refresh_rates(engine, demo.rates_url)
        await kit.invalidate(RATES_TAG)

    app.add_exception_handler(RequestValidationError, validation_problem)
    for module in (login, customers, quotes, rates, stats):
        app.include_router(module.router)
    return kit, app, kit.wrap(app)


def create_app(settings: Settings | None = None, demo: DemoSettings | None = None) -> ASGIApp:
    """The demo service as one ASGI app, ReadyKit in front (the kit is on `app.state.kit`)."""
    return build(settings, demo)[2]
