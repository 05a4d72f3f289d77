"""The demo end to end: lifespan, every route, through the bare app and through ReadyKit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from readykit import ReadyKit, Settings
from readykit.demo import DemoSettings, build
from readykit.demo.auth import verify_token
from readykit.testing import lifespan

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["fastapi", "readykit"])
async def client(
    request: pytest.FixtureRequest, demo_settings: DemoSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the started demo: the bare FastAPI app, or the kit-wrapped one."""
    _, app, wrapped = build(Settings(), demo_settings)
    target = app if request.param == "fastapi" else wrapped
    async with (
        lifespan(target),
        httpx.AsyncClient(transport=httpx.ASGITransport(target), base_url="http://demo") as c,
    ):
        yield c


async def _customer(client: httpx.AsyncClient, email: str = "ivan@example.com") -> int:
    response = await client.post("/customers", json={"name": "Иван Петров", "email": email})
    assert response.status_code == 201, response.text
    customer_id = response.json()["id"]
    assert isinstance(customer_id, int)
    return customer_id


# login


async def test_login_returns_a_signed_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", json={"username": "demo", "password": "demo"})

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert verify_token(body["access_token"], "test-secret") == "demo"


@pytest.mark.parametrize(
    "credentials",
    [{"username": "demo", "password": "wrong"}, {"username": "admin", "password": "demo"}],
)
async def test_login_refuses_bad_credentials(
    client: httpx.AsyncClient, credentials: dict[str, str]
) -> None:
    response = await client.post("/login", json=credentials)

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid username or password"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_login_validates_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", json={"username": "demo"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "password"]


# stats


async def test_stats_after_startup_and_after_writes(client: httpx.AsyncClient) -> None:
    first = (await client.get("/stats")).json()
    assert first["customers"] == first["quotes"] == 0
    assert first["rates"] == 12  # the bundled file, loaded at startup
    assert first["rates_as_of"] == "2026-11-22"
    assert first["rates_refreshed_at"] is not None

    customer_id = await _customer(client)
    quote = {"customer_id": customer_id, "currency": "RUB", "lines": []}
    quote["lines"] = [{"description": "x", "quantity": 1, "unit_price": "1.00"}]
    assert (await client.post("/quotes", json=quote)).status_code == 201

    second = (await client.get("/stats")).json()
    assert (second["customers"], second["quotes"], second["rates"]) == (1, 1, 12)


# customers


async def test_customer_create_and_get(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/customers", json={"name": "  Анна  ", "email": " Anna@Example.COM "}
    )

    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["email"]) == ("Анна", "anna@example.com")
    assert body["created_at"].endswith("Z")
    fetched = await client.get(f"/customers/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_customer_email_is_unique_ignoring_case(client: httpx.AsyncClient) -> None:
    await _customer(client, "ivan@example.com")

    response = await client.post("/customers", json={"name": "x", "email": "IVAN@example.com"})

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "email": "not-an-email"},
        {"name": "", "email": "a@b.co"},
        {"name": "   ", "email": "a@b.co"},
        {"email": "a@b.co"},
    ],
)
async def test_customer_body_is_validated(client: httpx.AsyncClient, body: dict[str, str]) -> None:
    assert (await client.post("/customers", json=body)).status_code == 422


async def test_unknown_customer_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/customers/999")

    assert response.status_code == 404
    assert response.json() == {"detail": "customer 999 not found"}


async def test_customers_are_listed_in_pages(client: httpx.AsyncClient) -> None:
    ids = [await _customer(client, f"c{i}@example.com") for i in range(3)]

    first = (await client.get("/customers", params={"limit": 2})).json()
    assert [c["id"] for c in first["items"]] == ids[:2]
    assert first["next_after"] == ids[1]

    rest = (await client.get("/customers", params={"limit": 2, "after": ids[1]})).json()
    assert [c["id"] for c in rest["items"]] == ids[2:]
    assert rest["next_after"] is None
    assert (await client.get("/customers", params={"limit": 0})).status_code == 422


# quotes


