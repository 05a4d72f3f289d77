"""Serve one app variant under uvicorn on CPU 0, load it with wrk on CPU 1, parse wrk's output."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from readykit.serve import serve

ROOT = Path(__file__).resolve().parents[1]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class WrkResult:
    """One wrk run against one variant."""

    variant: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not m:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(variant: str, output: str) -> WrkResult:
    """Requests/sec, p50/p99 (from --latency) and error counts out of wrk's text report."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkResult(variant, rps, p50, p99, total, errors)


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


def uvicorn_argv(variant: str, factory_module: str = "bench.apps") -> list[str]:
    """uvicorn serving `factory_module:<variant factory>` as every bench serves it: one worker,
    uvloop, httptools, no access log, on `{port}` of loopback."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"{factory_module}:{variant.replace('-', '_')}",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]


def run_variant(
    variant: str,
    *,
    duration_s: int,
    connections: int = 32,
    path: str = "/items/42",
    factory_module: str = "bench.apps",
    env: dict[str, str] | None = None,
    script: Path | None = None,
) -> WrkResult:
    """Serve `factory_module:<variant factory>` and load it for `duration_s` seconds.

    `script` is a wrk Lua script (e.g. one that makes every request a POST).
    """
    argv = [*_pin(0), *uvicorn_argv(variant, factory_module)]
    with serve(argv, cwd=ROOT, env=env, start_timeout=20) as server:
        wrk = [
            *_pin(1),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--latency",
            *(["-s", str(script)] if script is not None else []),
            f"{server.url}{path}",
        ]
        done = subprocess.run(
            wrk, capture_output=True, text=True, timeout=duration_s + 30, check=True
        )
    return parse_wrk(variant, done.stdout)
