"""The live terminal display while a run goes: progress, req/s, p50/p95/p99, errors."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from readykit.load.stats import Timeline, summary_ms


class LiveDisplay:
    """A rich Live panel fed with the merged timeline after every interval."""

    def __init__(self, console: Console, label: str, duration_s: float) -> None:
        self.console = console
        self.label = label
        self.duration_s = duration_s
        self.started = time.monotonic()
        self.live = Live(self._render(None), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveDisplay:
        self.live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.stop()

    def update(self, timeline: Timeline) -> None:
        """Show the latest interval of `timeline`."""
        self.live.update(self._render(timeline))

    def _render(self, timeline: Timeline | None) -> Table:
        elapsed = min(self.duration_s, time.monotonic() - self.started)
        done = int(30 * elapsed / self.duration_s) if self.duration_s else 30
        table = Table.grid(padding=(0, 2))
        table.add_row(
            f"[bold]{self.label}[/]",
            f"[{'#' * done}{'.' * (30 - done)}] {elapsed:4.1f}/{self.duration_s:g}s",
        )
        if timeline is not None and timeline.slices:
            last = timeline.recent(1)[0]
            lat = summary_ms(last.hist)
            warm = " (warm-up)" if last.index < timeline.warmup_intervals else ""
            errors = sum(sum(s.errors.values()) for s in timeline.slices.values())
            table.add_row(
                f"{last.requests / timeline.interval_s:8.1f} req/s{warm}",
                f"p50 {lat['p50']:.1f} ms  p95 {lat['p95']:.1f} ms  p99 {lat['p99']:.1f} ms  "
                f"errors {errors}",
            )
        return table
