"""One run over N generator processes: each runs the engine on its share, the parent merges.

Workers send every interval's histogram encoded; the parent decodes and adds them, so merged
percentiles are exact (HdrHistogram addition), never averages of percentiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue as queue_mod
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from readykit.errors import ToolFailure
from readykit.load import scenario as sc
from readykit.load.engine import Engine, RunSpec, Totals, run_blocking
from readykit.load.result import LoadResult, build_result, plan_intervals
from readykit.load.stats import Interval, Timeline

START_TIMEOUT_S = 60.0


class LoadToolError(ToolFailure):
    """The load generator itself failed (a worker died, could not start): exit code 3."""


@dataclass(frozen=True)
class Target:
    """A picklable recipe for the scenario, so each worker process can load it itself."""

    url: str | None = None
    scenario_path: str | None = None

    def load(self) -> sc.Scenario:
        if self.scenario_path:
            return sc.load(self.scenario_path, base_url=self.url)
        if not self.url:
            raise sc.ScenarioError("give a URL or a scenario file")
        return sc.from_url(self.url)


@dataclass(frozen=True)
class StepPlan:
    """One run's whole load (all workers together)."""

    target: Target
    users: int | None = None
    rate: float | None = None
    duration_s: float = 10.0
    warmup_s: float | None = None
    workers: int = 1
    connections: int = 256
    timeout_s: float = 10.0
    max_requests: int | None = None

    def config(self, scenario: sc.Scenario) -> dict[str, Any]:
        """What makes two runs comparable (baselines refuse to compare different configs)."""
        interval, warm = plan_intervals(self.duration_s, self.warmup_s)
        out: dict[str, Any] = {
            "target": scenario.base_url if scenario.kind != "url" else scenario.source,
            "scenario": scenario.fingerprint,
            "mode": "users" if self.rate is None else "rate",
            "users": self.users,
            "rate": self.rate,
            "duration_s": self.duration_s,
            "warmup_s": round(warm * interval, 3),
            "workers": self.workers,
            "timeout_s": self.timeout_s,
        }
        if self.rate is not None:
            out["connections"] = self.connections
        return out

    def shares(self) -> list[RunSpec]:
        """Each worker's RunSpec: users, rate, connections and request cap split evenly."""
        interval, warm = plan_intervals(self.duration_s, self.warmup_s)
        n = max(1, self.workers)
        if self.users is not None:
            n = min(n, self.users)
        specs = []
        for i in range(n):
            users = None
            if self.users is not None:
                users = self.users // n + (1 if i < self.users % n else 0)
            cap = None
            if self.max_requests is not None:
                cap = max(1, self.max_requests // n + (1 if i < self.max_requests % n else 0))
            specs.append(
                RunSpec(
                    users=users,
                    rate=self.rate / n if self.rate is not None else None,
                    duration_s=self.duration_s,
                    interval_s=interval,
                    connections=max(1, self.connections // n),
                    timeout_s=self.timeout_s,
                    max_requests=cap,
                    warmup_intervals=warm,
                    seed=i,
                )
            )
        return specs


OnInterval = Callable[[Timeline], None]


def _finish(
    plan: StepPlan, scenario: sc.Scenario, timeline: Timeline, totals: list[Totals]
) -> LoadResult:
    return build_result(
        plan.config(scenario),
        timeline,
        elapsed_s=max((t.elapsed_s for t in totals), default=0.0),
        scheduled=sum(t.scheduled for t in totals),
        missed=sum(t.missed for t in totals),
        unfinished=sum(t.unfinished for t in totals),
        interrupted=any(t.interrupted for t in totals),
    )


def _timeline(plan: StepPlan) -> Timeline:
    interval, warm = plan_intervals(plan.duration_s, plan.warmup_s)
    return Timeline(interval, warm)


def run_step(
    plan: StepPlan, on_interval: OnInterval | None = None, scenario: sc.Scenario | None = None
) -> LoadResult:
    """Run `plan` to the end (blocking); Ctrl-C ends it early with what ran."""
    scenario = scenario or plan.target.load()
    timeline = _timeline(plan)
    specs = plan.shares()
    if len(specs) == 1:

        def emit(piece: Interval) -> None:
            timeline.add(piece)
            if on_interval is not None:
                on_interval(timeline)

        totals = run_blocking(Engine(scenario, specs[0], emit))
        return _finish(plan, scenario, timeline, [totals])
    return _finish(plan, scenario, timeline, _run_processes(plan, specs, timeline, on_interval))


async def run_step_async(
    plan: StepPlan,
    scenario: sc.Scenario | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> LoadResult:
    """Run `plan` from async code: one worker in the running loop, more in processes.

    `clock` is the engine's clock for one worker (tests pass a virtual-time loop's `time`);
    worker processes always use their own monotonic clock.
    """
    scenario = scenario or plan.target.load()
    specs = plan.shares()
    if len(specs) > 1:
        return await asyncio.to_thread(run_step, plan, None, scenario)
    timeline = _timeline(plan)
    engine = Engine(scenario, specs[0], timeline.add, stop=asyncio.Event(), clock=clock)
    totals = await engine.run()
    return _finish(plan, scenario, timeline, [totals])


def _run_processes(
    plan: StepPlan, specs: list[RunSpec], timeline: Timeline, on_interval: OnInterval | None
) -> list[Totals]:
    # Plain child interpreters talking JSON lines, not multiprocessing: "spawn" re-imports the
    # caller's __main__, which breaks scripts without a main guard.
    inbox: queue_mod.Queue[tuple[int, dict[str, Any] | None]] = queue_mod.Queue()
    procs: list[subprocess.Popen[str]] = []
    readers: list[threading.Thread] = []
    totals: dict[int, Totals] = {}
    try:
        for i, spec in enumerate(specs):
            proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            reader = threading.Thread(target=_reader, args=(i, proc, inbox), daemon=True)
            reader.start()
            readers.append(reader)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"target": asdict(plan.target), "spec": asdict(spec)}))
            proc.stdin.write("\n")
            proc.stdin.flush()
        ready: set[int] = set()
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(ready) < len(procs):
            worker, msg = _next(inbox, deadline, "did not start")
            if msg["kind"] == "ready":
                ready.add(worker)
            elif msg["kind"] == "error":
                raise LoadToolError(f"load worker {worker} failed to start: {msg['error']}")
        for proc in procs:  # the start line: every worker begins its run now
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        deadline = time.monotonic() + plan.duration_s + plan.timeout_s + 30.0
        while len(totals) < len(procs):
            try:
                worker, msg = _next(inbox, deadline, "did not finish")
            except KeyboardInterrupt:
                for proc in procs:  # the terminal usually signalled them too; make sure
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGINT)
                continue
            if msg["kind"] == "interval":
                timeline.add(Interval.from_wire(msg["data"]))
                if on_interval is not None:
                    on_interval(timeline)
            elif msg["kind"] == "done":
                totals[worker] = Totals(**msg["data"])
            elif msg["kind"] == "error":
                raise LoadToolError(f"load worker {worker} failed: {msg['error']}")
    finally:
        for proc in procs:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for reader in readers:
            reader.join(5.0)
        for proc in procs:
            if proc.stdout is not None:
                proc.stdout.close()
    return list(totals.values())


