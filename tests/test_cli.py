"""The `readykit` command: the real demo under uvicorn, help, and one-line errors."""

import json
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from readykit.cli import cli
from readykit.serve import serve

READYKIT = [sys.executable, "-m", "readykit.cli"]


def test_demo_command_serves_a_ready_demo(tmp_path: Path) -> None:
    with serve([*READYKIT, "demo", "--port", "{port}"], cwd=tmp_path) as server:
        with urllib.request.urlopen(f"{server.url}/health/ready", timeout=10) as resp:
            assert resp.status == 200
            body = json.load(resp)
        with urllib.request.urlopen(f"{server.url}/stats", timeout=10) as resp:
            stats = json.load(resp)
        assert server.stop() in (0, -15)
        output = server.output()
    assert body["status"] == "pass"
    assert set(body["checks"]) == {
        "database:responseTime",
        "jobs:responseTime",
        "migrations:revision",
        "rates:rows",
        "store:responseTime",
        "records-spill:responseTime",
        "records-quarantine:responseTime",
        "audit-anchor:responseTime",
    }
    assert stats["rates"] > 0
    assert (tmp_path / ".readykit" / "demo.db").exists()
    assert f"http://127.0.0.1:{server.port}" in output


def test_help_lists_the_verbs() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


def test_load_help_names_its_merge_subcommand() -> None:
    """`readykit load --help` shows the run's options (`load URL` runs), and names `merge`."""
    result = CliRunner().invoke(cli, ["load", "--help"])
    assert result.exit_code == 0
    assert "--users" in result.output
    assert "readykit load merge" in result.output


def test_bad_port_is_a_usage_error_not_a_traceback() -> None:
    result = CliRunner().invoke(cli, ["demo", "--port", "99999"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--port" in result.output
