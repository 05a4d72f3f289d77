"""Latency statistics: HdrHistograms in microseconds, per-interval samples, exact merging."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 600_000_000  # ten minutes: anything slower is clamped, never dropped
SIGNIFICANT_DIGITS = 3
PERCENTILES: dict[str, float] = {
    "p50": 50.0,
    "p90": 90.0,
    "p95": 95.0,
    "p99": 99.0,
    "p999": 99.9,
}


def new_histogram() -> HdrHistogram:
    """An empty histogram with readykit's fixed range, so any two of them merge exactly."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(hist: HdrHistogram, seconds: float) -> None:
    """Record a latency given in seconds, clamped into the histogram's range."""
    us = int(seconds * 1_000_000)
    hist.record_value(min(max(us, LOWEST_US), HIGHEST_US))


def encode(hist: HdrHistogram) -> str:
    """The histogram as the compressed base64 text HdrHistogram tools exchange."""
    data = hist.encode()
    return data.decode("ascii") if isinstance(data, bytes) else str(data)


def decode(text: str) -> HdrHistogram:
    """A histogram from `encode` output, in readykit's range."""
    hist = new_histogram()
    if text:
        hist.decode_and_add(text)
    return hist


def merged(hists: list[HdrHistogram]) -> HdrHistogram:
    """The sum of `hists` as a new histogram."""
    total = new_histogram()
    for h in hists:
        total.add(h)
    return total


def summary_ms(hist: HdrHistogram) -> dict[str, float]:
    """p50…p999, max and mean of `hist` in milliseconds (zeros when empty)."""
    if hist.get_total_count() == 0:
        return {**{k: 0.0 for k in PERCENTILES}, "max": 0.0, "mean": 0.0}
    out = {k: hist.get_value_at_percentile(p) / 1000.0 for k, p in PERCENTILES.items()}
    out["max"] = hist.get_max_value() / 1000.0
    out["mean"] = round(hist.get_mean_value() / 1000.0, 3)
    return out


@dataclass
class Interval:
    """What happened in one time slice of a run: counts and a latency histogram."""

    index: int
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    hist: HdrHistogram = field(default_factory=new_histogram)
    service: HdrHistogram | None = None
    scheduled: int = 0
    missed: int = 0

    def add(self, other: Interval) -> None:
        """Merge another worker's slice with the same index into this one."""
        self.requests += other.requests
        self.errors.update(other.errors)
        self.hist.add(other.hist)
        if other.service is not None:
            if self.service is None:
                self.service = new_histogram()
            self.service.add(other.service)
        self.scheduled += other.scheduled
        self.missed += other.missed

    def to_wire(self) -> dict[str, Any]:
        """A picklable, JSON-able form (histograms encoded)."""
        return {
            "index": self.index,
            "requests": self.requests,
            "errors": dict(self.errors),
            "hist": encode(self.hist),
            "service": encode(self.service) if self.service is not None else None,
            "scheduled": self.scheduled,
            "missed": self.missed,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Interval:
        """Inverse of `to_wire`."""
        service = data.get("service")
        return cls(
            index=int(data["index"]),
            requests=int(data["requests"]),
            errors=Counter({str(k): int(v) for k, v in data.get("errors", {}).items()}),
            hist=decode(data["hist"]),
            service=decode(service) if service else None,
            scheduled=int(data.get("scheduled", 0)),
            missed=int(data.get("missed", 0)),
        )


class Timeline:
    """Intervals of one run, merged across workers by index; warm-up slices kept apart."""

    def __init__(self, interval_s: float, warmup_intervals: int) -> None:
        self.interval_s = interval_s
        self.warmup_intervals = warmup_intervals
        self.slices: dict[int, Interval] = {}

    def add(self, piece: Interval) -> None:
        """Merge one worker's interval into the timeline."""
        mine = self.slices.get(piece.index)
        if mine is None:
            self.slices[piece.index] = piece
        else:
            mine.add(piece)

    def measured(self) -> list[Interval]:
        """Intervals after the warm-up, in order."""
        return [s for i, s in sorted(self.slices.items()) if i >= self.warmup_intervals]

    def all(self) -> list[Interval]:
        """Every interval, warm-up included, in order."""
        return [s for _, s in sorted(self.slices.items())]

    def recent(self, count: int = 1) -> list[Interval]:
        """The last `count` intervals seen (warm-up included), for a live display."""
        return [self.slices[i] for i in sorted(self.slices)[-count:]]


def interval_row(piece: Interval, interval_s: float, offset: int) -> dict[str, Any]:
    """One per-interval sample as written to JSON (and compared by baselines)."""
    n = piece.requests
    lat = summary_ms(piece.hist)
    errors = sum(piece.errors.values())
    return {
        "t": round((piece.index - offset) * interval_s, 3),
        "requests": n,
        "errors": errors,
        "rps": round(n / interval_s, 2),
        "error_rate": round(errors / n, 6) if n else 0.0,
        "p50": lat["p50"],
        "p95": lat["p95"],
        "p99": lat["p99"],
        "max": lat["max"],
        "hist": encode(piece.hist),
    }
