"""Several instances on one store: an export is built by one owner (a renewed lease), resumed
only when its owner died and at most MAX_ATTEMPTS times; archives on another instance's disk;
what the subject sees of a failed export; the archive directory's mode."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from readykit import ReadyKit, Settings
from readykit.privacy.jobs import JOB, MAX_ATTEMPTS, OWNER
from readykit.testing import Response, asgi_request, lifespan

pytestmark = pytest.mark.anyio


class Instance:
    """One instance of a service: the store and key shared, the archive directory its own."""

    def __init__(self, tmp_path: Path, archive_dir: str = "exports") -> None:
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail: Exception | None = None
        self.kit = ReadyKit(
            Settings(
                configure_logging=False,
                access_log=False,
                store_url=f"sqlite:///{tmp_path}/records.db",
                spill_path=str(tmp_path / f"spill-{archive_dir}.jsonl"),
                privacy_key_path=str(tmp_path / "privacy.key"),
                privacy_archive_dir=str(tmp_path / archive_dir),
            ),
            principal=lambda scope: dict(scope["headers"]).get(b"x-user", b"").decode() or None,
        )

        @self.kit.privacy.exporter("orders")
        async def orders(subject: str) -> list[dict[str, Any]]:
            self.calls.append(subject)
            self.entered.set()
            if self.gate is not None:
                await self.gate.wait()
            if self.fail is not None:
                raise self.fail
            return [{"order": 1}]

        self.app = self.kit.wrap(Starlette())

    @property
    def jobs(self) -> Any:
        return self.kit.privacy_jobs

    async def request(self, method: str, path: str, query: bytes = b"") -> Response:
        return await asgi_request(self.app, method, path, headers=[("X-User", "alice")],
                                  query_string=query)  # fmt: skip

    async def ready_export(self) -> dict[str, Any]:
        created = (await self.request("POST", "/privacy/export")).json()
        await self.jobs.wait()
        return dict((await self.request("GET", created["status_url"])).json())


async def test_an_instance_starting_leaves_an_export_another_is_building(tmp_path: Path) -> None:
    a, b = Instance(tmp_path), Instance(tmp_path, "exports-b")
    a.gate = asyncio.Event()
    async with lifespan(a.app):
        await a.request("POST", "/privacy/export")
        await a.entered.wait()
        async with lifespan(b.app):  # a deploy or a scale-out while A builds the export
            assert await b.jobs.resume() == 0
            a.gate.set()
            await a.jobs.wait()
            await b.jobs.wait()
    assert (a.calls, b.calls) == (["alice"], [])


async def test_an_orphaned_export_is_resumed_at_most_max_attempts_times(tmp_path: Path) -> None:
    a = Instance(tmp_path)
    async with lifespan(a.app):
        store, now = a.kit.records.store, time.time()  # type: ignore[union-attr]
        sealed = a.jobs.keys.seal("alice")
        subject_hash = a.jobs.keys.subject_hash("alice")
        for job_id, attempts in (("crashed-once", 1), ("crashes-always", MAX_ATTEMPTS)):
            job = {"id": job_id, "subject_hash": subject_hash, "subject": sealed,
                   "status": "running", "created": now, "attempts": attempts}  # fmt: skip
            await store.put_doc(JOB, job_id, job, key=subject_hash, ts=now)
            # its owner stopped renewing a while ago: it died
            await store.put_doc(OWNER, job_id, {"instance": "gone", "until": now - 1}, ts=now - 1)
        alive = {"id": "alive", "subject_hash": subject_hash, "subject": sealed,
                 "status": "running", "created": now, "attempts": 1}  # fmt: skip
        await store.put_doc(JOB, "alive", alive, key=subject_hash, ts=now)
        await store.put_doc(OWNER, "alive", {"instance": "live", "until": now + 60}, ts=now + 60)

        assert await a.jobs.resume() == 1
        await a.jobs.wait()
        once, always = await a.jobs.get("crashed-once"), await a.jobs.get("crashes-always")
        status = (await a.request("GET", "/privacy/export/crashes-always")).json()
        assert (await a.jobs.get("alive"))["status"] == "running"  # left to its live owner
    assert once["status"] == "ready"
    assert once["attempts"] == 2
    assert always["status"] == "failed"
    assert status["error"] == always["error"]
    assert f"interrupted {MAX_ATTEMPTS} times" in status["error"]
    assert "crashes-always" in status["error"]
    assert a.calls == ["alice"]


async def test_an_archive_on_another_instance_is_a_clear_409_and_each_expiry_deletes_its_own(
    tmp_path: Path,
) -> None:
    a, b = Instance(tmp_path), Instance(tmp_path, "exports-b")
    async with lifespan(a.app), lifespan(b.app):
        job = await a.ready_export()
        path, _, query = job["download_url"].partition("?")
        on_b = await b.request("GET", path, query.encode())
        assert (await a.request("GET", path, query.encode())).status == 200
        assert await b.jobs.expire(now=job["expires"] + 1) == 1  # B marks it expired
        assert list((tmp_path / "exports").glob("*.zip"))
        assert await a.jobs.expire(now=job["expires"] + 1) == 1  # A deletes its file
        assert await a.jobs.expire(now=job["expires"] + 1) == 0
    assert on_b.status == 409
    assert (on_b.header("content-type") or "").startswith("application/problem+json")
    assert "another" in on_b.json()["detail"]
    assert list((tmp_path / "exports").glob("*.zip")) == []


async def test_an_exporter_error_is_not_shown_to_the_subject(tmp_path: Path) -> None:
    a = Instance(tmp_path)
    a.fail = RuntimeError("lookup failed: row email=bob@example.com host db-internal.corp")
    async with lifespan(a.app):
        status = await a.ready_export()
        stored = await a.jobs.get(status["id"])
    assert status["status"] == "failed"
    assert "bob@example.com" not in json.dumps(status)
    assert "db-internal.corp" not in json.dumps(status)
    assert status["id"] in status["error"]
    assert "RuntimeError" in stored["detail"]  # for operators, redacted as before


async def test_the_archive_directory_is_private(tmp_path: Path) -> None:
    a = Instance(tmp_path)
    async with lifespan(a.app):
        await a.ready_export()
    assert stat.S_IMODE((tmp_path / "exports").stat().st_mode) == 0o700


async def test_an_orphaned_export_is_taken_over_by_the_hourly_round_not_only_at_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance that stays up takes over an export whose owner died after it started."""
    import readykit.privacy

    monkeypatch.setattr(readykit.privacy, "EXPIRE_EVERY_S", 0)  # every turn is "an hour later"
    a = Instance(tmp_path)
    async with lifespan(a.app):
        store, now = a.kit.records.store, time.time()  # type: ignore[union-attr]
        subject_hash = a.jobs.keys.subject_hash("alice")
        job = {"id": "orphan", "subject_hash": subject_hash, "subject": a.jobs.keys.seal("alice"),
               "status": "running", "created": now, "attempts": 1}  # fmt: skip
        await store.put_doc(JOB, "orphan", job, key=subject_hash, ts=now)
        await store.put_doc(OWNER, "orphan", {"instance": "gone", "until": now - 1}, ts=now - 1)
        for _ in range(10_000):  # turns of the loop, not time: the round runs on each
            found = await a.jobs.get("orphan")
            if found is not None and found["status"] == "ready":
                break
            await asyncio.sleep(0)
        await a.jobs.wait()
    assert found is not None
    assert found["status"] == "ready"
    assert a.calls == ["alice"]


