"""Scenario files: YAML flows with captures and checks, Python scenarios, errors with lines."""

from __future__ import annotations

import textwrap

import pytest

from readykit.load import run_load
from readykit.load.scenario import ScenarioError, load

FLOW = """\
flows:
  - name: login
    weight: 3
    steps:
      - post: /login
        json: {user: ann}
        capture:
          token: {json: token}
      - get: /me
        headers: {Authorization: "Bearer ${token}"}
        check: {status: 200, json: {user: ann}}
  - name: home
    steps:
      - get: /
        check: {contains: ok}
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_flow_with_capture_and_checks_runs_clean(target, tmp_path) -> None:
    path = write(tmp_path, "flow.yaml", FLOW)
    result = run_load(target.url, scenario=str(path), users=2, duration_s=1.0, workers=1)
    assert result.requests > 20
    assert result.errors_by_kind == {}


def test_failed_checks_and_captures_are_counted_by_kind(target, tmp_path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        """\
        flows:
          - steps:
              - get: /me
                check: {status: 200}
          - steps:
              - get: /
                capture:
                  missing: {header: X-Nope}
        """,
    )
    result = run_load(target.url, scenario=str(path), users=2, duration_s=1.0, workers=1)
    assert set(result.errors_by_kind) == {"http_401", "capture_missing"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "flows:\n  - steps:\n      - get: /\n        chek: {status: 2}\n",
            4,
            "unknown key 'chek'",
        ),
        ("flows:\n  - weight: -1\n    steps:\n      - get: /\n", 2, "weight must be a positive"),
        ("flows:\n  - steps: []\n", 2, "non-empty `steps:`"),
        ("flows:\n  - steps:\n      - method: FETCH\n        path: /\n", 3, "unknown method"),
        ("flows:\n  - steps:\n      - get: /${id}\n", 3, "${id} is used before"),
        ("flows:\n  - steps:\n      - get: /\n        think: soon\n", 4, "is not a duration"),
        ("flows:\n  - steps: [\n", 3, "not valid YAML"),
        ("flow:\n  - steps: []\n", 1, "unknown key 'flow'"),
    ],
)
def test_yaml_errors_name_file_and_line(tmp_path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "s.yaml", text)
    with pytest.raises(ScenarioError) as err:
        load(path, base_url="http://127.0.0.1:1")
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert message in str(err.value)


def test_python_scenario_runs_and_its_errors_name_the_line(target, tmp_path) -> None:
    good = write(
        tmp_path,
        "good.py",
        """\
        async def scenario(user):
            token = (await user.post("/login", json={"user": "ann"})).json()["token"]
            me = await user.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["user"] == "ann"
        """,
    )
    result = run_load(target.url, scenario=str(good), users=2, duration_s=1.0, workers=1)
    assert result.requests > 20
    assert result.errors == 0
    broken = write(tmp_path, "broken.py", "x = 1\ny = undefined_name\n")
    with pytest.raises(ScenarioError, match=r"broken\.py:2: NameError"):
        load(broken, base_url=target.url)
    syntax = write(tmp_path, "syntax.py", "async def scenario(user):\n    return (\n")
    with pytest.raises(ScenarioError, match=r"syntax\.py:2: syntax error"):
        load(syntax, base_url=target.url)


def test_cli_reports_a_scenario_error_as_one_line(tmp_path, target) -> None:
    from click.testing import CliRunner

    from readykit.cli import cli

    path = write(tmp_path, "s.yaml", "flows:\n  - steps:\n      - get: /\n        chek: 1\n")
    result = CliRunner().invoke(cli, ["load", target.url, "--scenario", str(path)])
    assert result.exit_code == 2
    assert f"{path}:4: unknown key 'chek'" in result.output


def _virtual_scenario_run(path, **plan: object):
    from readykit.load.workers import StepPlan, Target, run_step_async
    from virtual_time import known_server, run_virtual

    async def main(loop: object):
        async with known_server() as base:
            step = StepPlan(  # type: ignore[arg-type]
                Target(base, str(path)), workers=1, warmup_s=0.0, **plan
            )
            return await run_step_async(step, clock=loop.time)  # type: ignore[attr-defined]

    return run_virtual(main)


@pytest.mark.parametrize(
    ("raise_", "kind"),
    [("ValueError('bad')", "script_ValueError"), ("SystemExit(1)", "script_SystemExit")],
)
def test_a_scripts_exception_is_an_error_not_a_request(tmp_path, raise_: str, kind: str) -> None:
    path = write(
        tmp_path,
        "s.py",
        f"""\
        async def scenario(user):
            await user.get("/delay?ms=10")
            raise {raise_}
        """,
    )
    result = _virtual_scenario_run(path, users=2, duration_s=1.0)
    # one request per iteration, each followed by one script error
    assert result.requests > 0
    assert result.errors_by_kind == {kind: pytest.approx(result.requests, abs=2)}
    assert result.latency.get_total_count() == result.requests


def test_a_scenario_file_that_is_not_utf8_is_one_error(tmp_path) -> None:
    for name in ("s.py", "s.yaml"):
        path = tmp_path / name
        path.write_bytes(b"# ok\n# caf\xe9\n")
        with pytest.raises(ScenarioError, match=rf"{name}:2: not UTF-8"):
            load(path, base_url="http://127.0.0.1:1")


def test_a_scenario_exiting_at_import_is_an_error(tmp_path) -> None:
    path = write(tmp_path, "s.py", "import sys\nsys.exit(0)\n")
    with pytest.raises(ScenarioError, match=r"s\.py:2: SystemExit"):
        load(path, base_url="http://127.0.0.1:1")


def test_redirects_are_not_followed(target, tmp_path) -> None:
    # one request per step, its own status: a followed 302 would be answered 200 by "/"
    path = write(
        tmp_path,
        "r.yaml",
        """\
        flows:
          - steps:
              - get: /redirect
                check: {status: 302}
        """,
    )
    result = run_load(
        target.url, scenario=str(path), users=1, duration_s=0.5, warmup_s=0.0, workers=1
    )
    assert result.requests > 0
    assert result.errors_by_kind == {}


def test_ctrl_c_while_loading_the_scenario_is_exit_130_without_a_traceback(tmp_path) -> None:
    from click.testing import CliRunner

    from readykit.cli import cli

    path = write(tmp_path, "s.py", "raise KeyboardInterrupt\n")  # as Ctrl-C during the import
    result = CliRunner().invoke(cli, ["load", "http://127.0.0.1:1/", "--scenario", str(path)])
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
