"""Memory of the kit under many distinct paths: 1 M requests over 10,000 paths, in process.

`python -m bench.memory_bench [--requests N] [--paths N] [--variant V]` drives the variant
(default: everything on) with GET /items/{i} (one route, 10,000 paths) and GET /nope/{i} (no
route: UNMATCHED) alternately, and prints the resident set size after warm-up and at the end.
Issue 17's target: flat within 5 MB after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from typing import Any

from bench.apps import VARIANTS
from bench.inproc import _SCOPE, _startup
from readykit._types import Message


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 2**20


async def drive(variant: str, requests: int, paths: int, warmup: int) -> tuple[float, float]:
    app = VARIANTS[variant]()
    shutdown = await _startup(app)
    request: Message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        pass

    async def one(i: int) -> None:
        path = f"/items/{i % paths}" if i % 2 else f"/nope/{i % paths}"
        scope: dict[str, Any] = {**_SCOPE, "path": path, "raw_path": path.encode(), "state": {}}
        await app(scope, receive, send)

    after_warmup = 0.0
    for start in range(0, requests, 32):
        await asyncio.gather(*(one(i) for i in range(start, start + 32)))
        if start <= warmup < start + 32:
            await asyncio.sleep(0.05)  # let the background writers drain
            gc.collect()
            after_warmup = rss_mb()
    await asyncio.sleep(0.05)
    gc.collect()
    end = rss_mb()
    await shutdown()
    return after_warmup, end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=100_000)
    parser.add_argument("--variant", default="readykit-everything", choices=sorted(VARIANTS))
    args = parser.parse_args()
    import uvloop

    warm, end = uvloop.run(drive(args.variant, args.requests, args.paths, args.warmup))
    print(
        f"{args.variant}: {args.requests:,} requests over {args.paths:,} paths: "
        f"RSS {warm:.1f} MB after {args.warmup:,}, {end:.1f} MB at the end "
        f"({end - warm:+.1f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
