"""The health endpoints over raw ASGI: status codes, health+json, access to details, methods."""

import asyncio

import pytest

from readykit import Observation, ReadyKit, Settings
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


def make_kit(**settings: object) -> ReadyKit:
    return ReadyKit(Settings(service_name="quotes", records=False, **settings))  # type: ignore[arg-type]


async def test_ready_passes_with_health_json() -> None:
    kit = make_kit()
    kit.add_check("database", lambda: None, component_type="datastore")
    wrapped = kit.wrap(app)
    async with lifespan(wrapped):  # ready once started
        resp = await asgi_request(wrapped, "GET", "/health/ready")
    assert resp.status == 200
    assert resp.header("content-type") == "application/health+json"
    assert resp.header("cache-control") == "no-store"
    assert resp.json() == {
        "status": "pass",
        "checks": {"database:responseTime": [{"componentId": "database", "status": "pass"}]},
    }


async def test_failed_critical_check_is_503_and_public_body_hides_error() -> None:
    kit = make_kit()

    @kit.check("database")
    async def database() -> None:
        raise RuntimeError("password=hunter2 rejected")

    resp = await asgi_request(kit.wrap(app), "GET", "/health/ready", client=("10.1.2.3", 5))
    assert resp.status == 503
    assert resp.json()["status"] == "fail"
    assert b"hunter2" not in resp.body
    assert b"RuntimeError" not in resp.body


async def test_non_critical_failure_and_warn_keep_service_ready() -> None:
    kit = make_kit()
    kit.add_check("cache", lambda: False, critical=False)
    kit.add_check("disk", lambda: Observation(value=5, unit="bytes", status="warn"))
    wrapped = kit.wrap(app)
    async with lifespan(wrapped):
        resp = await asgi_request(wrapped, "GET", "/health/ready")
    assert resp.status == 200
    assert resp.json()["status"] == "warn"


async def test_liveness_never_runs_dependency_checks() -> None:
    kit = make_kit()
    ran: list[str] = []
    kit.add_check("database", lambda: ran.append("db") or False)
    resp = await asgi_request(kit.wrap(app), "GET", "/health/live")
    assert resp.status == 200
    assert ran == []
    assert list(resp.json()["checks"]) == ["eventLoop:lag"]


async def test_hung_check_does_not_delay_response_past_timeout() -> None:
    kit = make_kit()

    @kit.check("slow", timeout=0.05)
    async def slow() -> None:
        await asyncio.Event().wait()

    resp = await asyncio.wait_for(asgi_request(kit.wrap(app), "GET", "/health/ready"), 5)
    assert resp.status == 503


async def test_loopback_gets_no_details_by_default() -> None:
    """Closed by default: a same-host proxy would make every request look like loopback."""
    kit = make_kit()
    kit.add_check("database", lambda: 1 / 0)
    resp = await asgi_request(kit.wrap(app), "GET", "/health")
    assert resp.status == 503
    assert b"ZeroDivisionError" not in resp.body
    assert "description" not in resp.json()


async def test_details_for_trusted_loopback_without_proxy_headers() -> None:
    kit = make_kit(service_version="1.2.3", ops_trust_loopback=True)
    kit.add_check("database", lambda: 1 / 0)
    resp = await asgi_request(kit.wrap(app), "GET", "/health")
    body = resp.json()
    assert resp.status == 503
    assert body["description"] == "quotes"
    assert body["version"] == "1.2.3"
    [entry] = body["checks"]["database:responseTime"]
    assert entry["output"] == "ZeroDivisionError: division by zero"
    assert entry["componentType"] == "component"
    assert entry["observedUnit"] == "ms"
    assert "time" in entry
    assert "eventLoop:lag" in body["checks"]


@pytest.mark.parametrize(
    ("client", "headers"),
    [
        (("203.0.113.9", 1), []),
        (("127.0.0.1", 1), [("X-Forwarded-For", "203.0.113.9")]),
        (("127.0.0.1", 1), [("Forwarded", "for=203.0.113.9")]),
        (("203.0.113.9", 1), [("Authorization", "Bearer wrong")]),
        (None, []),
    ],
)
async def test_no_details_for_outsiders(
    client: tuple[str, int] | None, headers: list[tuple[str, str]]
) -> None:
    kit = make_kit(ops_token="right-token", ops_trust_loopback=True)
    kit.add_check("database", lambda: 1 / 0)
    resp = await asgi_request(kit.wrap(app), "GET", "/health", client=client, headers=headers)
    assert resp.status == 503
    assert b"ZeroDivisionError" not in resp.body
    assert "description" not in resp.json()


async def test_details_with_ops_token_from_anywhere() -> None:
    kit = make_kit(ops_token="right-token")
    kit.add_check("database", lambda: 1 / 0)
    resp = await asgi_request(
        kit.wrap(app),
        "GET",
        "/health",
        client=("203.0.113.9", 1),
        headers=[("Authorization", "Bearer right-token")],
    )
    assert b"ZeroDivisionError" in resp.body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_is_405_problem(method: str) -> None:
    kit = make_kit()
    resp = await asgi_request(kit.wrap(app), method, "/health/ready")
    assert resp.status == 405
    assert resp.header("content-type") == "application/problem+json"
    assert resp.header("allow") == "GET, HEAD"
    assert resp.json()["status"] == 405


async def test_head_has_no_body() -> None:
    wrapped = make_kit().wrap(app)
    async with lifespan(wrapped):
        resp = await asgi_request(wrapped, "HEAD", "/health/ready")
    assert resp.status == 200
    assert resp.body == b""
    assert int(resp.header("content-length") or 0) > 0


async def test_other_paths_reach_the_app() -> None:
    resp = await asgi_request(make_kit().wrap(app), "GET", "/healthz")
    assert resp.body == b"app"


async def test_builtin_checks_name_their_measurement(tmp_path: object) -> None:
    from readykit.health.checks import disk_free, writable_dir

    kit = make_kit(ops_trust_loopback=True)
    kit.add_check("disk", disk_free(str(tmp_path), warn_below_bytes=0, fail_below_bytes=0))
    kit.add_check("tmp", writable_dir(str(tmp_path)))
    body = (await asgi_request(kit.wrap(app), "GET", "/health")).json()
    [disk] = body["checks"]["disk:free"]
    assert (disk["componentType"], disk["observedUnit"]) == ("system", "bytes")
    assert disk["observedValue"] > 0
    assert body["checks"]["tmp:writable"][0]["status"] == "pass"


async def test_not_ready_until_the_server_runs_the_lifespan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Served without an ASGI lifespan (`uvicorn --lifespan off`) the kit's writer and jobs
    never start and acknowledged audit events would be lost: readiness says so, and one error
    line tells the operator why."""
    wrapped = make_kit().wrap(app)
    for _ in range(2):
        resp = await asgi_request(wrapped, "GET", "/health/ready")
        assert resp.status == 503
        assert "lifecycle:startup" in resp.json()["checks"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "readykit is not started: the server sent no ASGI lifespan startup (uvicorn --lifespan "
        "off?), so its audit writer, jobs and flushes are not running; serve with lifespan on"
    ]
    async with lifespan(wrapped):
        assert (await asgi_request(wrapped, "GET", "/health/ready")).status == 200
