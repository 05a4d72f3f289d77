"""Results of a run and of a sweep: the Python API's return values and the JSON they write."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from readykit.load.stats import (
    Interval,
    Timeline,
    decode,
    encode,
    interval_row,
    merged,
    new_histogram,
    summary_ms,
)

FORMAT = 1
BEHIND_FRACTION = 0.01  # more missed sends than this and the generator says it fell behind


def plan_intervals(duration_s: float, warmup_s: float | None) -> tuple[float, int]:
    """Interval width (about 60 per run, 0.25 s to 60 s) and how many make the warm-up."""
    interval = min(60.0, max(0.25, duration_s / 60.0))
    if warmup_s is None:
        warmup_s = min(5.0, duration_s * 0.1)
    warm = math.ceil(warmup_s / interval - 1e-9) if warmup_s > 0 else 0
    if warm * interval >= duration_s:
        warm = max(0, math.ceil(duration_s / interval) - 1)
    return interval, warm


@dataclass
class LoadResult:
    """One run (or one sweep step): counts, latency histograms and per-interval samples."""

    config: dict[str, Any]
    requests: int
    errors_by_kind: dict[str, int]
    measured_s: float
    latency: HdrHistogram
    service: HdrHistogram | None
    intervals: list[Interval]
    interval_s: float
    scheduled: int = 0
    missed_sends: int = 0
    unfinished: int = 0
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)
    generator_cpu: float | None = None  # the generator's CPU as a share of one core, if known

    @property
    def users(self) -> int | None:
        return self.config.get("users")

    @property
    def rate(self) -> float | None:
        return self.config.get("rate")

    @property
    def load(self) -> float:
        """The offered load: users or requests/s."""
        return float(self.users if self.users is not None else self.rate or 0)

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.measured_s if self.measured_s > 0 else 0.0

    @property
    def latency_ms(self) -> dict[str, float]:
        """Percentiles in ms; in the open model measured from each intended send time."""
        return summary_ms(self.latency)

    @property
    def p50_ms(self) -> float:
        return self.latency_ms["p50"]

    @property
    def p95_ms(self) -> float:
        return self.latency_ms["p95"]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms["p99"]

    @property
    def generator_behind(self) -> bool:
        """True when the generator could not keep the open-model schedule."""
        return self.scheduled > 0 and self.missed_sends > BEHIND_FRACTION * self.scheduled

    def samples(self, metric: str) -> list[float]:
        """Per-interval values of `p50`, `p95`, `rps` or `error_rate`, for baselines.

        An interval without a response has no latency or error rate, but its throughput was
        a real 0 req/s: `rps` keeps it."""
        rows = self.interval_rows()
        return [float(r[metric]) for r in rows if metric == "rps" or r["requests"] > 0]

    def interval_rows(self) -> list[dict[str, Any]]:
        offset = self.intervals[0].index if self.intervals else 0
        return [interval_row(i, self.interval_s, offset) for i in self.intervals]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; histograms stay encoded so `merge` is exact."""
        out: dict[str, Any] = {
            "users": self.users,
            "rate": self.rate,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "errors_by_kind": dict(sorted(self.errors_by_kind.items())),
            "rps": round(self.rps, 2),
            "measured_s": round(self.measured_s, 3),
            "latency_ms": self.latency_ms,
        }
        if self.service is not None:
            out["service_ms"] = summary_ms(self.service)
            out["scheduled"] = self.scheduled
            out["missed_sends"] = self.missed_sends
            out["generator_behind"] = self.generator_behind
        out["unfinished"] = self.unfinished
        out["interrupted"] = self.interrupted
        if self.generator_cpu is not None:
            out["generator_cpu"] = round(self.generator_cpu, 3)
        out["warnings"] = self.warnings
        out["config"] = self.config
        out["interval_s"] = self.interval_s
        out["intervals"] = self.interval_rows()
        out["histogram"] = encode(self.latency)
        if self.service is not None:
            out["service_histogram"] = encode(self.service)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
        """Inverse of `to_dict` (the per-interval rows keep their encoded histograms)."""
        interval_s = float(data["interval_s"])
        intervals = []
        for k, row in enumerate(data.get("intervals", [])):
            piece = Interval(k, requests=int(row["requests"]), hist=decode(row.get("hist", "")))
            piece.errors = Counter({"error": int(row["errors"])}) if row["errors"] else Counter()
            intervals.append(piece)
        service = data.get("service_histogram")
        return cls(
            config=dict(data["config"]),
            requests=int(data["requests"]),
            errors_by_kind={str(k): int(v) for k, v in data.get("errors_by_kind", {}).items()},
            measured_s=float(data["measured_s"]),
            latency=decode(data["histogram"]),
            service=decode(service) if service else None,
            intervals=intervals,
            interval_s=interval_s,
            scheduled=int(data.get("scheduled", 0)),
            missed_sends=int(data.get("missed_sends", 0)),
            unfinished=int(data.get("unfinished", 0)),
            interrupted=bool(data.get("interrupted", False)),
            warnings=list(data.get("warnings", [])),
            generator_cpu=data.get("generator_cpu"),
        )


