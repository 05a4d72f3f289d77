"""Personal data end to end: export jobs, signed expiring links, erasure with confirmation,
the erasure log and its replay, refusals audited."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from starlette.applications import Starlette

from readykit import ReadyKit, Settings
from readykit.privacy.jobs import ERASURE, OWNER
from readykit.testing import Response, asgi_request, lifespan

pytestmark = pytest.mark.anyio

T0 = 1_900_000_000.0  # a fixed wall-clock time for tests that read dates

ORDERS = {"alice": [{"order": 1, "total": 10}, {"order": 2, "total": 20}], "bob": [{"order": 3}]}


def user(name: str) -> list[tuple[str, str]]:
    return [("X-User", name)]


Principal = Callable[[dict[str, Any]], str | None]


def by_header(scope: dict[str, Any]) -> str | None:
    return dict(scope["headers"]).get(b"x-user", b"").decode() or None


class Demo:
    def __init__(self, tmp_path: Path, principal: Principal = by_header, **settings: Any) -> None:
        self.erased: list[str] = []
        self.kit = ReadyKit(
            Settings(
                configure_logging=False,
                access_log=False,
                store_url=f"sqlite:///{tmp_path}/records.db",
                spill_path=str(tmp_path / "spill.jsonl"),
                privacy_key_path=str(tmp_path / "privacy.key"),
                privacy_archive_dir=str(tmp_path / "exports"),
                **settings,
            ),
            principal=principal,
        )

        @self.kit.privacy.exporter("orders")
        async def orders(subject: str) -> list[dict[str, Any]]:
            return ORDERS.get(subject, [])

        @self.kit.privacy.exporter("profile")
        def profile(subject: str) -> Any:  # a sync generator, for large data
            yield {"name": subject}

        @self.kit.privacy.eraser("orders")
        async def erase_orders(subject: str) -> dict[str, Any]:
            self.erased.append(subject)
            return {"removed": 1, "retained": 1, "reasons": ["invoice kept 10 years (tax law)"]}

        self.app = self.kit.wrap(Starlette())

    async def request(self, method: str, path: str, who: str | None = "alice",
                      body: bytes = b"", query: bytes = b"") -> Response:  # fmt: skip
        headers = user(who) if who else []
        return await asgi_request(
            self.app, method, path, headers=headers, body=body, query_string=query
        )

    async def audit_actions(self) -> list[str]:
        await self.kit.records.writer.flush()  # type: ignore[union-attr]
        return [e["action"] for e in await self.kit.records.store.audit()]  # type: ignore[union-attr]


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    d = Demo(tmp_path)
    async with lifespan(d.app):
        yield d


async def ready_job(demo: Demo, who: str = "alice") -> dict[str, Any]:
    created = await demo.request("POST", "/privacy/export", who)
    assert created.status == 202, created.body
    await demo.kit.privacy_jobs.wait()  # type: ignore[union-attr]
    status = await demo.request("GET", created.json()["status_url"], who)
    assert status.status == 200
    return dict(status.json())


async def test_export_job_builds_a_zip_with_one_file_per_exporter(demo: Demo) -> None:
    job = await ready_job(demo)
    assert job["status"] == "ready"
    assert job["counts"] == {"orders": 2, "profile": 1}
    path, _, query = job["download_url"].partition("?")
    r = await demo.request("GET", path, query=query.encode())
    assert r.status == 200
    assert r.header("content-type") == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.body)) as z:
        assert sorted(z.namelist()) == ["index.html", "orders.json", "profile.json"]
        assert json.loads(z.read("orders.json")) == ORDERS["alice"]
        assert "orders" in z.read("index.html").decode()
    actions = await demo.audit_actions()
    assert "privacy.export.request" in actions
    assert "privacy.export.download" in actions


async def test_one_export_a_day(demo: Demo) -> None:
    await ready_job(demo)
    again = await demo.request("POST", "/privacy/export")
    assert again.status == 429
    assert again.header("content-type") == "application/problem+json"


async def test_other_subjects_and_forged_or_expired_links_are_refused(demo: Demo) -> None:
    job = await ready_job(demo)
    path, _, query = job["download_url"].partition("?")
    assert (await demo.request("GET", f"/privacy/export/{job['id']}", "bob")).status == 404
    assert (await demo.request("GET", path, "bob", query=query.encode())).status == 404
    assert (await demo.request("GET", "/privacy/export/nope", "alice")).status == 404
    forged = query.replace("sig=", "sig=x")
    assert (await demo.request("GET", path, query=forged.encode())).status == 403
    later = query.replace(f"expires={int(job['expires'])}", f"expires={int(job['expires']) + 9}")
    assert (await demo.request("GET", path, query=later.encode())).status == 403
    with time_machine.travel(job["expires"] + 1, tick=False):
        assert (await demo.request("GET", path, query=query.encode())).status == 403
    actions = await demo.audit_actions()
    assert actions.count("privacy.refused") == 6


async def test_anonymous_refusals_are_counted_not_audited(demo: Demo) -> None:
    """Anyone can send these: a metric counts them; the audit log does not grow by a row each."""
    for _ in range(50):
        anonymous = await demo.request("POST", "/privacy/export", None)
        assert anonymous.status == 401
    assert "privacy.refused" not in await demo.audit_actions()
    samples = {
        s.labels.get("status"): s.value
        for m in demo.kit.metrics.registry.collect()
        if m.name == "readykit_privacy_refusals"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert samples == {"401": 50.0}


async def test_no_privacy_endpoints_without_an_exporter_or_eraser(tmp_path: Path) -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def own(request: Any) -> PlainTextResponse:
        return PlainTextResponse("the app's own page")

    kit = ReadyKit(Settings(configure_logging=False, store_url=f"sqlite:///{tmp_path}/r.db",
                            privacy_key_path=str(tmp_path / "k")))  # fmt: skip
    app = kit.wrap(Starlette(routes=[Route("/privacy/export", own, methods=["GET", "POST"])]))
    async with lifespan(app):
        response = await asgi_request(app, "POST", "/privacy/export")
        assert (response.status, response.body) == (200, b"the app's own page")
        missing = await asgi_request(app, "POST", "/privacy/erase")
        assert missing.status == 404  # the app's 404: the kit serves nothing here


async def test_expired_archives_are_removed(demo: Demo) -> None:
    job = await ready_job(demo)
    archives = list(Path(demo.kit.settings.privacy_archive_dir).glob("*.zip"))
    assert len(archives) == 1
    assert await demo.kit.privacy_jobs.expire(now=job["expires"] + 1) == 1  # type: ignore[union-attr]
    assert not archives[0].exists()
    status = await demo.request("GET", f"/privacy/export/{job['id']}")
    assert status.json()["status"] == "expired"


async def test_a_failing_exporter_fails_its_job_readably(tmp_path: Path) -> None:
    d = Demo(tmp_path)

    @d.kit.privacy.exporter("broken")
    async def broken(subject: str) -> list[Any]:
        raise RuntimeError("warehouse down at postgresql://etl:LEAKCANARY@wh/orders")

    async with lifespan(d.app):
        job = await ready_job(d)
        store = d.kit.records.store  # type: ignore[union-attr]
        stored = json.dumps(await store.docs("privacy_export"))
    assert job["status"] == "failed"
    # the subject is answered a generic message quoting the id; the store keeps what failed
    # for operators, with the password it quoted redacted
    assert job["error"] == (
        f"the export failed; ask for a new export, and quote this id if it fails again: {job['id']}"
    )
    assert "RuntimeError: warehouse down at postgresql://etl:[REDACTED]@wh/orders" in stored
    assert "LEAKCANARY" not in stored


async def test_an_erasers_reasons_and_errors_are_redacted(tmp_path: Path) -> None:
    d = Demo(tmp_path)

    @d.kit.privacy.eraser("crm")
    async def crm(subject: str) -> dict[str, Any]:
        return {"retained": 1, "reasons": ["kept: CRM_TOKEN=LEAKCANARY1 holds the contract"]}

    @d.kit.privacy.eraser("mail")
    async def mail(subject: str) -> int:
        raise RuntimeError("smtp login password=LEAKCANARY2 refused")

    async with lifespan(d.app):
        token = (await d.request("POST", "/privacy/erase")).json()["confirm"]
        body = json.dumps({"confirm": token}).encode()
        done = await d.request("POST", "/privacy/erase", body=body)
        stored = json.dumps(await d.kit.records.store.docs(ERASURE))  # type: ignore[union-attr]
    report = done.json()["report"]
    assert report["crm"]["reasons"] == ["kept: CRM_TOKEN=[REDACTED] holds the contract"]
    assert report["mail"]["error"] == "RuntimeError: smtp login password=[REDACTED] refused"
    assert "LEAKCANARY" not in done.body.decode() + stored


async def test_erase_needs_confirmation_then_logs_a_keyed_hash(demo: Demo) -> None:
    first = await demo.request("POST", "/privacy/erase")
    assert first.status == 200
    token = first.json()["confirm"]
    assert demo.erased == []
    bad = await demo.request("POST", "/privacy/erase", body=b'{"confirm": "1.x"}')
    assert bad.status == 403
    as_bob = await demo.request("POST", "/privacy/erase", "bob",
                                body=json.dumps({"confirm": token}).encode())  # fmt: skip
    assert as_bob.status == 403  # a token is bound to its subject
    done = await demo.request(
        "POST", "/privacy/erase", body=json.dumps({"confirm": token}).encode()
    )
    assert done.status == 200
    assert done.json()["report"]["orders"] == {
        "removed": 1, "retained": 1, "reasons": ["invoice kept 10 years (tax law)"], "error": None,
    }  # fmt: skip
    assert demo.erased == ["alice"]
    store = demo.kit.records.store  # type: ignore[union-attr]
    (entry,) = await store.docs(ERASURE)
    assert "alice" not in json.dumps(entry)
    # after a restore: the log replays through the erasers
    assert await demo.kit.privacy_jobs.replay() == 1  # type: ignore[union-attr]
    assert demo.erased == ["alice", "alice"]
    assert "privacy.erase" in await demo.audit_actions()


async def test_unfinished_jobs_resume_after_a_restart(tmp_path: Path) -> None:
    d = Demo(tmp_path)
    async with lifespan(d.app):
        jobs = d.kit.privacy_jobs
        assert jobs is not None
        job = await jobs.create("alice")
        await jobs.wait()
        job["status"] = "running"  # as a process killed mid-export left it
        await jobs.save(job)
        # and its owner lease, no longer renewed, lapsed
        await jobs.store.put_doc(OWNER, job["id"], {"until": 0.0}, ts=0.0)
    restarted = Demo(tmp_path)
    async with lifespan(restarted.app):
        await restarted.kit.privacy_jobs.wait()  # type: ignore[union-attr]
        status = await restarted.request("GET", f"/privacy/export/{job['id']}")
    assert status.json()["status"] == "ready"


def test_exporter_names_are_checked() -> None:
    from readykit import ConfigurationError
    from readykit.privacy import Privacy

    p = Privacy()
    p.exporter("orders")(lambda s: [])
    with pytest.raises(ConfigurationError, match="registered twice"):
        p.exporter("orders")(lambda s: [])
    with pytest.raises(ConfigurationError, match="use letters"):
        p.eraser("no spaces")


async def test_links_last_72_hours_by_default(demo: Demo) -> None:
    with time_machine.travel(T0, tick=False):
        job = await ready_job(demo)
    assert job["expires"] == T0 + 72 * 3600


async def erase(demo: Demo, who: str = "alice") -> Response:
    token = (await demo.request("POST", "/privacy/erase", who)).json()["confirm"]
    return await demo.request("POST", "/privacy/erase", who,
                              body=json.dumps({"confirm": token}).encode())  # fmt: skip


async def test_erasing_deletes_the_subjects_ready_exports(demo: Demo) -> None:
    job = await ready_job(demo)
    bobs = await ready_job(demo, "bob")
    assert (await erase(demo)).status == 200
    status = (await demo.request("GET", f"/privacy/export/{job['id']}")).json()
    assert status["status"] == "erased"
    assert "download_url" not in status
    path, _, query = job["download_url"].partition("?")
    assert (await demo.request("GET", path, query=query.encode())).status == 410
    archives = [p.name for p in Path(demo.kit.settings.privacy_archive_dir).glob("*.zip")]
    assert archives == [f"{bobs['id']}.zip"]  # another subject's export is untouched
    stored = await demo.kit.privacy_jobs.get(job["id"])  # type: ignore[union-attr]
    assert stored is not None
    assert "subject" not in stored


async def test_erasing_cancels_an_export_being_built(tmp_path: Path) -> None:
    d = Demo(tmp_path)
    started, gate = asyncio.Event(), asyncio.Event()

    @d.kit.privacy.exporter("slow")
    async def slow(subject: str) -> list[Any]:
        snapshot = list(ORDERS.get(subject, []))  # read before the erasure
        started.set()
        await gate.wait()
        return snapshot

    async with lifespan(d.app):
        created = await d.request("POST", "/privacy/export")
        await started.wait()
        assert (await erase(d)).status == 200
        gate.set()
        await d.kit.privacy_jobs.wait()  # type: ignore[union-attr]
        status = (await d.request("GET", created.json()["status_url"])).json()
    assert status["status"] == "erased"
    assert list(Path(d.kit.settings.privacy_archive_dir).glob("*.zip")) == []


async def test_privacy_audit_events_name_the_subject_by_its_keyed_hash(demo: Demo) -> None:
    job = await ready_job(demo)
    path, _, query = job["download_url"].partition("?")
    assert (await demo.request("GET", path, query=query.encode())).status == 200
    assert (await demo.request("GET", "/privacy/export/nope")).status == 404
    assert (await demo.request("POST", "/privacy/export")).status == 429
    assert (await erase(demo)).status == 200
    await demo.kit.records.writer.flush()  # type: ignore[union-attr]
    rows = [r for r in await demo.kit.records.store.audit()  # type: ignore[union-attr]
            if r["action"].startswith("privacy.")]  # fmt: skip
    assert {r["action"] for r in rows} >= {
        "privacy.export.request", "privacy.export.download", "privacy.refused",
        "privacy.export.limited", "privacy.erase",
    }  # fmt: skip
    keys = demo.kit.privacy_jobs.keys  # type: ignore[union-attr]
    assert {r["actor"] for r in rows} == {keys.actor("alice")}
    assert "alice" not in json.dumps(rows, default=str)


async def test_concurrent_export_requests_get_one_job(demo: Demo) -> None:
    codes = [r.status for r in await asyncio.gather(
        *(demo.request("POST", "/privacy/export") for _ in range(10))
    )]  # fmt: skip
    await demo.kit.privacy_jobs.wait()  # type: ignore[union-attr]
    assert sorted(codes) == [202] + [429] * 9
    assert len(await demo.kit.records.store.docs("privacy_export")) == 1  # type: ignore[union-attr]


async def test_the_export_limit_holds_across_instances(tmp_path: Path) -> None:
    """Two processes on one store: the store decides, not each process's lock."""
    one, two = Demo(tmp_path), Demo(tmp_path)
    async with lifespan(one.app), lifespan(two.app):
        codes = [r.status for r in await asyncio.gather(
            *(d.request("POST", "/privacy/export") for _ in range(5) for d in (one, two))
        )]  # fmt: skip
        await one.kit.privacy_jobs.wait()  # type: ignore[union-attr]
        await two.kit.privacy_jobs.wait()  # type: ignore[union-attr]
    assert codes.count(202) == 1


