"""`readykit check --baseline FILE`: each swept endpoint's p95 and error rate against a saved
report, by a statistical test (not one run against another's single number).

The baseline is a JSON report written by `readykit check --json`; its `performance` section
keeps every step's latency histogram. Per endpoint and load level present in both (and judged
in both): a one-sided Mann-Whitney U test on the request latencies with a practical threshold
(`readykit.load.baseline.compare_latencies`), and Fisher's exact test on the error counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from readykit.check.client import CheckToolError
from readykit.check.finding import Evidence, Finding
from readykit.load.baseline import (
    MetricVerdict,
    compare_error_rates,
    compare_latencies,
    histogram_values_ms,
)
from readykit.load.stats import decode

# loopback on a shared host moves a fast endpoint's latencies by a millisecond or two from run
# to run; a regression must shift the distribution by more than this and by `THRESHOLD`
MIN_DELTA_MS = 5.0
THRESHOLD = 0.25


def read_baseline(path: Path) -> dict[str, Any]:
    """The `performance` section of a saved check report."""
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise CheckToolError(f"cannot read the baseline {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CheckToolError(f"the baseline {path} is not JSON: {exc}") from exc
    perf = doc.get("performance") if isinstance(doc, dict) else None
    if not isinstance(perf, dict) or not isinstance(perf.get("endpoints"), dict):
        raise CheckToolError(
            f"{path} is not a readykit check report with performance data "
            "(write one with `readykit check URL --json FILE`)"
        )
    for endpoint, entry in perf["endpoints"].items():
        for users, step in _steps(entry).items():
            try:
                decode(step["histogram"])
            except Exception as exc:  # hdrh's own exceptions derive from Exception only
                raise CheckToolError(
                    f"the baseline {path} has a damaged latency histogram ({endpoint} at "
                    f"{users} user(s): {type(exc).__name__}); write it again with "
                    "`readykit check URL --json FILE`"
                ) from exc
    return perf


def baseline_paths(perf: dict[str, Any]) -> tuple[str, ...]:
    """The paths the baseline swept, to sweep them again first."""
    return tuple(key.split(" ", 1)[1] for key in perf["endpoints"] if key.startswith("GET "))


def _steps(entry: Any) -> dict[int, dict[str, Any]]:
    """The comparable steps: judged, with latencies, and no 429 (a histogram with the 429s'
    own latencies in it measures the limiter as much as the service)."""
    steps = entry.get("steps", []) if isinstance(entry, dict) else []
    return {
        int(s["users"]): s
        for s in steps
        if isinstance(s, dict) and s.get("judged") and s.get("histogram") and not s.get("limited")
    }


def _levels(perf: dict[str, Any]) -> str:
    """`GET /a at 1,4 users; GET /b at 1 user` of a report's comparable steps, or `nothing`."""
    parts = []
    for endpoint, entry in perf.get("endpoints", {}).items():
        users = sorted(_steps(entry))
        if users:
            parts.append(f"{endpoint} at {','.join(map(str, users))} user(s)")
    return "; ".join(parts) or "nothing"


def _why_not_comparable(baseline: dict[str, Any], current: dict[str, Any]) -> str:
    """One line: what each report has to compare, and the 429s that left steps out."""
    limited = sum(
        int(s.get("limited") or 0)
        for entry in current.get("endpoints", {}).values()
        if isinstance(entry, dict)
        for s in entry.get("steps", [])
        if isinstance(s, dict)
    )
    why = f"the baseline has {_levels(baseline)}, this run {_levels(current)}"
    if limited:
        why += f" ({limited} of this run's sweep requests were 429: steps with 429s are left out)"
    return why


def compare(baseline: dict[str, Any], current: dict[str, Any]) -> list[MetricVerdict]:
    """Verdicts for every endpoint and load level judged in both reports."""
    verdicts = []
    now = current.get("endpoints", {})
    for endpoint, before in baseline["endpoints"].items():
        if endpoint not in now:
            continue
        old, new = _steps(before), _steps(now[endpoint])
        for users in sorted(set(old) & set(new)):
            label = f"{endpoint} at {users} user(s) "
            b, c = old[users], new[users]
            verdicts.append(
                compare_latencies(
                    label,
                    histogram_values_ms(decode(b["histogram"])),
                    histogram_values_ms(decode(c["histogram"])),
                    THRESHOLD,
                    MIN_DELTA_MS,
                )
            )
            verdicts.append(
                compare_error_rates(
                    label,
                    (int(b["errors"]), int(b["requests"])),
                    (int(c["errors"]), int(c["requests"])),
                )
            )
    return verdicts


def findings(baseline: dict[str, Any], current: dict[str, Any], source: str) -> list[Finding]:
    """A blocker per regression; otherwise one info line (or a warning if nothing compared)."""
    verdicts = compare(baseline, current)
    table = "\n".join(v.line() for v in verdicts)
    regressions = [v for v in verdicts if v.regression]
    if regressions:
        return [
            Finding(
                "performance.regression",
                "performance",
                "blocker",
                f"{v.step}{v.metric}: {v.baseline:.2f} -> {v.current:.2f} against {source}",
                Evidence(f"--baseline {source}", None, table),
                "Find what changed since the baseline (code, queries, pool sizes) before "
                "deploying; a regression here is statistically significant and over 25 %.",
            )
            for v in regressions
        ]
    if not verdicts:
        return [
            Finding(
                "performance.baseline-not-comparable",
                "performance",
                "warning",
                f"no swept endpoint and load level in common with {source}: "
                + _why_not_comparable(baseline, current),
                Evidence(f"--baseline {source}", None, ", ".join(baseline["endpoints"])),
                "Compare reports of the same service with the same load levels.",
            )
        ]
    return [
        Finding(
            "performance.baseline",
            "performance",
            "info",
            f"no regression against {source} ({len(verdicts)} comparisons)",
            Evidence(f"--baseline {source}", None, table),
        )
    ]
