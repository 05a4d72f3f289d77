"""The registry runs checks concurrently, each under its timeout, single-flight and cached."""

import asyncio
import threading

import pytest

from readykit import CheckRegistrationError, Observation
from readykit.health import HealthRegistry
from readykit.testing import FakeClock

pytestmark = pytest.mark.anyio


async def test_pass_fail_raise_and_observation() -> None:
    reg = HealthRegistry()

    async def ok() -> None:
        return None

    def sync_false() -> bool:
        return False

    async def boom() -> None:
        raise ConnectionRefusedError("db down")

    def disk() -> Observation:
        return Observation(value=12, unit="bytes", status="warn", output="low")

    reg.add("ok", ok)
    reg.add("false", sync_false)
    reg.add("boom", boom)
    reg.add("disk", disk)
    results = {r.name: r for r in await reg.run()}
    assert results["ok"].status == "pass"
    assert results["ok"].observed_unit == "ms"
    assert results["false"].status == "fail"
    assert results["boom"].status == "fail"
    assert results["boom"].output == "ConnectionRefusedError: db down"
    assert (results["disk"].status, results["disk"].observed_value) == ("warn", 12)
    assert results["disk"].output == "low"


async def test_outputs_are_redacted() -> None:
    reg = HealthRegistry()

    async def db() -> None:
        raise OSError("cannot reach postgresql://app:hunter2pw@db:5432/prod")

    reg.add("db", db)
    (result,) = await reg.run()
    assert result.output == "OSError: cannot reach postgresql://app:[REDACTED]@db:5432/prod"


async def test_a_long_output_is_redacted_before_it_is_cut() -> None:
    """Cut first, the password at the cut would be half of itself: no shape left to redact."""
    reg = HealthRegistry()
    secret = "LEAKCANARY" * 4

    async def db() -> None:
        raise OSError("x" * 270 + f" postgresql://app:{secret}@db/prod")

    async def version() -> Observation:
        return Observation(value=f"connected with password={secret}")

    reg.add("db", db)
    reg.add("version", version)
    results = {r.name: r for r in await reg.run()}
    assert "LEAKCANARY" not in (results["db"].output or "")
    assert len(results["db"].output or "") == 300
    assert results["version"].observed_value == "connected with password=[REDACTED]"


async def test_checks_run_concurrently() -> None:
    """Two checks that each wait for the other can only pass if they run at the same time."""
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def a() -> None:
        a_started.set()
        await b_started.wait()

    async def b() -> None:
        b_started.set()
        await a_started.wait()

    reg = HealthRegistry()
    reg.add("a", a, timeout=5)
    reg.add("b", b, timeout=5)
    assert [r.status for r in await reg.run()] == ["pass", "pass"]


async def test_hung_async_check_fails_at_timeout_and_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    reg = HealthRegistry()
    reg.add("hangs", hangs, timeout=0.01)
    [result] = await reg.run()
    assert result.status == "fail"
    assert result.output == "timed out after 0.01s"
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_hung_sync_check_never_piles_up_threads() -> None:
    release = threading.Event()
    calls = 0

    def hangs() -> None:
        nonlocal calls
        calls += 1
        release.wait(10)

    clock = FakeClock()
    reg = HealthRegistry(cache_s=1.0, clock=clock)
    reg.add("hangs", hangs, timeout=0.01)
    try:
        [first] = await reg.run()
        clock.advance(5)
        [second] = await reg.run()
    finally:
        release.set()
    assert first.output == "timed out after 0.01s"
    assert second.status == "fail"
    assert second.output == "previous run still hung past its timeout"
    assert calls == 1


async def test_cache_reuses_result_within_interval() -> None:
    calls = 0

    async def counted() -> None:
        nonlocal calls
        calls += 1

    clock = FakeClock()
    reg = HealthRegistry(cache_s=1.0, clock=clock)
    reg.add("db", counted)
    await reg.run()
    clock.advance(0.5)
    await reg.run()
    assert calls == 1
    clock.advance(0.6)
    await reg.run()
    assert calls == 2


async def test_probe_storm_runs_check_once() -> None:
    calls = 0
    gate = asyncio.Event()

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await gate.wait()

    reg = HealthRegistry(cache_s=0)
    reg.add("db", slow, timeout=5)
    storm = [asyncio.ensure_future(reg.run()) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*storm)
    assert calls == 1
    assert all(r[0].status == "pass" for r in results)


async def test_only_requested_kinds_run() -> None:
    ran: list[str] = []
    reg = HealthRegistry()
    reg.add("db", lambda: ran.append("db"), kind="readiness")
    reg.add("loop", lambda: ran.append("loop"), kind="liveness")
    await reg.run(("liveness",))
    assert ran == ["loop"]


def test_wrong_signature_is_rejected_with_what_to_write() -> None:
    reg = HealthRegistry()

    async def needs_arg(engine: object) -> None: ...

    with pytest.raises(CheckRegistrationError, match=r"must take no arguments.*async def db\(\)"):
        reg.add("db", needs_arg)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "name 'bad name' is invalid"),
        ({"kind": "sometimes"}, "kind='sometimes'"),
        ({"timeout": 0}, "timeout > 0"),
    ],
)
def test_bad_registrations(kwargs: dict[str, object], message: str) -> None:
    reg = HealthRegistry()
    args: dict[str, object] = {"name": "db", "fn": lambda: None} | kwargs
    with pytest.raises(CheckRegistrationError, match=message):
        reg.add(**args)  # type: ignore[arg-type]


def test_duplicate_name_rejected() -> None:
    reg = HealthRegistry()
    reg.add("db", lambda: None)
    with pytest.raises(CheckRegistrationError, match="already registered"):
        reg.add("db", lambda: None)


async def test_aclose_releases_clients_that_checks_own() -> None:
    closed: list[str] = []

    class OwnsClient:
        async def __call__(self) -> None: ...

        async def aclose(self) -> None:
            closed.append("client")

    class BrokenClose(OwnsClient):
        async def aclose(self) -> None:
            raise OSError("already gone")

    reg = HealthRegistry()
    reg.add("broken", BrokenClose())
    reg.add("redis", OwnsClient())
    reg.add("plain", lambda: None)
    await reg.aclose()
    assert closed == ["client"]
