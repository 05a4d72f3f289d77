"""`readykit load URL …` and `readykit load merge A.json B.json`.

Exit codes: 0 pass, 1 a threshold failed or the baseline regressed, 2 bad input (one line),
3 the tool failed (target unreachable, a worker died), 130 interrupted (after the summary).
Heavy imports happen inside the commands so `readykit --help` stays fast.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from readykit.clitools import HTTP_URL, Failed, UserError, output_dir_ok, writing


class _LoadGroup(click.Group):
    """`readykit load URL …` runs a test; `readykit load merge …` is the one subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("load", cls=_LoadGroup)
def load() -> None:
    """Load-test a URL: closed (--users) or open (--rate) model, sweeps, baselines."""


def _numbers(text: str | None, kind: type[int] | type[float], option: str) -> list[Any]:
    if not text:
        return []
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} takes a comma-separated list of numbers, not {text!r}") from None
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise UserError(f"{option} takes positive numbers, not {text!r}")
    return sorted(set(values))


@load.command(
    "run",
    epilog="Also: readykit load merge A.json B.json [--json OUT.json] merges the --json "
    "results of generators that ran side by side (see readykit load merge --help).",
)
@click.argument("url", required=False, type=HTTP_URL)
@click.option("--scenario", type=click.Path(dir_okay=False), help="YAML or Python scenario file.")
@click.option("--users", type=click.IntRange(min=1), help="Closed model: concurrent users.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Open model: req/s.")
@click.option("--sweep", "sweep_users", help="Users per step, e.g. 1,10,50,100.")
@click.option("--sweep-rate", help="Requests/s per step, e.g. 100,500,1000.")
@click.option("--duration", default="10s", show_default=True, help="Run (or step) length.")
@click.option("--warmup", help="Excluded from the stats [default: 10% of duration, max 5s].")
@click.option("--workers", type=click.IntRange(min=1), help="Generator processes [default: cores].")
@click.option("--connections", type=click.IntRange(min=1), default=256, show_default=True,
              help="Open model: most requests in flight at once.")  # fmt: skip
@click.option("--timeout", default="10s", show_default=True, help="Per-request timeout.")
@click.option("--threshold", "thresholds", multiple=True, help="e.g. 'p95<200ms', 'errors<1%'.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--save-baseline", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--regression-threshold", default="20%", show_default=True,
              help="Smallest slowdown a baseline comparison calls a regression.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No live display.")
def run_command(
    url: str | None,
    scenario: str | None,
    users: int | None,
    rate: float | None,
    sweep_users: str | None,
    sweep_rate: str | None,
    duration: str,
    warmup: str | None,
    workers: int | None,
    connections: int,
    timeout: str,
    thresholds: tuple[str, ...],
    json_path: Path | None,
    html_path: Path | None,
    save_baseline: Path | None,
    baseline: Path | None,
    regression_threshold: str,
    quiet: bool,
) -> None:
    """Load-test URL (or the --scenario file's flows against URL)."""
    _run(**locals())  # readykit's errors reach the root translator (readykit.cli)


def _run(**opts: Any) -> None:
    import threading

    from readykit.load import engine

    # SIGTERM ends a run as Ctrl-C does: the workers stop, the summary of what ran is printed
    # and the exit code says which signal it was (130 or 143). Outside a run (loading the
    # scenario, between sweep steps) it interrupts like Ctrl-C.
    engine.received_signal = None
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        engine.received_signal = signum
        raise KeyboardInterrupt

    if in_main:  # signal handlers can only be set there
        signal.signal(signal.SIGTERM, on_term)
    try:
        _run_main(**opts)
    except KeyboardInterrupt:
        _exit_interrupted(engine.received_signal or signal.SIGINT)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _exit_interrupted(signum: int) -> None:
    what = "terminated" if signum == signal.SIGTERM else "interrupted"
    click.echo(f"{what}: no summary (no run had finished)", err=True)
    raise click.exceptions.Exit(128 + signum)


