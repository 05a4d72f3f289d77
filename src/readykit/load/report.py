"""Outputs of a run: the JSON file, a terminal summary and a self-contained HTML report.

The HTML report draws its plots as inline SVG from the per-interval samples (at most
`MAX_POINTS` per line), so it stays small however long the run was and needs no network.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any

MAX_POINTS = 300
COLORS = ("#2563eb", "#d97706", "#dc2626", "#059669")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write the result JSON (histograms encoded, so `readykit load merge` is exact)."""
    write_atomic(path, json.dumps(data, indent=1) + "\n")


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`: a full disk
    or a killed process leaves the previous file (a baseline) whole, never truncated."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), _mode(path))
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _mode(path: Path) -> int:
    """The permissions the file would have had written in place: its own, or the umask's."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_writable(path: Path | None, option: str) -> None:
    """Before the run: a file can be created in `path`'s directory (one is, then removed).

    Raises OSError when not; the caller turns it into one line."""
    if path is None:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)


def _load_label(step: dict[str, Any]) -> str:
    if step.get("users") is not None:
        return f"{step['users']} users"
    if step.get("rate") is not None:
        return f"{step['rate']:g} req/s"
    return ""


def summary_lines(data: dict[str, Any]) -> list[str]:
    """A few human lines about a result dict (single run or sweep)."""
    lines = []
    for step in data.get("steps", [data]):
        lat = step["latency_ms"]
        label = _load_label(step)
        lines.append(
            f"{label + ': ' if label else ''}{step['requests']} requests, "
            f"{step['rps']:.1f} req/s, errors {step['errors']} ({step['error_rate'] * 100:.2f}%), "
            f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms, "
            f"max {lat['max']:.1f} ms"
        )
        if step.get("errors_by_kind"):
            kinds = ", ".join(f"{k} {v}" for k, v in step["errors_by_kind"].items())
            lines.append(f"  errors by kind: {kinds}")
        if "service_ms" in step:
            svc = step["service_ms"]
            lines.append(
                f"  latency from intended send times (coordinated-omission corrected); "
                f"service time alone: p50 {svc['p50']:.1f} ms, p99 {svc['p99']:.1f} ms; "
                f"missed sends {step['missed_sends']} of {step['scheduled']}"
            )
        lines.extend(f"  warning: {w}" for w in step.get("warnings", []))
    if "steps" in data:
        knee = data.get("knee")
        lines.append(
            f"knee: {_load_label(knee)} ({knee['rps']:.0f} req/s, p95 {knee['p95']:.1f} ms)"
            if knee
            else "knee: none within the swept range"
        )
        lines.append(data["collapse_reason"] if data.get("collapse") else "collapse: no")
    return lines


# --- HTML --------------------------------------------------------------------------------------


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * magnitude:
            return float(m * magnitude)
    return value


def line_chart(
    title: str,
    series: list[tuple[str, list[tuple[float, float]]]],
    x_label: str,
    y_label: str,
    width: int = 760,
    height: int = 260,
) -> str:
    """An inline SVG line chart (small: coordinates rounded, points thinned)."""
    left, right, top, bottom = 60, 16, 28, 40
    xs = [x for _, pts in series for x, _ in pts] or [0.0, 1.0]
    ys = [y for _, pts in series for _, y in pts] or [1.0]
    x0, x1 = min(xs), max(xs)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = _nice_max(max(ys))
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return round(left + (x - x0) / (x1 - x0) * pw, 1)

    def sy(y: float) -> float:
        return round(top + ph - y / y1 * ph, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="16" class="t">{html.escape(title)}</text>',
    ]
    for k in range(5):
        y = y1 * k / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{sy(y)}" y2="{sy(y)}" class="g"/>'
            f'<text x="{left - 6}" y="{sy(y) + 4}" class="a" text-anchor="end">{y:g}</text>'
        )
    for k in range(5):
        x = x0 + (x1 - x0) * k / 4
        parts.append(
            f'<text x="{sx(x)}" y="{height - bottom + 16}" class="a" '
            f'text-anchor="middle">{x:.4g}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" class="a" text-anchor="middle">'
        f"{html.escape(x_label)}</text>"
        f'<text x="14" y="{top + ph / 2}" class="a" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2})">{html.escape(y_label)}</text>'
    )
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{sx(x)},{sy(y)}" for x, y in _thin(pts))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{coords}"/>'
        )
        if len(pts) <= 12:
            parts.extend(
                f'<circle cx="{sx(x)}" cy="{sy(y)}" r="3" fill="{color}"/>' for x, y in pts
            )
        lx = left + 10 + i * 110
        parts.append(
            f'<rect x="{lx}" y="{top + 4}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{top + 13}" class="a">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _timeline(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Interval rows of a run, or of every sweep step laid end to end."""
    rows: list[dict[str, Any]] = []
    offset = 0.0
    for step in data.get("steps", [data]):
        width = float(step.get("interval_s", 1.0))
        for row in step.get("intervals", []):
            rows.append({**row, "t": round(offset + row["t"], 3), "w": width})
        offset += len(step.get("intervals", [])) * width
    return rows


def render_html(data: dict[str, Any], title: str = "readykit load report") -> str:
    """A self-contained HTML page: summary, latency and throughput over time, sweep curve."""
    rows = _timeline(data)
    charts = [
        line_chart(
            "Latency percentiles over time",
            [(k, [(r["t"], r[k]) for r in rows]) for k in ("p50", "p95", "p99")],
            "seconds (after warm-up)",
            "ms",
        ),
        line_chart(
            "Throughput over time",
            [("req/s", [(r["t"], r["rps"]) for r in rows]), ("errors/s", _errors_per_s(data))],
            "seconds (after warm-up)",
            "per second",
        ),
    ]
    steps = data.get("steps")
    if steps:
        x_name = "users" if steps[0].get("users") is not None else "rate"
        xs = [float(s[x_name]) for s in steps]
        charts.append(
            line_chart(
                "Sweep: throughput",
                [("req/s", list(zip(xs, [s["rps"] for s in steps], strict=True)))],
                "users" if x_name == "users" else "offered req/s",
                "req/s",
            )
        )
        charts.append(
            line_chart(
                "Sweep: latency",
                [
                    (k, list(zip(xs, [s["latency_ms"][k] for s in steps], strict=True)))
                    for k in ("p50", "p95", "p99")
                ],
                "users" if x_name == "users" else "offered req/s",
                "ms",
            )
        )
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(data))
    config = html.escape(json.dumps(data.get("config", {}), indent=1))
    verdicts = "".join(f"<li>{html.escape(v)}</li>" for v in data.get("verdicts", []))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font:14px system-ui,sans-serif;margin:24px;color:#111;max-width:820px}"
        "h1{font-size:20px}.t{font:600 13px system-ui}.a{font:11px system-ui;fill:#444}"
        ".g{stroke:#e5e7eb}svg{display:block;margin:16px 0}pre{background:#f3f4f6;padding:8px}"
        f"</style></head><body><h1>{html.escape(title)}</h1><ul>{summary}</ul>"
        + (f"<h2>Thresholds and baseline</h2><ul>{verdicts}</ul>" if verdicts else "")
        + "".join(charts)
        + f"<h2>Configuration</h2><pre>{config}</pre></body></html>\n"
    )


def _errors_per_s(data: dict[str, Any]) -> list[tuple[float, float]]:
    return [(r["t"], round(r["errors"] / r["w"], 2)) for r in _timeline(data)]


def write_html(path: Path, data: dict[str, Any]) -> None:
    """Write the self-contained HTML report."""
    write_atomic(path, render_html(data))
