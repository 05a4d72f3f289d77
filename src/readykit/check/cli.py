"""`readykit check [URL]`: grade a running service (or the bundled demo) and write reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from readykit.check.finding import CATEGORIES
from readykit.clitools import (
    HTTP_URL,
    GateCommand,
    UserError,
    missing_extra,
    output_dir_ok,
    writing,
)
from readykit.durations import parse_duration

# what `readykit[check]` brings (pyproject: load, dashboard, and cli through load); with no URL
# the bundled demo needs `readykit[demo]` too: both looked for before any work is done
_CHECK_EXTRAS = ("cli", "load", "dashboard")
_DEMO_EXTRAS = ("cli", "dashboard", "demo", "sqlalchemy")


def parse_ms(value: str) -> float:
    """`300ms`, `0.3s`, `1m` or `300` (milliseconds) as milliseconds (readykit.durations)."""
    return parse_duration(value, what="--p95-budget", default_unit="ms", positive=True) * 1000


def _ms(ctx: click.Context, param: click.Parameter, value: str) -> float:
    return parse_ms(value)  # BadDuration names the option; the root translator shows it


_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command(cls=GateCommand)
@click.argument("url", required=False, type=HTTP_URL)
@click.option("--json", "json_path", type=_FILE, help="Write the JSON report here.")
@click.option("--markdown", "markdown_path", type=_FILE, help="Write a Markdown report here.")
@click.option("--html", "html_path", type=_FILE, help="Write a self-contained HTML report here.")
@click.option(
    "--config", "config_path", type=_FILE, help="YAML rules: check id → FAIL|WARN|IGNORE."
)
@click.option(
    "--openapi", "openapi_path", type=_FILE, help="OpenAPI file (default: /openapi.json)."
)
@click.option(
    "--p95-budget", default="300ms", show_default=True, callback=_ms, help="p95 latency budget."
)
@click.option("--allow-writes", is_flag=True, help="Also send PUT/PATCH (DELETE is never sent).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="Extra trusted CAs.")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(CATEGORIES),
    help="Run only these categories (repeatable).",
)
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="'METHOD /path'",
    help="Also check this endpoint, e.g. 'GET /items/{id}' (repeatable).",
)
@click.option(
    "--baseline",
    "baseline_path",
    type=_FILE,
    help="A saved --json report: fail on a statistically significant p95 or error-rate "
    "regression of any swept endpoint.",
)
@click.option(
    "--ops-token",
    default=None,
    help="The service's READYKIT_OPS_TOKEN: also read its health details and /ops/api "
    "(the inside view). Never written to a report.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["blocker", "warning"]),
    default=None,
    help="Exit 1 at or past this severity and 0 below it (default: 0 ready, 1 blockers, "
    "2 warnings only); inconclusive stays 3.",
)
@click.option("--quiet", "-q", is_flag=True, help="No terminal summary.")
@click.pass_context
def check(
    ctx: click.Context,
    url: str | None,
    json_path: Path | None,
    markdown_path: Path | None,
    html_path: Path | None,
    config_path: Path | None,
    openapi_path: Path | None,
    p95_budget: float,
    allow_writes: bool,
    ca_file: str | None,
    only: tuple[str, ...],
    endpoints: tuple[str, ...],
    baseline_path: Path | None,
    ops_token: str | None,
    fail_on: str | None,
    quiet: bool,
) -> None:
    """Probe a running service and list its blockers with evidence.

    With no URL, start the bundled demo on a free loopback port, check it, and stop it.
    Exit codes: 0 ready, 1 blockers, 2 warnings only, 3 the check itself failed or was
    inconclusive (the target rate-limited it: the report says what was not judged).

    Bounds: discovery <= 45 requests (crawl <= 15 pages, 2 deep); each probe its own request and
    time budget; performance times <= 20 GETs and sweeps <= 3 at 1/4/16 users, 1-3 s and <= 2000
    requests a step; no probe starts after 50 s. DELETE is never sent.
    """
    problem = missing_extra("check", _CHECK_EXTRAS, "check")
    if problem is None and url is None:
        problem = missing_extra("check with no URL (the bundled demo)", _DEMO_EXTRAS, "demo")
    if problem is not None:
        raise problem
    for option, path in (
        ("--json", json_path),
        ("--markdown", markdown_path),
        ("--html", html_path),
    ):
        output_dir_ok(path, option)
    report = _run(
        url,
        config_path,
        openapi_path,
        p95_budget,
        allow_writes,
        ca_file,
        only,
        endpoints,
        baseline_path,
        ops_token,
    )
    _write(report, json_path, markdown_path, html_path)
    if not quiet:
        from readykit.check.report import print_summary

        print_summary(report)
    from readykit.check.scoring import exit_code

    ctx.exit(exit_code(report.verdict, fail_on))  # type: ignore[arg-type]


def _run(
    url: str | None,
    config_path: Path | None,
    openapi_path: Path | None,
    p95_budget: float,
    allow_writes: bool,
    ca_file: str | None,
    only: tuple[str, ...],
    endpoints: tuple[str, ...] = (),
    baseline_path: Path | None = None,
    ops_token: str | None = None,
) -> Any:
    from readykit.check.client import CheckToolError
    from readykit.check.discovery import load_openapi_file, parse_endpoint
    from readykit.check.probe import ProbeOptions
    from readykit.check.runner import CheckOptions, bundled_demo, run_check
    from readykit.check.scoring import load_rules

    rules = load_rules(config_path)
    try:
        extra = tuple(parse_endpoint(e) for e in endpoints)
    except ValueError as exc:
        raise CheckToolError(f"--endpoint: {exc}") from exc
    if openapi_path is not None:
        load_openapi_file(openapi_path)  # fail before starting anything
    if baseline_path is not None:
        from readykit.check.gate import read_baseline

        read_baseline(baseline_path)

    def options(target: str, token: str | None) -> CheckOptions:
        probe = ProbeOptions(
            p95_budget_ms=p95_budget, allow_writes=allow_writes, ca_file=ca_file, ops_token=token
        )
        return CheckOptions(
            target,
            openapi_path,
            rules,
            probe,
            only=only,  # type: ignore[arg-type]
            endpoints=extra,
            baseline=baseline_path,
        )

    if url is not None:
        return run_check(options(url, ops_token))
    with bundled_demo() as (demo_url, demo_token):
        return run_check(options(demo_url, ops_token or demo_token))


def _write(
    report: Any, json_path: Path | None, markdown_path: Path | None, html_path: Path | None
) -> None:
    from readykit.check import report as render

    for option, path, fn in (
        ("--json", json_path, render.to_json),
        ("--markdown", markdown_path, render.to_markdown),
        ("--html", html_path, render.to_html),
    ):
        if path is not None:
            with writing(path, option):
                path.write_text(fn(report))


def _seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    return parse_duration(value, what=f"--{param.name}", positive=True)


@click.command()
@click.argument("url", type=HTTP_URL)
@click.option("--ready", "mode", flag_value="ready", default=True, help="Wait for readiness.")
@click.option("--live", "mode", flag_value="live", help="Wait for liveness instead.")
@click.option(
    "--timeout", default="120s", show_default=True, callback=_seconds, help="Give up after this."
)
@click.option(
    "--interval", default="1s", show_default=True, callback=_seconds, help="Time between polls."
)
@click.option("--path", default=None, help="The health path (default: found, /health/ready …).")
@click.pass_context
def wait(
    ctx: click.Context, url: str, mode: str, timeout: float, interval: float, path: str | None
) -> None:
    """Wait until URL's readiness endpoint passes: for use between a deploy and the gate.

    Refused connections and 503s mean "not yet". Exit codes: 0 ready, 1 not ready in time,
    2 bad option.
    """
    import asyncio

    from readykit.check.wait import wait as wait_for

    if path is not None and (not path.startswith("/") or path.startswith("//")):
        raise UserError("--path must start with a single /")
    outcome = asyncio.run(
        wait_for(url, timeout_s=timeout, interval_s=interval, live=mode == "live", path=path)
    )
    click.echo(f"readykit wait: {outcome.line()}", err=not outcome.ready)
    ctx.exit(0 if outcome.ready else 1)