@pytest.mark.parametrize("confirm", ["\u00b2.x", "9999999999.\ud800"])  # crashed: 500
async def test_odd_confirm_tokens_are_refused_like_any_bad_token(demo: Demo, confirm: Any) -> None:
    r = await demo.request("POST", "/privacy/erase", body=json.dumps({"confirm": confirm}).encode())
    assert r.status == 403
    assert demo.erased == []


async def test_an_erase_confirmation_works_once(demo: Demo) -> None:
    token = (await demo.request("POST", "/privacy/erase")).json()["confirm"]
    body = json.dumps({"confirm": token}).encode()
    codes = [(await demo.request("POST", "/privacy/erase", body=body)).status for _ in range(3)]
    assert codes == [200, 403, 403]
    assert demo.erased == ["alice"]
    assert len(await demo.kit.records.store.docs(ERASURE)) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("content", ["", "abc123", "zz" * 32, "ab" * 31])
def test_a_key_file_that_is_not_a_whole_key_is_refused(tmp_path: Path, content: str) -> None:
    from readykit import ConfigurationError
    from readykit.privacy.keys import load_or_create_key

    path = tmp_path / "privacy.key"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match="privacy_key_path") as refused:
        load_or_create_key(None, path)
    assert str(path) in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_key_file_is_created_whole_and_a_racing_creator_wins_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from readykit.privacy import keys

    path = tmp_path / "privacy.key"
    created = keys.load_or_create_key(None, path)
    assert path.read_text() == created.hex()
    assert len(created) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["privacy.key"]  # no temporary file left

    other = tmp_path / "other.key"
    theirs = bytes(range(32))
    real_link = os.link

    def link_after_another_process(src: Any, dst: Any) -> None:
        other.write_text(theirs.hex())  # another worker finished creating it first
        real_link(src, dst)

    monkeypatch.setattr(keys.os, "link", link_after_another_process, raising=False)
    assert keys.load_or_create_key(None, other) == theirs
    assert sorted(os.listdir(tmp_path)) == ["other.key", "privacy.key"]


