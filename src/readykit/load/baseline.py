"""Run-to-run comparison: a regression must be statistically significant *and* large enough.

Samples are the per-interval values of a run (p50, p95, throughput, error rate). A metric
regresses when a one-sided Mann-Whitney U test says it moved the wrong way (p < `ALPHA`) and
the medians differ by more than the practical threshold (and, for latency, by more than
`MIN_LATENCY_DELTA_MS`, so sub-millisecond loopback noise never counts).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from readykit.errors import ReadykitError
from readykit.load.result import LoadResult

ALPHA = 0.01
DEFAULT_THRESHOLD = 0.20
MIN_LATENCY_DELTA_MS = 1.0
MIN_SAMPLES = 5
ERROR_RATE_DELTA = 0.01
COMPARED = (
    "target",
    "scenario",
    "mode",
    "users",
    "rate",
    "steps",
    "duration_s",
    "warmup_s",
    "timeout_s",
    "connections",
)


class BaselineError(ReadykitError):
    """The baseline cannot be used: unreadable, or a run of a different configuration."""


@dataclass(frozen=True)
class MetricVerdict:
    """One metric of one step compared with the baseline.

    `judged` is False when there was too little to compare (a verdict that is neither ok nor
    a regression, and fails the run all the same: it never passes silently)."""

    step: str
    metric: str
    baseline: float
    current: float
    p_value: float | None
    regression: bool
    judged: bool = True

    @property
    def failed(self) -> bool:
        return self.regression or not self.judged

    def line(self) -> str:
        change = (self.current / self.baseline - 1.0) * 100 if self.baseline else 0.0
        p = "n/a" if self.p_value is None else f"{self.p_value:.3g}"
        if not self.judged:
            verdict = "CANNOT JUDGE (too few samples)"
        else:
            verdict = "REGRESSION" if self.regression else "ok"
        return (
            f"{self.step}{self.metric}: {self.baseline:.2f} -> {self.current:.2f} "
            f"({change:+.0f}%, p={p}) {verdict}"
        )


def read(path: Path) -> dict[str, Any]:
    """A saved baseline (the JSON a run writes)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise BaselineError(f"baseline {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or "config" not in data or "latency_ms" not in data:
        raise BaselineError(f"{path} is not a readykit load result")
    return data


def load(path: Path) -> tuple[dict[str, Any], list[LoadResult]]:
    """A saved baseline's config and runs (a sweep's steps, or the one run), fully decoded
    before any load is sent; anything wrong with the file is a BaselineError (one line)."""
    from readykit.load.result import BadResult, parse_results

    data = read(path)
    if data.get("interrupted"):
        raise BaselineError(
            f"{path} is the result of an interrupted run (it covers only part of the run); "
            f"refusing it as a baseline"
        )
    try:
        runs = parse_results(data)
    except BadResult as exc:
        raise BaselineError(f"{path} is not a usable readykit load result: {exc}") from None
    if any(r.interrupted for r in runs):
        raise BaselineError(f"{path} has an interrupted step; refusing it as a baseline")
    return data["config"], runs


def check_config(baseline: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to compare runs whose load shape or target differ; say which fields differ."""
    diffs = [
        f"{k} {baseline.get(k)!r} vs {current.get(k)!r}"
        for k in COMPARED
        if baseline.get(k) != current.get(k)
    ]
    if diffs:
        raise BaselineError(
            "the baseline was run with a different configuration, refusing to compare: "
            + "; ".join(diffs)
        )


def _mwu(current: list[float], baseline: list[float], alternative: str) -> float | None:
    from scipy.stats import mannwhitneyu

    if len(current) < MIN_SAMPLES or len(baseline) < MIN_SAMPLES:
        return None
    if len(set(current) | set(baseline)) == 1:
        return 1.0
    return float(mannwhitneyu(current, baseline, alternative=alternative).pvalue)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def compare_step(
    baseline: LoadResult, current: LoadResult, threshold: float = DEFAULT_THRESHOLD, step: str = ""
) -> list[MetricVerdict]:
    """Verdicts for p50, p95, throughput (closed model only) and error rate.

    Per-interval samples are compared when both runs have `MIN_SAMPLES` of them; otherwise the
    comparison falls back to the runs' whole histograms (p95, `compare_latencies`), their
    request counts (throughput) and error counts (`compare_error_rates`). With too little even
    for that, the verdict is "cannot judge", which fails like a regression."""
    out = []
    latency_ok = all(
        len(r.samples(m)) >= MIN_SAMPLES for r in (baseline, current) for m in ("p50", "p95")
    )
    if latency_ok:
        for metric in ("p50", "p95"):
            b, c = baseline.samples(metric), current.samples(metric)
            mb, mc = _median(b), _median(c)
            p = _mwu(c, b, "greater")
            practical = mc > mb * (1 + threshold) and mc - mb > MIN_LATENCY_DELTA_MS
            significant = p is not None and p < ALPHA
            out.append(MetricVerdict(step, metric, mb, mc, p, practical and significant))
    else:
        v = compare_latencies(
            step,
            histogram_values_ms(baseline.latency),
            histogram_values_ms(current.latency),
            threshold,
        )
        if v.p_value is None:
            v = replace(v, judged=False)
        out.append(v)
    if current.rate is None:
        out.append(_compare_rps(baseline, current, threshold, step))
    b, c = baseline.samples("error_rate"), current.samples("error_rate")
    p = _mwu(c, b, "greater")
    if p is None:
        v = compare_error_rates(
            step,
            (baseline.errors, baseline.requests),
            (current.errors, current.requests),
        )
        out.append(v if v.p_value is not None else replace(v, judged=False))
    else:
        worse = current.error_rate > baseline.error_rate + ERROR_RATE_DELTA
        out.append(
            MetricVerdict(
                step, "error_rate", baseline.error_rate, current.error_rate, p, worse and p < ALPHA
            )
        )
    return out


def _compare_rps(
    baseline: LoadResult, current: LoadResult, threshold: float, step: str
) -> MetricVerdict:
    """Throughput: per-interval samples (intervals without a response count, as 0 req/s),
    else the request counts over the measured times (a one-sided binomial test)."""
    b, c = baseline.samples("rps"), current.samples("rps")
    p = _mwu(c, b, "less")
    if p is not None:
        mb, mc = _median(b), _median(c)
        return MetricVerdict(step, "rps", mb, mc, p, mc < mb * (1 - threshold) and p < ALPHA)
    from scipy.stats import binomtest

    mb, mc = baseline.rps, current.rps
    nb, nc = baseline.requests, current.requests
    tb, tc = baseline.measured_s, current.measured_s
    if tb <= 0 or tc <= 0 or nb + nc == 0:
        return MetricVerdict(step, "rps", mb, mc, None, False, judged=False)
    # the same rate on both sides: the current run's share of all requests follows its share
    # of the measured time
    p = float(binomtest(nc, nb + nc, tc / (tb + tc), alternative="less").pvalue)
    return MetricVerdict(step, "rps", mb, mc, p, mc < mb * (1 - threshold) and p < ALPHA)


def compare(
    baseline: list[LoadResult], current: list[LoadResult], threshold: float = DEFAULT_THRESHOLD
) -> list[MetricVerdict]:
    """Verdicts for every step (a single run is one step) present in both."""
    verdicts = []
    by_load = {b.load: b for b in baseline}
    for cur in current:
        base = by_load.get(cur.load)
        if base is None:
            continue
        label = "" if len(current) == 1 else f"[{cur.load:g}] "
        verdicts.extend(compare_step(base, cur, threshold, label))
    return verdicts


def histogram_values_ms(hist: HdrHistogram, limit: int = 5000) -> list[float]:
    """The recorded latencies of `hist` in ms (at the histogram's resolution), thinned evenly to
    at most `limit` values so a rank test stays cheap."""
    values: list[float] = []
    for item in hist.get_recorded_iterator():
        values += [item.value_iterated_to / 1000.0] * int(item.count_at_value_iterated_to)
    if len(values) > limit:
        step = len(values) / limit
        values = [values[int(i * step)] for i in range(limit)]
    return values


def compare_latencies(
    step: str,
    baseline: list[float],
    current: list[float],
    threshold: float = DEFAULT_THRESHOLD,
    min_delta_ms: float = MIN_LATENCY_DELTA_MS,
) -> MetricVerdict:
    """p95 of request latencies against a baseline's: a one-sided Mann-Whitney U test on the
    latencies themselves, and both the p95 and the median worse by more than `threshold` and
    `min_delta_ms` (a shift of the whole distribution, not one noisy tail)."""
    mb, mc = _p95(baseline), _p95(current)
    p = _mwu(current, baseline, "greater")

    def worse(b: float, c: float) -> bool:
        return c > b * (1 + threshold) and c - b > min_delta_ms

    practical = worse(mb, mc) and worse(_median(baseline), _median(current))
    return MetricVerdict(step, "p95", mb, mc, p, practical and p is not None and p < ALPHA)


def compare_error_rates(
    step: str, baseline: tuple[int, int], current: tuple[int, int]
) -> MetricVerdict:
    """(errors, requests) against a baseline's: Fisher's exact test, one-sided, and a rate
    worse by more than `ERROR_RATE_DELTA`."""
    from scipy.stats import fisher_exact

    (eb, nb), (ec, nc) = baseline, current
    rb, rc = (eb / nb if nb else 0.0), (ec / nc if nc else 0.0)
    p: float | None = None
    if nb and nc:
        table = [[ec, nc - ec], [eb, nb - eb]]
        p = float(fisher_exact(table, alternative="greater").pvalue)
    worse = rc > rb + ERROR_RATE_DELTA and p is not None and p < ALPHA
    return MetricVerdict(step, "error_rate", rb, rc, p, worse)


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, int(0.95 * len(ordered) + 0.5) - 1)]