def _run_main(**opts: Any) -> None:
    from readykit.load import baseline as bl
    from readykit.load import report, sweep
    from readykit.load import thresholds as th
    from readykit.load.preflight import check_reachable
    from readykit.load.result import plan_intervals
    from readykit.load.units import parse_duration
    from readykit.load.workers import StepPlan, Target, run_step

    sweep_users = _numbers(opts["sweep_users"], int, "--sweep")
    sweep_rates = _numbers(opts["sweep_rate"], float, "--sweep-rate")
    modes = [opts["users"] is not None, opts["rate"] is not None, bool(sweep_users)]
    modes.append(bool(sweep_rates))
    if sum(modes) > 1:
        raise UserError("give only one of --users, --rate, --sweep, --sweep-rate")
    if not opts["url"] and not opts["scenario"]:
        raise UserError("give the URL to load (and optionally --scenario FILE)")
    duration_s = parse_duration(opts["duration"], what="--duration", positive=True)
    if duration_s > 24 * 3600:
        raise UserError(f"--duration must be between 0 and 24h, not {opts['duration']!r}")
    warmup_s = parse_duration(opts["warmup"], what="--warmup") if opts["warmup"] else None
    timeout_s = parse_duration(opts["timeout"], what="--timeout", positive=True)
    outputs = (
        ("--json", opts["json_path"], report.write_json),
        ("--html", opts["html_path"], report.write_html),
        ("--save-baseline", opts["save_baseline"], report.write_json),
    )
    for option, path, _ in outputs:
        output_dir_ok(path, option)
        with writing(path, option):
            report.check_writable(path, option)  # before the run, not after it
    limits = [th.parse(t) for t in opts["thresholds"]]
    try:
        percent = float(opts["regression_threshold"].strip().rstrip("%"))
    except ValueError:
        percent = math.nan
    if not 0 < percent < 100:  # nan fails this too
        raise UserError(
            "--regression-threshold takes a percentage between 0 and 100, e.g. 20%, "
            f"not {opts['regression_threshold']!r}"
        )
    practical = percent / 100.0
    if opts["rate"] is not None and not math.isfinite(opts["rate"]):
        raise UserError(f"--rate takes a finite number of requests/s, not {opts['rate']}")
    if warmup_s is not None and warmup_s >= duration_s:
        interval, warm = plan_intervals(duration_s, warmup_s)
        click.echo(
            f"warning: --warmup {opts['warmup']} is not shorter than --duration "
            f"{opts['duration']}; the warm-up is cut to {warm * interval:g}s",
            err=True,
        )
    plan = StepPlan(
        target=Target(url=opts["url"], scenario_path=opts["scenario"]),
        users=opts["users"] if any(modes) else 10,
        rate=opts["rate"],
        duration_s=duration_s,
        warmup_s=warmup_s,
        workers=opts["workers"] or os.cpu_count() or 1,
        connections=opts["connections"],
        timeout_s=timeout_s,
    )
    scenario = plan.target.load()
    is_sweep = bool(sweep_users or sweep_rates)
    base = bl.load(opts["baseline"]) if opts["baseline"] else None
    if base is not None:
        current_config = plan.config(scenario)
        if is_sweep:
            current_config = {k: v for k, v in current_config.items() if k not in ("users", "rate")}
            current_config["steps"] = [float(x) for x in (sweep_users or sweep_rates)]
        bl.check_config(base[0], current_config)
    check_reachable(scenario.base_url)

    live = not opts["quiet"] and sys.stderr.isatty()
    interrupted = False
    try:
        if is_sweep:
            with _SweepLive(live) as sweep_live:
                result_obj: Any = sweep.run(
                    plan, sweep_users, sweep_rates, on_step=sweep_live.on_step
                )
            steps = result_obj.steps
        else:
            result_obj = _with_live(live, plan, lambda cb: run_step(plan, cb, scenario))
            steps = [result_obj]
    except KeyboardInterrupt:  # only between steps; within a step the engine stops cleanly
        raise  # _run says so in one line and exits 130 (143 for SIGTERM)
    interrupted = any(s.interrupted for s in steps)
    data = result_obj.to_dict()

    verdicts: list[str] = []
    passed = True
    if limits and steps:
        ok, lines = th.evaluate(limits, steps[-1])
        passed &= ok
        verdicts += [f"threshold {line}" for line in lines]
    if base is not None:
        found = bl.compare(base[1], steps, practical)
        passed &= not any(v.failed for v in found)
        verdicts += [f"baseline {v.line()}" for v in found]
    data["verdicts"] = verdicts
    data["passed"] = passed

    for line in report.summary_lines(data) + verdicts:
        click.echo(line)
    for step in steps:
        if step.generator_behind:
            click.secho(f"WARNING: {step.warnings[0]}", err=True, fg="red", bold=True)
    for option, path, write in outputs:
        if path and not (interrupted and option == "--save-baseline"):
            with writing(path, option):
                write(path, data)
    if interrupted:
        from readykit.load import engine

        signum = engine.received_signal or signal.SIGINT
        what = "terminated" if signum == signal.SIGTERM else "interrupted"
        click.echo(f"{what}: the summary above covers what ran", err=True)
        raise click.exceptions.Exit(128 + signum)
    if not passed:
        raise Failed("thresholds or baseline failed")


def _with_live(live: bool, plan: Any, fn: Any) -> Any:
    if not live:
        return fn(None)
    from rich.console import Console

    from readykit.load.live import LiveDisplay

    with LiveDisplay(Console(stderr=True), _label(plan), plan.duration_s) as display:
        return fn(display.update)


def _label(plan: Any) -> str:
    return f"{plan.users} users" if plan.rate is None else f"{plan.rate:g} req/s"


class _SweepLive:
    """A live display per sweep step, each closed when the next starts."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.display: Any = None

    def __enter__(self) -> _SweepLive:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.display is not None:
            self.display.__exit__(None, None, None)

    def on_step(self, plan: Any) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console

        from readykit.load.live import LiveDisplay

        if self.display is not None:
            self.display.__exit__(None, None, None)
        self.display = LiveDisplay(Console(stderr=True), _label(plan), plan.duration_s)
        self.display.__enter__()
        return self.display.update


@load.command("merge")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
def merge_command(files: tuple[Path, ...], json_path: Path | None) -> None:
    """Merge results of generators that ran side by side (exact: histograms are added)."""
    from readykit.load import report
    from readykit.load.merge import merge_documents

    output_dir_ok(json_path, "--json")
    with writing(json_path or Path("."), "--json"):
        report.check_writable(json_path, "--json")
    from readykit.load.result import BadResult, parse_results

    docs = []
    for f in files:
        try:
            docs.append(json.loads(f.read_text()))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {f}: {exc}") from exc
        try:
            parse_results(docs[-1])  # fully, so a damaged file is one line, not a traceback
        except BadResult as exc:
            raise UserError(f"{f} is not a readykit load result: {exc}") from None
    try:
        data = merge_documents(docs)
    except (KeyError, TypeError) as exc:
        raise UserError(f"not a readykit load result: missing {exc}") from exc
    for line in report.summary_lines(data):
        click.echo(line)
    if json_path is not None:
        with writing(json_path, "--json"):
            report.write_json(json_path, data)
    else:
        json.dump({k: v for k, v in data.items() if k != "intervals"}, sys.stdout, indent=1)
        click.echo()
