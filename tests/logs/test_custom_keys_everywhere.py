"""READYKIT_REDACT_KEYS reach every sink, not only the logging pipeline and stored records: the
access line (its path), health output, a job's stored error, an audit action and actor, a
privacy failure and a check report all go through `redact_text`, which the kit gives its keys."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit.logging import configure_logging, redact_text
from readykit.logging.redact import MARK
from readykit.logging.setup import flush_access_log
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio

KEY = "badge_code"  # no built-in rule knows it


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def test_the_kits_keys_reach_the_access_line_health_jobs_and_audit(tmp_path: Path) -> None:
    out = StringIO()
    # the pipeline itself is configured without the key: the kit's settings must carry it
    configure_logging(Settings(log_format="json"), stream=out)
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            ops_trust_loopback=True,  # the test reads the health details from loopback
            store_url=f"sqlite:///{tmp_path / 'records.db'}",
            spill_path=str(tmp_path / "spill.jsonl"),
            redact_keys=[KEY],
        )
    )

    @kit.check("vault", critical=False)
    def vault() -> None:
        raise RuntimeError(f"vault refused {KEY}=LEAKHEALTH1")

    app = kit.wrap(Starlette(routes=[Route("/people/{rest:path}", ok)]))
    async with lifespan(app):
        r = await asgi_request(app, "GET", f"/people/{KEY}=LEAKPATH1")
        assert r.status == 200
        health = await asgi_request(app, "GET", "/health")
        message = f"lookup failed for {KEY}=LEAKJOB1"  # the stack shows this line, not that
        with pytest.raises(OSError, match="lookup failed"):
            async with kit.job_run("sync.badges"):
                raise OSError(message)
        [job] = await kit.jobs.status()
        await kit.audit.record(f"badge.update {KEY}=LEAKACTION1", actor=f"{KEY}=LEAKACTOR1")
        assert kit.records is not None
        await kit.records.writer.flush()
        [audit] = await kit.records.store.audit(action=f"badge.update {KEY}={MARK}")
    flush_access_log()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    [access] = [e for e in lines if e.get("event") == "request" and e["path"].startswith("/people")]
    assert access["path"] == f"/people/{KEY}={MARK}"
    assert "LEAKHEALTH1" not in health.body.decode()
    assert f"{KEY}={MARK}" in health.body.decode()
    assert "LEAKJOB1" not in job["runs"][0]["error"]
    assert f"{KEY}={MARK}" in job["runs"][0]["error"]
    assert audit["actor"] == f"{KEY}={MARK}"
    assert "LEAK" not in out.getvalue()


def test_keys_given_later_replace_what_was_remembered() -> None:
    """A text redacted (and remembered) before the kit gave its keys is redacted again by the
    new rules, not served from memory."""
    from readykit.logging.redact import use_keys
    from readykit.records.audit import Audit

    audit = Audit(None, None)  # type: ignore[arg-type]  # events only
    text = "team_mascot=1234abcd"
    assert audit.event(text)["action"] == text  # remembered as harmless
    use_keys(["team_mascot"])
    assert audit.event(text)["action"] == f"team_mascot={MARK}"
    assert redact_text(text) == f"team_mascot={MARK}"
