"""Run variants side by side in paired rounds; print medians and ratios to the bare app.

.venv/bin/python -m bench.run [--duration 10] [--rounds 3] [--only NAME ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

from bench.apps import VARIANTS
from bench.harness import WrkResult, run_variant


def summarise(results: list[WrkResult]) -> list[dict[str, float | str]]:
    """Median per variant, with the median of its per-round ratios to the bare app.

    Rounds are paired (each round runs every variant back to back), so a per-round ratio
    cancels the machine's drift between rounds, which on a shared VM exceeds the effect.
    """
    by_variant: dict[str, list[WrkResult]] = {}
    for r in results:
        by_variant.setdefault(r.variant, []).append(r)
    bares = by_variant["bare"]
    rows: list[dict[str, float | str]] = []
    for variant, runs in by_variant.items():
        rps = statistics.median(r.rps for r in runs)
        ratio = statistics.median(r.rps / b.rps for r, b in zip(runs, bares, strict=True))
        rows.append(
            {
                "variant": variant,
                "rps": round(rps),
                "p50_ms": round(statistics.median(r.p50_ms for r in runs), 3),
                "p99_ms": round(statistics.median(r.p99_ms for r in runs), 3),
                "errors": sum(r.errors for r in runs),
                "ratio": round(ratio, 3),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per variant")
    parser.add_argument("--only", action="append", choices=sorted(VARIANTS), help="variants")
    parser.add_argument("--json", type=Path, help="write raw results and the summary here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    variants = ["bare", *[v for v in args.only or VARIANTS if v != "bare"]]
    results: list[WrkResult] = []
    for round_no in range(1, args.rounds + 1):
        # ABBA: reverse the order every other round so warm-up and drift hit all variants alike
        for variant in variants if round_no % 2 else variants[::-1]:
            result = run_variant(variant, duration_s=args.duration)
            print(f"round {round_no} {variant:>24}: {result.rps:>9.0f} req/s", flush=True)
            results.append(result)
    rows = summarise(results)
    print(f"\n{'variant':>24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['variant']:>24} {row['rps']:>9} {row['p50_ms']:>8} {row['p99_ms']:>8} "
            f"{row['errors']:>7} {row['ratio']:>6}"
        )
    if args.json:
        raw = [r.as_dict() for r in results]
        args.json.write_text(json.dumps({"runs": raw, "summary": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