async def _quote(client: httpx.AsyncClient, currency: str, *lines: tuple[int, Any]) -> Any:
    customer_id = await _customer(client)
    body = {
        "customer_id": customer_id,
        "currency": currency,
        "lines": [
            {"description": f"item {i}", "quantity": q, "unit_price": p}
            for i, (q, p) in enumerate(lines)
        ],
    }
    response = await client.post("/quotes", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_quote_total_is_converted_at_the_stored_rate(client: httpx.AsyncClient) -> None:
    quote = await _quote(client, "usd", (3, "100.10"), (1, 0.1))

    assert quote["currency"] == "USD"
    assert [Decimal(line["total"]) for line in quote["lines"]] == [
        Decimal("300.30"),
        Decimal("0.1"),
    ]
    assert Decimal(quote["total_rub"]) == Decimal("300.40")
    assert Decimal(quote["rate"]) == Decimal("81.5")
    assert quote["rates_as_of"] == "2026-11-22"
    assert quote["total"] == "3.69"  # 300.40 / 81.5 = 3.6858…, as an exact decimal string


async def test_quote_conversion_divides_by_the_nominal(client: httpx.AsyncClient) -> None:
    quote = await _quote(client, "JPY", (1, "1000.00"))

    assert Decimal(quote["rate"]) == Decimal("0.52741")  # 52.7410 RUB per 100 JPY
    assert Decimal(quote["total"]) == Decimal("1896.06")


async def test_rouble_quote_needs_no_rate(client: httpx.AsyncClient) -> None:
    quote = await _quote(client, "RUB", (2, "10.50"))

    assert quote["rate"] is None
    assert Decimal(quote["total"]) == Decimal(quote["total_rub"]) == Decimal("21.00")


async def test_quote_can_be_read_back(client: httpx.AsyncClient) -> None:
    created = await _quote(client, "EUR", (1, "942.13"), (4, "0.01"))

    fetched = await client.get(f"/quotes/{created['id']}")

    assert fetched.status_code == 200
    assert fetched.json() == created
    assert [line["description"] for line in created["lines"]] == ["item 0", "item 1"]
    assert Decimal(created["total"]) == Decimal("10.00")  # 942.17 / 94.213


async def test_unknown_quote_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/quotes/12345")).status_code == 404


async def test_quote_refuses_unknown_customer_and_currency(client: httpx.AsyncClient) -> None:
    customer_id = await _customer(client)
    line = {"description": "x", "quantity": 1, "unit_price": "1.00"}

    no_customer = await client.post(
        "/quotes", json={"customer_id": 999, "currency": "USD", "lines": [line]}
    )
    no_rate = await client.post(
        "/quotes", json={"customer_id": customer_id, "currency": "XYZ", "lines": [line]}
    )

    assert no_customer.status_code == 422
    assert no_customer.json() == {"detail": "customer 999 does not exist"}
    assert no_rate.status_code == 422
    assert no_rate.json() == {"detail": "no exchange rate for XYZ; see GET /rates"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "US"),
        ("lines", []),
        ("unit_price", "-1.00"),
        ("unit_price", "1.001"),
        ("unit_price", "abc"),
        ("quantity", 0),
    ],
)
async def test_quote_body_is_validated(client: httpx.AsyncClient, field: str, value: Any) -> None:
    line: dict[str, Any] = {"description": "x", "quantity": 1, "unit_price": "1.00"}
    body: dict[str, Any] = {"customer_id": 1, "currency": "USD", "lines": [line]}
    if field in line:
        line[field] = value
    else:
        body[field] = value

    assert (await client.post("/quotes", json=body)).status_code == 422


# rates


async def test_rates_list_and_lookup(client: httpx.AsyncClient) -> None:
    listing = (await client.get("/rates")).json()
    codes = [r["code"] for r in listing["rates"]]
    assert codes == sorted(codes)
    assert len(codes) == 12
    assert listing["as_of"] == "2026-11-22"

    jpy = await client.get("/rates/jpy")
    assert jpy.status_code == 200
    assert jpy.json()["name"] == "Японских иен"
    assert (jpy.json()["nominal"], Decimal(jpy.json()["per_unit"])) == (100, Decimal("0.52741"))

    missing = await client.get("/rates/XYZ")
    assert missing.status_code == 404


