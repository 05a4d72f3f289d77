"""Prometheus metrics: the kit's registry, HTTP/health/process metrics, and `GET /metrics`.

Multiprocess (gunicorn or `uvicorn --workers N`): set `PROMETHEUS_MULTIPROC_DIR` to an empty,
writable directory in the environment before the server starts (prometheus_client chooses its
value store at import). One scrape then sums over workers; each scrape first drops the live
gauges of workers no longer running (killed, restarted), and with gunicorn
`child_exit = readykit.metrics.gunicorn_child_exit` drops them at once.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder

from readykit._types import Receive, Scope, Send
from readykit.access import OpsAccess
from readykit.headers import get_header
from readykit.metrics.config import MetricsConfig
from readykit.metrics.health import HealthCheckMetrics
from readykit.metrics.http import FileBackedHttpMetrics, HttpMetrics
from readykit.metrics.process import WorkerProcessMetrics
from readykit.problem import refuse_method, refuse_unauthorized, send_bytes

__all__ = ["Metrics", "drop_dead_workers", "gunicorn_child_exit", "multiprocess_dir"]


def multiprocess_dir() -> str | None:
    """The directory prometheus_client's multiprocess mode uses, if it is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def gunicorn_child_exit(server: Any, worker: Any) -> None:
    """gunicorn `child_exit` hook: drop the dead worker's live gauges."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]*_(\d+)\.db")


def drop_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that are gone, whoever ended them (`uvicorn --workers`
    has no child-exit hook; a worker killed with SIGKILL runs none): the active requests and
    process figures of a dead worker otherwise stay in every scrape. A worker is gone when no
    process has its pid on this host (the directory is per host)."""
    alive: dict[int, bool] = {os.getpid(): True}
    for name in os.listdir(directory):
        found = _LIVE_GAUGE_FILE.fullmatch(name)
        if found is None:
            continue
        pid = int(found.group(1))
        if pid not in alive:
            alive[pid] = _alive(pid)
        if not alive[pid]:
            # what prometheus_client's mark_process_dead removes, but a scrape of another
            # worker (or gunicorn's child_exit) may remove it first
            (Path(directory) / name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Metrics:
    """The kit's metrics. Later parts register theirs on `registry`.

    Args:
        config: the metrics' section (`metrics_max_routes`, `metrics_public`).
        access: who may scrape when the metrics are not public.
        registry: where metrics live; a fresh one per kit by default, so kits never collide.
    """

    def __init__(
        self,
        config: MetricsConfig,
        access: OpsAccess,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.multiprocess = multiprocess_dir() is not None
        self.public = config.metrics_public
        self.access = access
        # one process: plain counts rendered at scrape time; several: each observation goes to
        # the worker's value files, so one scrape can sum over workers
        self.http: HttpMetrics | FileBackedHttpMetrics = (
            FileBackedHttpMetrics(self.registry, max_routes=config.metrics_max_routes)
            if self.multiprocess
            else HttpMetrics(self.registry, max_routes=config.metrics_max_routes)
        )
        self.health = HealthCheckMetrics(self.registry)
        self.process: WorkerProcessMetrics | None = None
        if self.multiprocess:
            self.process = WorkerProcessMetrics(self.registry)
            self._exposed = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed)  # type: ignore[no-untyped-call]
            PlatformCollector(registry=self._exposed)
        else:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            if GC_COLLECTOR is not None:
                GCCollector(registry=self.registry)
            self._exposed = self.registry

    def start(self) -> None:
        """Begin publishing this worker's process metrics (multiprocess mode only)."""
        if self.process is not None:
            self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition in the format `accept` asks for: OpenMetrics 1.0.0 or text 0.0.4."""
        encoder, content_type = choose_encoder(accept)
        directory = multiprocess_dir()
        if self.multiprocess and directory is not None:
            drop_dead_workers(directory)
        return encoder(self._exposed), content_type

    async def endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`GET /metrics`: for the ops token (see readykit.access), unless public."""
        if await refuse_method(scope, send):
            return
        if not self.public and not self.access.allowed(scope):
            await refuse_unauthorized(send)
            return
        accept = (get_header(scope["headers"], b"accept") or b"").decode("latin-1")
        # off the event loop: multiprocess mode reads every worker's files
        body, content_type = await asyncio.to_thread(self.render, accept)
        head = scope["method"] == "HEAD"
        await send_bytes(send, 200, body, content_type.encode(), head=head)
