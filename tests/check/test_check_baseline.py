"""`readykit check --baseline`: per-endpoint p95 and error rate against a saved report.

The gate end to end runs `check()` on virtual time (`virtual_time.py`), so "the same speed" and
"four times slower" are exact whatever the host is doing.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from readykit.check.client import CheckToolError
from readykit.check.discovery import Endpoint
from readykit.check.gate import compare, findings, read_baseline
from readykit.check.probe import ProbeOptions
from readykit.check.report import to_json
from readykit.check.runner import CheckOptions, Report, check
from readykit.cli import cli
from readykit.load.stats import encode, new_histogram, record
from virtual_time import VirtualTimeLoop, known_server, run_virtual


def step(users: int, center_ms: float, errors: int = 0, n: int = 400) -> dict[str, Any]:
    rng = random.Random(users * 1000 + int(center_ms))
    hist = new_histogram()
    for _ in range(n):
        record(hist, rng.uniform(0.8, 1.2) * center_ms / 1000)
    return {
        "users": users,
        "requests": n,
        "errors": errors,
        "judged": True,
        "histogram": encode(hist),
    }


def perf(**endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {"endpoints": {f"GET /{k}": {"steps": v} for k, v in endpoints.items()}}


def test_same_latencies_are_no_regression() -> None:
    base = perf(items=[step(1, 10), step(4, 12)])
    verdicts = compare(base, perf(items=[step(1, 10.1), step(4, 12)]))
    assert len(verdicts) == 4  # p95 and error rate at two load levels
    assert not any(v.regression for v in verdicts)
    assert [f.check for f in findings(base, perf(items=[step(1, 10)]), "b.json")] == [
        "performance.baseline"
    ]


def test_a_slower_endpoint_is_a_blocking_regression() -> None:
    base = perf(items=[step(1, 10), step(4, 12)])
    found = findings(base, perf(items=[step(1, 30), step(4, 12)]), "b.json")
    assert [(f.check, f.severity) for f in found] == [("performance.regression", "blocker")]
    assert "GET /items at 1 user(s) p95" in found[0].title


def test_more_errors_is_a_regression_a_few_are_not() -> None:
    base = perf(items=[step(1, 10, errors=0)])
    assert [f.check for f in findings(base, perf(items=[step(1, 10, errors=40)]), "b")] == [
        "performance.regression"
    ]
    assert [f.check for f in findings(base, perf(items=[step(1, 10, errors=1)]), "b")] == [
        "performance.baseline"
    ]


def test_nothing_in_common_is_a_warning() -> None:
    found = findings(perf(items=[step(1, 10)]), perf(other=[step(1, 10)]), "b.json")
    assert [(f.check, f.severity) for f in found] == [
        ("performance.baseline-not-comparable", "warning")
    ]


def test_steps_with_429s_are_not_compared_and_the_warning_says_why() -> None:
    base = perf(items=[step(1, 10), step(4, 12)])
    limited = step(1, 10)
    limited["limited"] = 300  # its latencies are partly the limiter's own
    found = findings(base, perf(items=[limited]), "b.json")
    assert [(f.check, f.severity) for f in found] == [
        ("performance.baseline-not-comparable", "warning")
    ]
    assert found[0].title == (
        "no swept endpoint and load level in common with b.json: the baseline has GET /items "
        "at 1,4 user(s), this run nothing (300 of this run's sweep requests were 429: steps "
        "with 429s are left out)"
    )
    assert "\n" not in found[0].title


def _report_with(title: str) -> Report:
    from readykit.check.finding import Finding

    return Report(
        target="http://127.0.0.1:9",
        started_at="2026-01-01T00:00:00Z",
        duration_s=1.0,
        verdict="ready",
        score=100,
        categories=[],
        findings=[Finding("performance.timings", "performance", "info", title)],
        ignored=[],
        discovery={},
        p95_budget_ms=300.0,
        performance={"endpoints": {"GET /items": {"steps": [step(1, 10)]}}},
    )


def test_latency_histograms_survive_the_reports_redaction(tmp_path: Path) -> None:
    # seen on the demo: a histogram's base64 held `...BiSIgDA=...`, which the redactor took for
    # a `sig=` pair and cut, so the next check's --baseline crashed on it
    looks_like_a_secret = "HISTFAAAA/xyzSig=AB+c"
    report = _report_with("token=hunter2")
    report.performance["endpoints"]["GET /items"]["steps"][0]["histogram"] = looks_like_a_secret
    doc = report.as_dict()
    assert doc["performance"]["endpoints"]["GET /items"]["steps"][0]["histogram"] == (
        looks_like_a_secret
    )
    assert doc["findings"][0]["title"] == "token=[REDACTED]"  # the rest is still redacted
    real = step(1, 10)["histogram"]
    saved = tmp_path / "baseline.json"
    report.performance["endpoints"]["GET /items"]["steps"][0]["histogram"] = real
    saved.write_text(to_json(report))
    steps = read_baseline(saved)["endpoints"]["GET /items"]["steps"]
    assert steps[0]["histogram"] == real


def test_a_damaged_histogram_is_a_one_line_tool_error(tmp_path: Path) -> None:
    damaged = perf(items=[step(1, 10)])
    damaged["endpoints"]["GET /items"]["steps"][0]["histogram"] = "V5y/AvLPXZv8BiSIgDA=[REDACTED]"
    saved = tmp_path / "baseline.json"
    saved.write_text(json.dumps({"performance": damaged}))
    with pytest.raises(CheckToolError, match="damaged latency histogram"):
        read_baseline(saved)
    result = CliRunner().invoke(cli, ["check", "http://127.0.0.1:9", "--baseline", str(saved)])
    assert result.exit_code == 3
    assert len(result.output.strip().splitlines()) == 1


def test_unreadable_baselines_are_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(CheckToolError, match="cannot read"):
        read_baseline(tmp_path / "missing.json")
    (tmp_path / "load.json").write_text(json.dumps({"config": {}, "latency_ms": {}}))
    with pytest.raises(CheckToolError, match="not a readykit check report"):
        read_baseline(tmp_path / "load.json")
    result = CliRunner().invoke(
        cli, ["check", "http://127.0.0.1:9", "--baseline", str(tmp_path / "load.json")]
    )
    assert result.exit_code == 3
    assert len(result.output.strip().splitlines()) == 1


def work_app(ms: float) -> web.Application:
    """A service whose `GET /work` answers after exactly `ms` ms of virtual time."""

    async def work(request: web.Request) -> web.Response:
        await asyncio.sleep(ms / 1000)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/work", work)
    return app


def _report(ms: float, baseline: Path | None = None) -> Report:
    """`readykit check --only performance --endpoint /work` on virtual time."""

    async def main(loop: VirtualTimeLoop) -> Report:
        async with known_server(work_app(ms)) as url:
            options = CheckOptions(
                url,
                only=("performance",),
                probe=ProbeOptions(load_users=(1, 4), load_step_s=0.6),
                endpoints=(Endpoint("GET", "/work", source="--endpoint"),),
                baseline=baseline,
            )
            return await check(options, clock=loop.time)

    return run_virtual(main)


def test_the_gate_on_a_service_of_known_speed(tmp_path: Path) -> None:
    saved = tmp_path / "baseline.json"
    saved.write_text(to_json(_report(10)))
    again = _report(10, saved)
    assert {f.check for f in again.findings} >= {"performance.baseline"}
    assert "performance.regression" not in {f.check for f in again.findings}
    gated = _report(40, saved)  # the next release: four times slower
    regressions = [f for f in gated.findings if f.check == "performance.regression"]
    assert [f.severity for f in regressions] == ["blocker", "blocker"]
    assert [f.title.split(" p95")[0] for f in regressions] == [
        "GET /work at 1 user(s)",
        "GET /work at 4 user(s)",
    ]
    assert gated.verdict == "not-ready"