def _next(
    inbox: queue_mod.Queue[tuple[int, dict[str, Any] | None]], deadline: float, what: str
) -> tuple[int, dict[str, Any]]:
    """The next worker message; a worker that exits without finishing is a tool failure."""
    timeout = deadline - time.monotonic()
    if timeout <= 0:
        raise LoadToolError(f"load workers {what} in time")
    try:
        worker, msg = inbox.get(timeout=timeout)
    except queue_mod.Empty:
        raise LoadToolError(f"load workers {what} in time") from None
    if msg is None:
        raise LoadToolError(f"load worker {worker} exited before finishing its run")
    return worker, msg


def _reader(
    index: int,
    proc: subprocess.Popen[str],
    inbox: queue_mod.Queue[tuple[int, dict[str, Any] | None]],
) -> None:
    assert proc.stdout is not None
    finished = False
    for line in proc.stdout:
        msg = json.loads(line)
        finished = finished or msg["kind"] in ("done", "error")
        inbox.put((index, msg))
    if not finished:
        inbox.put((index, None))


_CHILD = "from readykit.load.workers import worker_main; worker_main()"


def _exit_when_parent_goes() -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdin.read()
    os._exit(0)


def worker_main() -> None:
    """Entry point of a worker process: spec on stdin, then `go`; JSON lines on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the engine installs its own handler
    out = sys.stdout

    def send(kind: str, **fields: Any) -> None:
        try:
            out.write(json.dumps({"kind": kind, **fields}) + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):  # the parent is gone: nobody to load for
            os._exit(0)

    job = json.loads(sys.stdin.readline())
    try:
        scenario = Target(**job["target"]).load()
        spec = RunSpec(**job["spec"])
    except Exception as exc:
        send("error", error=str(exc))
        return
    send("ready")
    if sys.stdin.readline().strip() != "go":
        return
    # the parent holds our stdin open until the end: end of file means it is gone (killed),
    # and a worker must never go on loading the target on its own
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()

    def emit(piece: Interval) -> None:
        send("interval", data=piece.to_wire())

    try:
        totals = run_blocking(Engine(scenario, spec, emit))
    except Exception as exc:  # reported to the parent, which exits 3
        send("error", error=f"{type(exc).__name__}: {exc}")
        return
    send("done", data=asdict(totals))
