"""How close `readykit load`'s numbers are to a server whose timing is known, on real time.

The tests check the engine's arithmetic on virtual time (tests/virtual_time.py); this bench
is where real timers, the kernel and a shared machine come in. It starts the tests' aiohttp
target (`tests/load/load_target_app.py`) and prints, per case, the measured value beside the
known one and their ratio (1.00 is exact):

- closed model, 4 users, a handler that waits 50 ms: p50 against 50 ms;
- open model, 100 req/s, the same handler: p50 against 50 ms, req/s against 100;
- open model, 200 req/s on 2 connections, one 1 s stall: corrected p99 against the stall, and
  the service-time p99 (what a closed-loop tool reports) against it.

    PYTHONPATH=src:. flock /tmp/rk-bench.lock .venv/bin/python -m bench.load_accuracy --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from readykit.load import run_load
from readykit.serve import serve

APP = Path(__file__).resolve().parent.parent / "tests" / "load" / "load_target_app.py"


def one_round() -> dict[str, tuple[float, float]]:
    """Measured and known value of each case."""
    out: dict[str, tuple[float, float]] = {}
    with serve([sys.executable, str(APP), "--port", "{port}"]) as server:
        closed = run_load(f"{server.url}/delay?ms=50", users=4, duration_s=3, workers=1)
        out["closed p50 ms"] = (closed.p50_ms, 50.0)
        opened = run_load(f"{server.url}/delay?ms=50", rate=100, duration_s=3, workers=1)
        out["open p50 ms"] = (opened.p50_ms, 50.0)
        out["open req/s"] = (opened.scheduled / opened.measured_s, 100.0)
    with serve([sys.executable, str(APP), "--port", "{port}"]) as server:
        stall = run_load(
            f"{server.url}/stall?at=100&ms=1000", rate=200, duration_s=3, workers=1, connections=2
        ).to_dict()
        out["stall corrected p99 ms"] = (stall["latency_ms"]["p99"], 1000.0)
        out["stall service p99 ms"] = (stall["service_ms"]["p99"], 1000.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    print(f"{'case':<26}{'measured':>10}{'known':>9}{'ratio':>8}  (median of {args.rounds})")
    for case in rounds[0]:
        measured = statistics.median(r[case][0] for r in rounds)
        known = rounds[0][case][1]
        print(f"{case:<26}{measured:>10.1f}{known:>9.1f}{measured / known:>8.2f}")


if __name__ == "__main__":
    main()
