"""Time `import readykit; readykit.ReadyKit()` in fresh interpreters; list the heavy imports.

.venv/bin/python -m bench.import_bench [--runs 21] [--source NAME=DIR ...] [--python PATH]
                                       [--top 15] [--json FILE]

Each run is a new subprocess in an empty working directory (the kit's defaults create
`.readykit/` there) and reports the time from before `import readykit` to after `ReadyKit()`
returns (and, apart, `import readykit` alone). Runs alternate between the sources given
(`--source before=/tmp/old/src`; default: whatever `readykit` this interpreter imports) and a
reference, `import asyncio, pydantic` and a first model class: what any pydantic-configured
ASGI middleware pays at least, to read the machine's speed by. Medians are printed. One more
run per source under `python -X importtime` gives the self time summed per top-level package
and the slowest readykit modules. Bytecode is cached (in a temporary PYTHONPYCACHEPREFIX,
whatever PYTHONDONTWRITEBYTECODE says), as after `pip install`, so compiling the sources is not
counted.
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

KIT = "import readykit; readykit.ReadyKit()"
IMPORT = "import readykit"
REFERENCE = "import asyncio, pydantic\nclass M(pydantic.BaseModel): x: int = 0"
TIMED = "import time; t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"


def environment(cwd: Path, source: str | None) -> dict[str, str]:
    """This environment, with bytecode cached under `cwd` as an installed package has it."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(cwd / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([source, env.get("PYTHONPATH", "")]).rstrip(":")
    return env


def time_once(python: str, cwd: Path, source: str | None, code: str) -> float:
    """Seconds `code` takes in a fresh interpreter."""
    out = subprocess.run(
        [python, "-c", TIMED.format(code=code)],
        cwd=cwd,
        env=environment(cwd, source),
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def import_times(python: str, cwd: Path, source: str | None) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) for each module imported, from `-X importtime`."""
    out = subprocess.run(
        [python, "-X", "importtime", "-c", KIT],
        cwd=cwd,
        env=environment(cwd, source),
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:"):
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
    parser.add_argument("--runs", type=int, default=21, help="fresh interpreters per source")
    parser.add_argument(
        "--source", action="append", default=[], metavar="NAME=DIR", help="a readykit src dir"
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--top", type=int, default=15, help="packages and modules to list")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    sources: dict[str, str | None] = {"readykit": None}
    if args.source:
        sources = dict(s.split("=", 1) for s in args.source)
    variants = [(name, src, KIT) for name, src in sources.items()]
    variants += [(f"{name} (import only)", src, IMPORT) for name, src in sources.items()]
    variants.append(("reference", None, REFERENCE))
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    report: dict[str, object] = {"python": args.python, "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="rk-import-") as tmp:
        cwd = Path(tmp)
        for _name, src, code in variants:  # warm the file cache and write the .pyc files
            time_once(args.python, cwd, src, code)
        for _ in range(args.runs):
            for name, src, code in variants:
                seconds[name].append(time_once(args.python, cwd, src, code))
        reference = statistics.median(seconds["reference"]) * 1000
        print(f"reference (import asyncio, pydantic; one model): median {reference:.0f} ms")
        for name, src in sources.items():
            median_ms = statistics.median(seconds[name]) * 1000
            import_ms = statistics.median(seconds[f"{name} (import only)"]) * 1000
            rows = import_times(args.python, cwd, src)
            packages = by_package(rows)
            own = sorted((r for r in rows if r[0].startswith("readykit")), key=lambda r: -r[2])
            print(
                f"{name}: import readykit; ReadyKit(): median {median_ms:.0f} ms over {args.runs}"
                f" runs ({median_ms / reference:.2f} x the reference); {len(rows)} modules;"
                f" import readykit alone: median {import_ms:.0f} ms"
            )
            print("  self time per top-level package (ms, one -X importtime run):")
            for package, us in packages[: args.top]:
                print(f"    {package:<24} {us / 1000:7.1f}")
            print("  readykit modules by cumulative time (ms):")
            for module, _, cumulative in own[: args.top]:
                print(f"    {module:<40} {cumulative / 1000:7.1f}")
            report[name] = {
                "median_ms": round(median_ms, 1),
                "import_only_median_ms": round(import_ms, 1),
                "runs_s": seconds[name],
                "modules": len(rows),
                "packages_ms": {p: round(us / 1000, 1) for p, us in packages},
            }
        report["reference"] = {"median_ms": round(reference, 1), "runs_s": seconds["reference"]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
