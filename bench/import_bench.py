"""Time `import readykit; readykit.ReadyKit()` in fresh interpreters; list the heavy imports.

.venv/bin/python -m bench.import_bench [--runs 21] [--python PATH] [--top 15] [--json FILE]

Each run is a new subprocess in an empty working directory (the kit's defaults create
`.readykit/` there) and reports the time from before `import readykit` to after `ReadyKit()`
returns; the median is printed. One more run under `python -X importtime` gives the self time
summed per top-level package and the slowest readykit modules by cumulative time. Bytecode is
cached (in a temporary PYTHONPYCACHEPREFIX, whatever PYTHONDONTWRITEBYTECODE says), as after
`pip install`, so compiling the sources is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

PROGRAM = (
    "import time; t = time.perf_counter(); import readykit; readykit.ReadyKit(); "
    "print(time.perf_counter() - t)"
)


def environment(cwd: Path) -> dict[str, str]:
    """This environment, with bytecode cached under `cwd` as an installed package has it."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(cwd / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_once(python: str, cwd: Path) -> float:
    """Seconds spent importing readykit and building the default kit, in a fresh interpreter."""
    out = subprocess.run(
        [python, "-c", PROGRAM],
        cwd=cwd,
        env=environment(cwd),
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def import_times(python: str, cwd: Path) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) for each module imported, from `-X importtime`."""
    out = subprocess.run(
        [python, "-X", "importtime", "-c", "import readykit; readykit.ReadyKit()"],
        cwd=cwd,
        env=environment(cwd),
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        if not self_us.strip().isdigit():
            continue  # the header line
        rows.append((name.strip(), int(self_us), int(cumulative_us)))
    return rows


def by_package(rows: list[tuple[str, int, int]]) -> list[tuple[str, int]]:
    """Self time summed per top-level package, slowest first (µs)."""
    totals: dict[str, int] = defaultdict(int)
    for name, self_us, _ in rows:
        totals[name.split(".")[0]] += self_us
    return sorted(totals.items(), key=lambda kv: kv[1], reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21, help="fresh interpreters to time")
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--top", type=int, default=15, help="packages and modules to list")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rk-import-") as tmp:
        cwd = Path(tmp)
        time_once(args.python, cwd)  # warm the file cache and write the .pyc files
        seconds = [time_once(args.python, cwd) for _ in range(args.runs)]
        rows = import_times(args.python, cwd)
    median_ms = statistics.median(seconds) * 1000
    packages = by_package(rows)
    own = sorted((r for r in rows if r[0].startswith("readykit")), key=lambda r: -r[2])
    print(
        f"import readykit; ReadyKit(): median {median_ms:.0f} ms over {args.runs} runs "
        f"(min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f})"
    )
    print(f"modules imported: {len(rows)}")
    print("self time per top-level package (ms, one -X importtime run):")
    for name, us in packages[: args.top]:
        print(f"  {name:<24} {us / 1000:7.1f}")
    print("readykit modules by cumulative time (ms):")
    for name, _, cumulative in own[: args.top]:
        print(f"  {name:<40} {cumulative / 1000:7.1f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "python": args.python,
                    "runs_s": seconds,
                    "median_ms": round(median_ms, 1),
                    "modules": len(rows),
                    "packages_ms": {n: round(us / 1000, 1) for n, us in packages},
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
