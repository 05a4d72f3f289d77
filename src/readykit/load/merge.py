"""Combine results of generators that ran at the same time (e.g. on several machines).

Histograms are added (exact percentiles); counts are summed; the offered load (users or rate)
is summed; the measured time is the longest, so req/s is the combined throughput.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from readykit.errors import ReadykitError
from readykit.load.result import LoadResult, SweepResult, sweep_from_dict
from readykit.load.stats import Interval, merged
from readykit.load.sweep import find_collapse, find_knee

MUST_MATCH = ("target", "scenario", "mode", "duration_s", "warmup_s", "timeout_s")


class MergeError(ReadykitError):
    """The results cannot be merged honestly (different target, mode or duration)."""


def _check(configs: list[dict[str, Any]]) -> None:
    first = configs[0]
    for other in configs[1:]:
        diffs = [k for k in MUST_MATCH if first.get(k) != other.get(k)]
        if diffs:
            raise MergeError(f"cannot merge runs that differ in {', '.join(diffs)}")


def _sum(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def merge_runs(runs: list[LoadResult]) -> LoadResult:
    """One run from runs made side by side."""
    _check([r.config for r in runs])
    errors: Counter[str] = Counter()
    for r in runs:
        errors.update(r.errors_by_kind)
    by_index: dict[int, Interval] = {}
    for r in runs:
        for k, piece in enumerate(r.intervals):
            copy = Interval(k, piece.requests, Counter(piece.errors), merged([piece.hist]))
            if k in by_index:
                by_index[k].add(copy)
            else:
                by_index[k] = copy
    config = dict(runs[0].config)
    for key in ("users", "rate", "workers", "connections"):
        config[key] = _sum([r.config.get(key) for r in runs])
    config["merged_from"] = len(runs)
    services = [r.service for r in runs if r.service is not None]
    return LoadResult(
        config=config,
        requests=sum(r.requests for r in runs),
        errors_by_kind=dict(errors),
        measured_s=max(r.measured_s for r in runs),
        latency=merged([r.latency for r in runs]),
        service=merged(services) if services else None,
        intervals=[by_index[k] for k in sorted(by_index)],
        interval_s=runs[0].interval_s,
        scheduled=sum(r.scheduled for r in runs),
        missed_sends=sum(r.missed_sends for r in runs),
        unfinished=sum(r.unfinished for r in runs),
        interrupted=any(r.interrupted for r in runs),
        warnings=[w for r in runs for w in r.warnings],
    )


def merge_documents(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge result JSON documents (all single runs, or all sweeps with the same steps)."""
    if len(docs) < 2:
        raise MergeError("give at least two result files to merge")
    sweeps = ["steps" in d for d in docs]
    if any(sweeps) and not all(sweeps):
        raise MergeError("cannot merge a sweep with a single run")
    if not any(sweeps):
        return merge_runs([LoadResult.from_dict(d) for d in docs]).to_dict()
    parsed = [sweep_from_dict(d) for d in docs]
    if len({len(s.steps) for s in parsed}) != 1:
        raise MergeError("cannot merge sweeps with different numbers of steps")
    steps = [merge_runs(list(group)) for group in zip(*(s.steps for s in parsed), strict=True)]
    reason = find_collapse(steps)
    config = dict(parsed[0].config)
    config["steps"] = [s.load for s in steps]
    config["merged_from"] = len(parsed)
    return SweepResult(
        config=config,
        steps=steps,
        knee=find_knee(steps),
        collapse=reason is not None,
        collapse_reason=reason,
        interrupted=any(s.interrupted for s in parsed),
    ).to_dict()
