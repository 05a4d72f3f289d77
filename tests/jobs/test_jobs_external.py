"""Jobs scheduled elsewhere: `async with kit.job_run(name)`, heartbeats at
`POST /ops/jobs/{name}/ping`, and the /ops jobs page and JSON."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jobs_support import HOUR, T0, make_kit, sample, started

from readykit.testing import FakeClock, asgi_request

pytestmark = pytest.mark.anyio
TOKEN = "ops-secret-token"
AUTH = [("Authorization", f"Bearer {TOKEN}")]
REMOTE = ("203.0.113.9", 40000)


async def not_found_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"app 404"})


async def test_job_run_records_success_and_failure_and_reraises() -> None:
    kit = make_kit()
    clock = FakeClock(T0)
    async with started(kit, clock) as jobs:
        async with kit.job_run("backup.nightly") as run:
            clock.advance(5)
        with pytest.raises(OSError, match="disk full"):
            async with kit.job_run("backup.nightly"):
                raise OSError("disk full, token=abc123secret")
        [state] = await jobs.status()
    failed, ok = state["runs"]
    assert ok["id"] == run.id
    assert (ok["outcome"], ok["duration_s"], ok["trigger"]) == ("success", 5, "external")
    assert failed["outcome"] == "failure"
    assert "abc123secret" not in failed["error"]
    assert state["schedule"] == "on demand"
    assert state["state"] == "failing"
    assert sample(kit, "readykit_job_failures_total", job_name="backup.nightly") == 1


async def test_concurrent_runs_of_one_job_are_flagged_as_overlapping() -> None:
    kit = make_kit()
    async with started(kit, FakeClock(T0)) as jobs:
        async with kit.job_run("import.orders"), kit.job_run("import.orders") as inner:
            pass
        [state] = await jobs.status()
    flagged = {r["id"]: r["overlap"] for r in state["runs"]}
    assert flagged[inner.id] is True
    assert sorted(flagged.values()) == [False, True]
    assert sample(kit, "readykit_job_overlaps_total", job_name="import.orders") == 1


async def test_an_expected_external_job_goes_late_until_it_reports() -> None:
    kit = make_kit()
    clock = FakeClock(T0)
    kit.jobs.add("backup.nightly", every="1d", grace="1h")
    async with started(kit, clock) as jobs:
        clock.advance(24 * HOUR + HOUR + 1)
        [late] = await jobs.status()
        async with kit.job_run("backup.nightly"):
            pass
        [ok] = await jobs.status()
    assert late["state"] == "late"
    assert ok["state"] == "ok"
    assert ok["next_due"] == clock() + 24 * HOUR


async def test_pings_open_and_close_a_run_over_http() -> None:
    kit = make_kit(ops_token=TOKEN)
    kit.jobs.add("backup.nightly", every="1d", grace="1h")
    app = kit.wrap(not_found_app)
    clock = FakeClock(T0)
    async with started(kit, clock) as jobs:
        start = await asgi_request(
            app, "POST", "/ops/jobs/backup.nightly/ping", headers=AUTH, client=REMOTE,
            query_string=b"status=start",
        )  # fmt: skip
        clock.advance(30)
        done = await asgi_request(
            app, "POST", "/ops/jobs/backup.nightly/ping", headers=AUTH, client=REMOTE
        )
        failed = await asgi_request(
            app, "POST", "/ops/jobs/backup.nightly/ping", headers=AUTH, client=REMOTE,
            query_string=b"status=fail", body=b"pg_dump: password=hunter2 rejected",
        )  # fmt: skip
        [state] = await jobs.status()
    assert start.status == 200
    assert start.json()["outcome"] == "running"
    assert done.json() == {"job": "backup.nightly", "run_id": start.json()["run_id"],
                           "outcome": "success"}  # fmt: skip
    assert failed.json()["outcome"] == "failure"
    newest, closed = state["runs"]
    assert closed["duration_s"] == 30
    assert closed["trigger"] == "ping"
    assert "hunter2" not in newest["error"]
    assert state["state"] == "failing"


async def test_ping_refusals_are_problem_json() -> None:
    kit = make_kit(ops_token=TOKEN)
    kit.jobs.add("backup.nightly")
    app = kit.wrap(not_found_app)
    async with started(kit, FakeClock(T0)):
        unknown = await asgi_request(
            app, "POST", "/ops/jobs/nope/ping", headers=AUTH, client=REMOTE
        )
        no_token = await asgi_request(app, "POST", "/ops/jobs/backup.nightly/ping", client=REMOTE)
        wrong_method = await asgi_request(app, "GET", "/ops/jobs/backup.nightly/ping")
        bad_status = await asgi_request(
            app, "POST", "/ops/jobs/backup.nightly/ping", headers=AUTH, client=REMOTE,
            query_string=b"status=maybe",
        )  # fmt: skip
        other = await asgi_request(app, "GET", "/ops/jobs/backup.nightly")
    assert unknown.status == 404
    assert unknown.header("content-type") == "application/problem+json"
    assert "'nope'" in unknown.json()["detail"]
    assert no_token.status == 401
    assert wrong_method.status == 405
    assert bad_status.status == 400
    assert other.body == b"app 404"  # not a ping: the app answers


async def test_ops_api_and_page_show_schedule_runs_and_next_due() -> None:
    kit = make_kit(ops_token=TOKEN)
    clock = FakeClock(T0 + 1000)

    @kit.job("rates.refresh", every="1h", grace="5m")
    async def refresh() -> None:
        return None

    app = kit.wrap(not_found_app)
    async with started(kit, clock) as jobs:
        clock.advance(HOUR - 1000)
        await asyncio.gather(*await jobs.tick())
        api = await asgi_request(app, "GET", "/ops/api/jobs", headers=AUTH, client=REMOTE)
        page = await asgi_request(app, "GET", "/ops/jobs", headers=AUTH, client=REMOTE)
        refused = await asgi_request(app, "GET", "/ops/api/jobs", client=REMOTE)
    [job] = api.json()["jobs"]
    assert job["name"] == "rates.refresh"
    assert job["schedule"] == "every 1h, grace 5m"
    assert job["next_due"] == T0 + 2 * HOUR
    assert job["runs"][0]["outcome"] == "success"
    assert page.status == 200
    html = page.body.decode()
    assert "rates.refresh" in html
    assert "every 1h, grace 5m" in html
    assert job["runs"][0]["id"] in html
    assert refused.status == 401
