"""`readykit check` end to end: exit codes, the report formats, redaction, config overrides."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.finding import CATEGORIES, SEVERITIES
from readykit.cli import cli
from readykit.serve import free_port

DOTENV = "SECRET_KEY=supersecretvalue123\nDATABASE_URL=postgres://app:hunter2pass@db/app\n"
SECRETS = ("supersecretvalue123", "hunter2pass")


def leaky() -> Starlette:
    async def env(request: Request) -> Response:
        return PlainTextResponse(DOTENV)

    async def index(request: Request) -> Response:
        return JSONResponse({"hello": "world"})

    return Starlette(routes=[Route("/", index), Route("/.env", env)])


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["check", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_unreachable_url_is_one_line_and_exit_3() -> None:
    code, _, err = invoke(f"http://127.0.0.1:{free_port()}", "-q")
    assert code == 3
    assert len(err.strip().splitlines()) == 1
    assert "cannot reach" in err


def test_full_check_writes_every_format_without_secrets(serve_app, tmp_path: Path) -> None:
    url = serve_app(leaky())
    out = {name: tmp_path / f"report.{name}" for name in ("json", "md", "html")}
    code, stdout, _ = invoke(
        url, "--json", str(out["json"]), "--markdown", str(out["md"]), "--html", str(out["html"])
    )
    assert code == 1  # the readable .env is a blocker
    doc = json.loads(out["json"].read_text())
    assert doc["verdict"] == "not-ready"
    assert isinstance(doc["score"], int)
    assert 0 <= doc["score"] <= 100
    assert set(doc["categories"]) == set(CATEGORIES)
    for finding in doc["findings"]:
        assert {"check", "category", "severity", "title", "evidence"} <= finding.keys()
        assert finding["category"] in CATEGORIES
        assert finding["severity"] in SEVERITIES
        assert {"request", "status", "response"} <= finding["evidence"].keys()
    dotenv = next(f for f in doc["findings"] if f["check"] == "exposure.dotenv")
    assert dotenv["severity"] == "blocker"
    assert "SECRET_KEY=[REDACTED]" in dotenv["evidence"]["response"]
    html = out["html"].read_text()
    assert html.startswith("<!doctype html>")
    assert "<script" not in html
    assert "<link" not in html
    assert "src=" not in html
    assert "exposure.dotenv" in out["md"].read_text()
    assert "verdict: not-ready" in stdout
    for text in (*(p.read_text() for p in out.values()), stdout):
        for secret in SECRETS:
            assert secret not in text


def test_config_overrides_change_the_verdict(serve_app, tmp_path: Path) -> None:
    url = serve_app(leaky())
    config = tmp_path / "check.yaml"
    report = tmp_path / "r.json"
    base = [url, "--only", "exposure", "-q", "--json", str(report), "--config", str(config)]

    config.write_text("rules: {}\n")
    assert invoke(*base)[0] == 1

    config.write_text("rules:\n  exposure.dotenv: WARN\n")
    assert invoke(*base)[0] == 2
    assert json.loads(report.read_text())["verdict"] == "warnings"

    config.write_text("rules:\n  exposure: IGNORE\n")
    assert invoke(*base)[0] == 0
    doc = json.loads(report.read_text())
    assert doc["verdict"] == "ready"
    ignored = [f["check"] for f in doc["ignored"]]
    assert "exposure.dotenv" in ignored
    assert all(check.startswith("exposure.") for check in ignored)


def test_ready_service_exits_0(serve_app, tmp_path: Path) -> None:
    url = serve_app(leaky())
    assert invoke(url, "--only", "cors", "-q")[0] == 0


def test_bad_config_and_bad_options_exit_3(serve_app, tmp_path: Path) -> None:
    url = serve_app(leaky())
    config = tmp_path / "check.yaml"
    config.write_text("rules:\n  cors: SOMETIMES\n")
    code, _, err = invoke(url, "--config", str(config), "-q")
    assert code == 3
    assert "SOMETIMES" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = invoke(url, "--p95-budget", "fast")
    assert code == 3
    assert "fast" in err
    code, _, err = invoke(url, "--openapi", str(tmp_path / "missing.json"))
    assert code == 3
    assert "cannot read" in err


def test_openapi_file_drives_discovery(serve_app, tmp_path: Path) -> None:
    url = serve_app(leaky())
    spec = tmp_path / "api.yaml"
    spec.write_text("openapi: 3.1.0\npaths:\n  /:\n    get: {}\n    delete: {}\n")
    report = tmp_path / "r.json"
    invoke(url, "--openapi", str(spec), "--only", "cors", "-q", "--json", str(report))
    discovery = json.loads(report.read_text())["discovery"]
    assert discovery["source"] == str(spec)
    assert discovery["endpoints"] == ["GET /"]


def test_no_url_checks_the_bundled_demo(tmp_path: Path) -> None:
    report = tmp_path / "demo.json"
    code, _, _ = invoke("--only", "health", "--only", "observability", "-q", "--json", str(report))
    doc = json.loads(report.read_text())
    assert doc["target"].startswith("http://127.0.0.1:")
    assert doc["discovery"]["source"] == "/openapi.json"
    assert doc["categories"]["health"]["blockers"] == 0
    assert code in (0, 2)


def test_the_bundled_demo_has_no_blockers(tmp_path: Path) -> None:
    """The whole default check of the demo: what `make check` runs."""
    report = tmp_path / "demo.json"
    code, _, _ = invoke("-q", "--json", str(report))
    doc = json.loads(report.read_text())
    problems = [
        (f["check"], f["title"], f["evidence"]["response"])
        for f in doc["findings"]
        if f["severity"] != "info"
    ]
    assert problems == []
    assert doc["verdict"] == "ready"
    assert code == 0
    # started with an ops token: the inside view ran, and no secret reached the report
    assert doc["categories"]["inside-view"]["score"] == 100
    assert any(f["check"] == "inside-view.audit" for f in doc["findings"])
    for category in ("security-headers", "rate-limiting", "input-handling", "exposure"):
        assert doc["categories"][category]["blockers"] == 0, category


def test_endpoint_and_fail_on_options(serve_app, tmp_path: Path) -> None:
    url = serve_app(leaky())
    report = tmp_path / "r.json"
    args = ["--only", "exposure", "-q", "--json", str(report), "--endpoint", "GET /items/{id}"]
    assert invoke(url, *args)[0] == 1  # the leaked .env: blockers
    assert json.loads(report.read_text())["discovery"]["sources"]["GET /items/{id}"] == (
        "--endpoint"
    )
    assert invoke(url, *args, "--fail-on", "blocker")[0] == 1
    config = tmp_path / "c.yaml"
    config.write_text("rules:\n  exposure.dotenv: WARN\n")
    warned = [*args, "--config", str(config)]
    assert invoke(url, *warned)[0] == 2
    assert invoke(url, *warned, "--fail-on", "warning")[0] == 1
    assert invoke(url, *warned, "--fail-on", "blocker")[0] == 0
    code, _, err = invoke(url, "--endpoint", "DELETE /items")
    assert code == 3
    assert len(err.strip().splitlines()) == 1


def test_the_p95_budget_is_read_by_the_one_duration_parser() -> None:
    import pytest

    from readykit.check.cli import parse_ms
    from readykit.durations import BadDuration

    for text, ms in (("300ms", 300), ("0.3s", 300), ("300", 300), ("1m", 60_000)):
        assert parse_ms(text) == pytest.approx(ms), text
    for bad in ("0", "fast", "-1s"):
        with pytest.raises(BadDuration, match="--p95-budget"):
            parse_ms(bad)