async def test_an_erasure_on_another_instance_is_not_overwritten_by_the_finished_export(
    tmp_path: Path,
) -> None:
    """A finishes building and saves `ready`; the erasure, served by B, marked the job `erased`
    between A's check and A's save. The erasure log (written before B's erasers ran) wins: the
    job reads `erased`, its archive is gone and its sealed id is not back."""
    a, b = Instance(tmp_path), Instance(tmp_path)
    async with lifespan(a.app), lifespan(b.app):
        save = a.jobs.save
        saving, go_on = asyncio.Event(), asyncio.Event()

        async def paused_save(job: dict[str, Any]) -> None:
            if job["status"] == "ready":  # checked "not erased" already: the erasure lands now
                saving.set()
                await go_on.wait()
            await save(job)

        a.jobs.save = paused_save
        created = (await a.request("POST", "/privacy/export")).json()
        await saving.wait()
        token = (await b.request("POST", "/privacy/erase")).json()["confirm"]
        erased = await asgi_request(b.app, "POST", "/privacy/erase", headers=[("X-User", "alice")],
                                    body=json.dumps({"confirm": token}).encode())  # fmt: skip
        assert erased.status == 200
        go_on.set()
        await a.jobs.wait()
        stored = await a.kit.records.store.get_doc(JOB, created["id"])
        status = (await b.request("GET", created["status_url"])).json()
    assert stored["status"] == "erased"
    assert "subject" not in stored
    assert status["status"] == "erased"
    assert list((tmp_path / "exports").glob("*.zip")) == []