def build_result(
    config: dict[str, Any],
    timeline: Timeline,
    elapsed_s: float,
    scheduled: int,
    missed: int,
    unfinished: int,
    interrupted: bool,
) -> LoadResult:
    """A `LoadResult` from merged intervals, the warm-up left out."""
    measured = timeline.measured()
    in_warmup = interrupted and not any(p.requests for p in measured)
    warm_s = timeline.warmup_intervals * timeline.interval_s
    if in_warmup:  # stopped before the warm-up ended: show what ran rather than nothing
        measured, warm_s = timeline.all(), 0.0
    open_model = config.get("rate") is not None
    errors: Counter[str] = Counter()
    for piece in measured:
        errors.update(piece.errors)
    service = merged([p.service for p in measured if p.service is not None])
    result = LoadResult(
        config=config,
        requests=sum(p.requests for p in measured),
        errors_by_kind=dict(errors),
        measured_s=max(0.0, elapsed_s - warm_s),
        latency=merged([p.hist for p in measured]),
        service=service if open_model else None,
        intervals=measured,
        interval_s=timeline.interval_s,
        scheduled=sum(p.scheduled for p in measured),
        missed_sends=sum(p.missed for p in measured),
        unfinished=unfinished,
        interrupted=interrupted,
    )
    if result.generator_behind:
        result.warnings.append(
            f"the generator fell behind: {result.missed_sends} of {result.scheduled} sends "
            f"missed their schedule by more than 10 ms; the offered rate was lower than asked "
            f"(latency is still measured from the intended send times). "
            f"Add --workers or lower --rate."
        )
    if result.unfinished:
        result.warnings.append(
            f"{result.unfinished} requests were still in flight when the run ended "
            f"and are not counted"
        )
    if interrupted:
        result.warnings.append(
            "interrupted: these figures cover only what ran"
            + (" (the warm-up included)" if in_warmup else "")
        )
    return result


@dataclass
class SweepResult:
    """A sweep: one `LoadResult` per step, the knee and the collapse verdict."""

    config: dict[str, Any]
    steps: list[LoadResult]
    knee: float | None
    collapse: bool
    collapse_reason: str | None
    interrupted: bool = False

    @property
    def knee_step(self) -> LoadResult | None:
        """The last step before throughput stopped growing while latency climbed."""
        return next((s for s in self.steps if s.load == self.knee), None)

    def total(self) -> LoadResult:
        """All steps as one run (requests and errors summed, histograms merged)."""
        errors: Counter[str] = Counter()
        for s in self.steps:
            errors.update(s.errors_by_kind)
        return LoadResult(
            config=self.config,
            requests=sum(s.requests for s in self.steps),
            errors_by_kind=dict(errors),
            measured_s=sum(s.measured_s for s in self.steps),
            latency=merged([s.latency for s in self.steps]) if self.steps else new_histogram(),
            service=None,
            intervals=[],
            interval_s=self.steps[0].interval_s if self.steps else 1.0,
            interrupted=self.interrupted,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the all-steps totals, then `steps`, `knee`, `collapse`."""
        total = self.total()
        out = {k: v for k, v in total.to_dict().items() if k not in ("users", "rate", "intervals")}
        knee = self.knee_step
        out.update(
            steps=[s.to_dict() for s in self.steps],
            knee=None
            if knee is None
            else {
                "users": knee.users,
                "rate": knee.rate,
                "rps": round(knee.rps, 2),
                "p95": knee.p95_ms,
            },
            collapse=self.collapse,
            collapse_reason=self.collapse_reason,
        )
        return out


def sweep_from_dict(data: dict[str, Any]) -> SweepResult:
    """A SweepResult from its JSON form (knee and collapse as recorded)."""
    steps = [LoadResult.from_dict(s) for s in data["steps"]]
    knee = data.get("knee")
    knee_load = None
    if knee:
        knee_load = float(knee["users"] if knee.get("users") is not None else knee["rate"])
    return SweepResult(
        config=dict(data["config"]),
        steps=steps,
        knee=knee_load,
        collapse=bool(data.get("collapse", False)),
        collapse_reason=data.get("collapse_reason"),
        interrupted=bool(data.get("interrupted", False)),
    )


class BadResult(ValueError):
    """A JSON document that is not a readykit load result; the message says what is wrong."""


def parse_results(data: Any) -> list[LoadResult]:
    """Every run of a result document (a sweep's steps, or the one run), fully decoded, so a
    damaged file is refused before any work rather than halfway through it.

    Raises BadResult naming the first problem."""
    if not isinstance(data, dict):
        raise BadResult("not a JSON object")
    if not isinstance(data.get("config"), dict):
        raise BadResult("no `config` object")
    if "steps" in data:
        steps = data["steps"]
        if not isinstance(steps, list) or not steps:
            raise BadResult("`steps` is not a list of runs")
        docs = steps
    else:
        docs = [data]
    try:
        runs = sweep_from_dict(data).steps if "steps" in data else [LoadResult.from_dict(data)]
    except BadResult:
        raise
    except Exception as exc:  # damaged input: any decoding error, named in one line
        detail = f"missing {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise BadResult(f"cannot decode it ({detail})") from exc
    for doc, run in zip(docs, runs, strict=True):
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
            raise BadResult("a step has no `config` object")
        if not run.intervals:
            raise BadResult("it has no per-interval samples (`intervals`)")
    return runs