def by_token(scope: dict[str, Any]) -> str | None:
    """The `sub` claim of a JSON token, as an app reading a JWT's payload gets it: JSON's
    "\\ud800" decodes to a lone surrogate, a str with no UTF-8 bytes."""
    claims = json.loads(dict(scope["headers"]).get(b"x-token", b"{}"))
    return str(claims["sub"]) if "sub" in claims else None


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/privacy/export", b""),
        ("GET", "/privacy/export/abc", b""),
        ("GET", "/privacy/export/abc/download", b"expires=9999999999&sig=x"),
        ("POST", "/privacy/erase", b""),
    ],
)
async def test_a_subject_that_is_not_valid_unicode_is_a_400_naming_it_not_a_500(
    tmp_path: Path, method: str, path: str, query: bytes
) -> None:
    d = Demo(tmp_path, principal=by_token)
    token = [("X-Token", '{"sub": "al\\ud800ice"}')]
    async with lifespan(d.app):
        r = await asgi_request(d.app, method, path, headers=token, query_string=query)
        assert r.status == 400, r.body
        assert r.header("content-type") == "application/problem+json"
        assert "subject" in r.json()["detail"]
        assert "privacy.refused" not in await d.audit_actions()  # it has no hash to name it by
        assert d.erased == []
        fine = await asgi_request(d.app, "POST", "/privacy/erase",
                                  headers=[("X-Token", '{"sub": "alice"}')])  # fmt: skip
        assert fine.status == 200  # the same resolver, with a valid subject, still works