# through ReadyKit


@pytest.fixture
async def kit_client(demo_settings: DemoSettings) -> AsyncIterator[httpx.AsyncClient]:
    _, _, wrapped = build(Settings(ops_token="ops"), demo_settings)
    async with (
        lifespan(wrapped),
        httpx.AsyncClient(transport=httpx.ASGITransport(wrapped), base_url="http://demo") as c,
    ):
        yield c


async def test_ready_once_started(kit_client: httpx.AsyncClient) -> None:
    response = await kit_client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["status"] == "pass"


async def test_health_reports_the_demo_checks(kit_client: httpx.AsyncClient) -> None:
    response = await kit_client.get("/health", headers={"Authorization": "Bearer ops"})

    checks = response.json()["checks"]
    names = {key.split(":")[0] for key in checks}
    assert {"database", "migrations", "rates"} <= names
    assert all(entry["status"] == "pass" for entries in checks.values() for entry in entries)
    assert checks["rates:rows"][0]["observedValue"] == 12


# lifecycle and assembly


async def test_shutdown_stops_the_refresh_job(demo_settings: DemoSettings) -> None:
    _, _, wrapped = build(Settings(), demo_settings)

    def refresh_jobs() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "readykit-jobs"]

    async with lifespan(wrapped):
        assert len(refresh_jobs()) == 1
    assert refresh_jobs() == []


async def test_startup_fails_without_any_rates(database_url: str, tmp_path: Path) -> None:
    demo = DemoSettings(database_url=database_url, rates_url=str(tmp_path / "missing.xml"))
    _, _, wrapped = build(Settings(), demo)

    with pytest.raises(RuntimeError, match="cannot read rates"):
        async with lifespan(wrapped):
            pass  # pragma: no cover


async def test_startup_keeps_stored_rates_when_the_source_is_down(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, first = build(Settings(), DemoSettings(database_url=database_url))
    async with lifespan(first):
        pass
    offline = DemoSettings(database_url=database_url, rates_url=str(tmp_path / "missing.xml"))
    *_, second = build(Settings(), offline)

    with caplog.at_level(logging.WARNING, "readykit.demo"):
        async with (
            lifespan(second),
            httpx.AsyncClient(transport=httpx.ASGITransport(second), base_url="http://d") as c,
        ):
            stats = (await c.get("/stats")).json()

    assert stats["rates"] == 12
    assert "serving the 12 exchange rates stored earlier" in caplog.text


def test_build_returns_kit_app_and_wrapped_app(demo_settings: DemoSettings) -> None:
    kit, app, wrapped = build(Settings(service_name="quotes"), demo_settings)

    assert isinstance(kit, ReadyKit)
    assert isinstance(app, FastAPI)
    assert app.state.kit is kit
    assert wrapped is not app
    assert kit.settings.service_name == "quotes"


def test_default_service_name_is_readykit_demo(
    demo_settings: DemoSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("READYKIT_SERVICE_NAME", raising=False)
    assert build(None, demo_settings)[0].settings.service_name == "readykit-demo"

    monkeypatch.setenv("READYKIT_SERVICE_NAME", "from-env")
    assert build(None, demo_settings)[0].settings.service_name == "from-env"


def test_demo_settings_read_their_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READYKIT_DEMO_RATES_REFRESH_S", "5")
    monkeypatch.setenv("READYKIT_DEMO_RATES_URL", "https://example.invalid/XML_daily.asp")

    settings = DemoSettings()

    assert settings.rates_refresh_s == 5.0
    assert settings.rates_url == "https://example.invalid/XML_daily.asp"
    assert DemoSettings().secret != settings.secret  # a random secret unless one is set


def test_run_serves_the_wrapped_app_under_uvicorn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    import uvicorn

    from readykit.demo import run

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setenv("READYKIT_DEMO_DATABASE_URL", database_url)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))

    run(host="::1", port=8123)

    ((app, options),) = calls
    assert not isinstance(app, FastAPI)  # the kit-wrapped ASGI app
    assert options == {"host": "::1", "port": 8123, "access_log": False, "lifespan": "on"}
    assert "http://[::1]:8123/" in capsys.readouterr().err
