"""Process metrics that survive multiprocess mode: each worker publishes its own, by pid."""

from __future__ import annotations

import os
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector


class WorkerProcessMetrics:
    """Per-worker process metrics under several workers.

    prometheus_client's ProcessCollector reads only the process that serves the scrape, so the
    other workers' readings would be lost. Each worker copies its own into multiprocess metrics
    from a daemon thread every `interval_s`: gauges in `liveall` mode (one series per live pid)
    and CPU seconds as a counter (summed over workers, as a counter should be).
    """

    def __init__(self, registry: CollectorRegistry, *, interval_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self._source = ProcessCollector(registry=None)
        self._gauges: dict[str, Gauge] = {}
        self._cpu = Counter(
            "process_cpu_seconds", "Total user and system CPU time in seconds.", registry=registry
        )
        self._cpu_seen = 0.0
        for family in self._source.collect():
            if family.type == "gauge":
                self._gauges[family.name] = Gauge(
                    family.name,
                    family.documentation,
                    multiprocess_mode="liveall",
                    registry=registry,
                )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self) -> None:
        """Copy this process's current readings into the shared metrics."""
        for family in self._source.collect():
            if not family.samples:
                continue
            value = family.samples[0].value
            gauge = self._gauges.get(family.name)
            if gauge is not None:
                gauge.set(value)
            elif family.name == "process_cpu_seconds" and value > self._cpu_seen:
                self._cpu.inc(value - self._cpu_seen)
                self._cpu_seen = value

    def start(self) -> None:
        """Publish now, then every `interval_s` from a daemon thread."""
        if self._thread is None:
            self.update()
            self._thread = threading.Thread(
                target=self._run, name=f"readykit-process-metrics-{os.getpid()}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.update()