async def test_code_passing_such_a_subject_gets_a_readykit_error(demo: Demo) -> None:
    from readykit.errors import ReadykitError

    with pytest.raises(ReadykitError, match="subject id is not valid Unicode"):
        await demo.kit.privacy_jobs.erase("\ud800")  # type: ignore[union-attr]
    assert demo.erased == []


async def test_an_empty_subject_is_nobody_logged_in(tmp_path: Path) -> None:
    """Django's AnonymousUser has username "": an empty id must not be one shared subject
    whose data every anonymous caller could export or erase."""
    d = Demo(tmp_path, principal=lambda scope: dict(scope["headers"]).get(b"x-user", b"").decode())
    async with lifespan(d.app):
        for method, path in [("POST", "/privacy/export"), ("POST", "/privacy/erase")]:
            r = await asgi_request(d.app, method, path)
            assert r.status == 401, r.body
            assert r.header("content-type") == "application/problem+json"
        assert d.erased == []
        assert "privacy.refused" not in await d.audit_actions()


def test_a_fifo_in_place_of_the_key_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = tmp_path / "privacy.key"
    os.mkfifo(path)
    probe = (
        "import sys; from pathlib import Path\n"
        "from readykit import ConfigurationError\n"
        "from readykit.privacy.keys import load_or_create_key\n"
        "try:\n    load_or_create_key(None, Path(sys.argv[1]))\n"
        "except ConfigurationError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in done.stdout
    assert str(path) in done.stdout


EMAIL = "alice@example.com"


async def test_what_erasers_and_exporters_say_names_the_subject_by_its_hash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Their errors and reasons often quote the id they were given: the erasure log, the
    audit trail, the job and the log outlive the erasure, so they hold the actor hash."""
    d = Demo(tmp_path)

    @d.kit.privacy.eraser("billing")
    async def billing(subject: str) -> int:
        raise LookupError(f"no billing account for {subject}")

    @d.kit.privacy.eraser("crm")
    async def crm(subject: str) -> dict[str, Any]:
        return {"retained": 1, "reasons": [f"contract of {subject.upper()} kept"]}

    @d.kit.privacy.exporter("broken")
    async def broken(subject: str) -> list[Any]:
        raise KeyError(subject)

    caplog.set_level(logging.INFO, logger="readykit.privacy")
    async with lifespan(d.app):
        job = await ready_job(d, EMAIL)
        store = d.kit.records.store  # type: ignore[union-attr]
        failed = json.dumps(await store.docs("privacy_export"))  # before the erasure wipes it
        done = await erase(d, EMAIL)
        await d.kit.records.writer.flush()  # type: ignore[union-attr]
        kept = json.dumps([await store.docs(ERASURE), await store.docs("privacy_export"),
                           await store.audit()], default=str)  # fmt: skip
    actor = d.kit.privacy_jobs.keys.actor(EMAIL)  # type: ignore[union-attr]
    assert job["status"] == "failed"
    report = done.json()["report"]
    assert report["billing"]["error"] == f"LookupError: no billing account for {actor}"
    assert report["crm"]["reasons"] == [f"contract of {actor} kept"]
    assert EMAIL.lower() not in (kept + failed + caplog.text).lower()
    assert f"KeyError: '{actor}'" in failed  # the job's detail: what failed, for operators
    assert f"privacy export {job['id']} failed" in caplog.text
    assert f"KeyError: '{actor}'" in caplog.text  # its traceback, scrubbed


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/privacy/erase/"), ("post", "/privacy/erase"), ("DELETE", "/privacy/export/a"),
     ("POST", "/privacy/export/"), ("PUT", "/privacy/erase"), ("PATCH", "/privacy/export/a/b")],
)  # fmt: skip
async def test_every_request_the_privacy_layer_answers_is_audited_by_the_keyed_hash(
    demo: Demo, method: str, path: str
) -> None:
    """Auto-audit would name the raw principal; the layer audits its 405 itself."""
    assert (await demo.request(method, path, EMAIL)).status == 405
    await demo.kit.records.writer.flush()  # type: ignore[union-attr]
    rows = await demo.kit.records.store.audit()  # type: ignore[union-attr]
    actor = demo.kit.privacy_jobs.keys.actor(EMAIL)  # type: ignore[union-attr]
    assert [(r["action"], r["actor"]) for r in rows] == [("privacy.refused", actor)]


async def test_without_privacy_endpoints_the_apps_routes_there_are_audited(
    tmp_path: Path,
) -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def own(request: Any) -> PlainTextResponse:
        return PlainTextResponse("the app's own")

    kit = ReadyKit(Settings(configure_logging=False, store_url=f"sqlite:///{tmp_path}/r.db",
                            privacy_key_path=str(tmp_path / "k")), principal=by_header)  # fmt: skip
    app = kit.wrap(Starlette(routes=[Route("/privacy/export/{x}", own, methods=["POST"])]))
    async with lifespan(app):
        r = await asgi_request(app, "POST", "/privacy/export/1", headers=user("alice"))
        assert r.status == 200
        await kit.records.writer.flush()  # type: ignore[union-attr]
        rows = await kit.records.store.audit()  # type: ignore[union-attr]
    assert [(e["action"], e["actor"]) for e in rows] == [("POST /privacy/export/{x}", "alice")]


async def test_slow_privacy_requests_are_recorded_without_the_principal(tmp_path: Path) -> None:
    d = Demo(tmp_path, slow_request_ms=1e-9)  # every request is "slow"
    async with lifespan(d.app):
        assert (await erase(d, EMAIL)).status == 200
        await d.kit.records.writer.flush()  # type: ignore[union-attr]
        slow = await d.kit.records.store.entries("slow_request")  # type: ignore[union-attr]
    assert {e["data"]["path"] for e in slow} == {"/privacy/erase"}
    assert EMAIL not in json.dumps(slow)


class FailingStore:
    """Makes the store's writes of one kind fail (StoreUnavailable) while `when` says so."""

    def __init__(self, demo: Demo, kind: str, when: Callable[[dict[str, Any]], bool]) -> None:
        self.store = demo.kit.records.store  # type: ignore[union-attr]
        self.put_doc = self.store.put_doc
        self.kind, self.when = kind, when

    async def __call__(self, kind: str, id: str, body: dict[str, Any], **kw: Any) -> None:
        from readykit.records.store import StoreUnavailable

        if kind == self.kind and self.when(body):
            raise StoreUnavailable("connection lost (password=LEAKCANARY)")
        await self.put_doc(kind, id, body, **kw)


async def test_an_erasure_is_logged_before_its_erasers_run(demo: Demo) -> None:
    store = demo.kit.records.store  # type: ignore[union-attr]
    seen: list[list[str]] = []

    @demo.kit.privacy.eraser("check")
    async def check(subject: str) -> int:
        seen.append([e["status"] for e in await store.docs(ERASURE)])
        return 0

    assert (await erase(demo)).status == 200
    assert seen == [["started"]]
    (entry,) = await store.docs(ERASURE)
    assert entry["status"] == "done"
    assert entry["report"]["check"]["removed"] == 0


async def test_a_store_down_before_the_erasure_is_a_503_and_the_token_still_works(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = (await demo.request("POST", "/privacy/erase")).json()["confirm"]
    body = json.dumps({"confirm": token}).encode()
    failing = FailingStore(demo, ERASURE, lambda body: True)
    monkeypatch.setattr(failing.store, "put_doc", failing)
    refused = await demo.request("POST", "/privacy/erase", body=body)
    assert (refused.status, refused.header("retry-after")) == (503, "60")
    assert "LEAKCANARY" not in refused.body.decode()
    assert demo.erased == []
    monkeypatch.setattr(failing.store, "put_doc", failing.put_doc)
    assert (await demo.request("POST", "/privacy/erase", body=body)).status == 200
    assert demo.erased == ["alice"]


async def test_a_store_failing_after_the_erasers_leaves_the_erasure_to_replay(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = FailingStore(demo, ERASURE, lambda body: body.get("status") == "done")
    monkeypatch.setattr(failing.store, "put_doc", failing)
    answer = await erase(demo)
    assert (answer.status, answer.header("retry-after")) == (503, "60")
    assert "was erased" in answer.json()["detail"]
    monkeypatch.setattr(failing.store, "put_doc", failing.put_doc)
    (entry,) = await failing.store.docs(ERASURE)
    assert entry["status"] == "started"  # logged before the erasers ran: a replay repeats it
    assert await demo.kit.privacy_jobs.replay() == 1  # type: ignore[union-attr]
    assert demo.erased == ["alice", "alice"]
    assert "privacy.erase" in await demo.audit_actions()


async def test_an_erase_token_is_refused_from_the_second_it_expires(demo: Demo) -> None:
    with time_machine.travel(T0, tick=False):
        token = (await demo.request("POST", "/privacy/erase")).json()["confirm"]
        body = json.dumps({"confirm": token}).encode()
        assert (await demo.request("POST", "/privacy/erase", body=body)).status == 200
    expires = int(token.split(".")[0])
    for at in (expires, expires + 0.3, expires + 0.999):
        with time_machine.travel(at, tick=False):
            assert (await demo.request("POST", "/privacy/erase", body=body)).status == 403
    assert demo.erased == ["alice"]


@pytest.mark.parametrize("secret", ["k7", "fifteen-chars!!", " " * 20])
def test_a_short_privacy_secret_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    from readykit import ConfigurationError

    line = "READYKIT_PRIVACY_SECRET: needs at least 16 characters"
    with pytest.raises(ConfigurationError, match=line) as from_code:
        Settings(privacy_secret=secret)  # type: ignore[arg-type]
    monkeypatch.setenv("READYKIT_PRIVACY_SECRET", secret)
    with pytest.raises(ConfigurationError) as from_env:
        Settings()
    assert str(from_env.value) == str(from_code.value)
    assert "\n" not in str(from_code.value)
    assert secret.strip() not in str(from_code.value) or not secret.strip()
    Settings(privacy_secret="sixteen-chars-ok")  # type: ignore[arg-type]


async def test_an_erase_tokens_signature_is_no_download_link(demo: Demo) -> None:
    """The signatures say what they sign: "erase" and "download" never stand for each other."""
    token = (await demo.request("POST", "/privacy/erase")).json()["confirm"]
    expires, _, sig = token.partition(".")
    path = "/privacy/export/erase\x1falice/download"
    forged = await demo.request("GET", path, query=f"expires={expires}&sig={sig}".encode())
    assert forged.status == 403  # before: the signature held, and the missing job said 404


async def test_privacy_answers_are_not_cached(demo: Demo) -> None:
    created = await demo.request("POST", "/privacy/export")
    await demo.kit.privacy_jobs.wait()  # type: ignore[union-attr]
    status = await demo.request("GET", created.json()["status_url"])
    token = await demo.request("POST", "/privacy/erase")
    for answer in (created, status, token):
        assert [v for k, v in answer.headers if k.lower() == b"cache-control"] == [b"no-store"]


async def test_links_include_the_root_path(demo: Demo) -> None:
    """Behind `--root-path /api` the client's URLs start with /api."""

    async def behind(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "root_path": "/api", "path": "/api" + scope["path"]}
        await demo.app(scope, receive, send)

    created = await asgi_request(behind, "POST", "/privacy/export", headers=user("alice"))
    assert created.json()["status_url"].startswith("/api/privacy/export/")
    await demo.kit.privacy_jobs.wait()  # type: ignore[union-attr]
    status = await asgi_request(behind, "GET", created.json()["status_url"][4:],
                                headers=user("alice"))  # fmt: skip
    link = status.json()["download_url"]
    assert link.startswith("/api/privacy/export/")
    path, _, query = link.partition("?")
    download = await asgi_request(behind, "GET", path[4:], headers=user("alice"),
                                  query_string=query.encode())  # fmt: skip
    assert download.status == 200


async def test_an_export_over_its_cap_fails_readably_and_keeps_nothing(tmp_path: Path) -> None:
    d = Demo(tmp_path)

    @d.kit.privacy.exporter("events")
    async def events(subject: str) -> AsyncIterator[dict[str, Any]]:
        for n in range(10_000):
            yield {"n": n, "payload": "x" * 100}

    async with lifespan(d.app):
        d.kit.privacy_jobs.max_export_bytes = 100_000  # type: ignore[union-attr]
        job = await ready_job(d)
        (stored,) = await d.kit.records.store.docs("privacy_export")  # type: ignore[union-attr]
    assert job["status"] == "failed"
    assert job["error"].startswith("your data is too large to export here")
    assert "cap of 100000 bytes" in stored["detail"]
    assert "'events'" in stored["detail"]
    assert list(Path(d.kit.settings.privacy_archive_dir).iterdir()) == []


async def test_a_large_export_is_streamed_into_the_archive(tmp_path: Path) -> None:
    """Records go into the archive as the exporter yields them: the JSON is what
    json.dumps(records, indent=2) would write."""
    d = Demo(tmp_path)
    rows = [{"n": n, "text": "é" * 50} for n in range(5000)]

    @d.kit.privacy.exporter("events")
    async def events(subject: str) -> AsyncIterator[dict[str, Any]]:
        for row in rows:
            yield row

    async with lifespan(d.app):
        job = await ready_job(d)
        path, _, query = job["download_url"].partition("?")
        r = await d.request("GET", path, query=query.encode())
    assert job["counts"] == {"orders": 2, "profile": 1, "events": 5000}
    with zipfile.ZipFile(io.BytesIO(r.body)) as z:
        text = z.read("events.json").decode()
        assert text == json.dumps(rows, ensure_ascii=False, indent=2)
        assert json.loads(z.read("orders.json")) == ORDERS["alice"]


@pytest.mark.parametrize("where", ["under-a-file", "missing-parent"])
def test_a_key_file_that_cannot_be_created_names_the_variable(tmp_path: Path, where: str) -> None:
    from readykit import ConfigurationError
    from readykit.privacy.keys import load_or_create_key

    if where == "under-a-file":
        (tmp_path / "a-file").write_text("not a directory")
        path = tmp_path / "a-file" / "privacy.key"  # FileExistsError from mkdir, once
    else:
        path = Path("/proc/readykit-nope/privacy.key")  # FileNotFoundError from mkdir, once
    with pytest.raises(ConfigurationError) as refused:
        load_or_create_key(None, path)
    line = str(refused.value)
    assert line.startswith(f"privacy_key_path: cannot create the privacy key file {path} ("), line
    assert "READYKIT_PRIVACY_SECRET" in line
    assert "\n" not in line


@pytest.mark.parametrize("value", ["", ".", "/", "keys/"])
def test_a_key_path_that_names_no_file_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from readykit import ReadyKit

    monkeypatch.setenv("READYKIT_PRIVACY_KEY_PATH", value)
    kit = ReadyKit()
    assert str(kit.config_error).startswith(
        f"READYKIT_PRIVACY_KEY_PATH: {value!r} names no file"
    ), kit.config_error
