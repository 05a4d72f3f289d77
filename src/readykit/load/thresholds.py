"""Pass/fail thresholds such as `p95<200ms`, `errors<1%`, `rps>500`: they decide exit code 1."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from readykit.durations import parse_duration
from readykit.errors import ReadykitError
from readykit.load.result import LoadResult

LATENCY = ("p50", "p90", "p95", "p99", "p999", "max", "mean")
_SYNTAX = re.compile(
    r"^\s*(?P<metric>[a-z0-9_]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>us|µs|ms|s|m|%)?\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class BadThreshold(ReadykitError):
    """A threshold that does not parse; the message shows the accepted forms."""


@dataclass(frozen=True)
class Threshold:
    """One condition on a run's result."""

    text: str
    metric: str  # a latency percentile, "errors", "error_rate" or "rps"
    op: str
    value: float  # ms for latency, a fraction for error_rate

    def actual(self, result: LoadResult) -> float:
        """The result's value for this metric, in the threshold's unit.

        Requests still unfinished when the run ended count as errors here: they got no
        answer within the run (and the drain after it)."""
        if self.metric in LATENCY:
            return result.latency_ms[self.metric]
        if self.metric == "error_rate":
            attempted = result.requests + result.unfinished
            return (result.errors + result.unfinished) / attempted if attempted else 0.0
        if self.metric == "errors":
            return float(result.errors + result.unfinished)
        return result.rps

    def unjudged(self, result: LoadResult) -> str | None:
        """Why a latency or error limit cannot be shown to hold, if it cannot: nothing was
        measured, or requests were left unfinished (their latency is unknown, only long)."""
        if self.metric == "rps":
            return None
        if result.requests == 0:
            return "no requests measured"
        if result.unfinished and self.metric in LATENCY:
            return f"{result.unfinished} requests unfinished"
        return None

    def passed(self, result: LoadResult) -> bool:
        if self.unjudged(result) is not None:
            return False
        return _OPS[self.op](self.actual(result), self.value)

    def describe(self, result: LoadResult) -> str:
        """`p95<200ms: 183.2 ms (pass)`."""
        actual = self.actual(result)
        shown = {
            "error_rate": f"{actual * 100:.2f}%",
            "errors": f"{actual:.0f}",
            "rps": f"{actual:.1f} req/s",
        }.get(self.metric, f"{actual:.1f} ms")
        why = self.unjudged(result)
        if why is not None:
            shown += f", {why}"
        return f"{self.text}: {shown} ({'pass' if self.passed(result) else 'FAIL'})"


def parse(text: str) -> Threshold:
    """A Threshold from `METRIC OP VALUE[UNIT]`, e.g. `p95<200ms`, `errors<1%`, `rps>=500`."""
    m = _SYNTAX.match(text)
    usage = (
        f"bad threshold {text!r}: use METRIC<VALUE, e.g. 'p95<200ms', 'errors<1%', 'rps>500' "
        f"(metrics: {', '.join(LATENCY)}, errors, rps)"
    )
    if m is None:
        raise BadThreshold(usage)
    metric, op, value, unit = m["metric"], m["op"], float(m["value"]), m["unit"]
    if metric in LATENCY:
        if unit == "%":
            raise BadThreshold(usage)
        ms = parse_duration(f"{m['value']}{unit or ''}", default_unit="ms") * 1000
        return Threshold(text, metric, op, ms)
    if metric == "errors":
        if unit == "%":
            return Threshold(text, "error_rate", op, value / 100.0)
        if unit is not None:
            raise BadThreshold(usage)
        return Threshold(text, "errors", op, value)
    if metric == "rps" and unit is None:
        return Threshold(text, "rps", op, value)
    raise BadThreshold(usage)


def evaluate(thresholds: list[Threshold], result: LoadResult) -> tuple[bool, list[str]]:
    """Whether every threshold passes, and one line per threshold."""
    lines = [t.describe(result) for t in thresholds]
    return all(t.passed(result) for t in thresholds), lines
