"""The registry of exporters and erasers, and running them for one subject.

An exporter takes the subject id and returns (or yields, sync or async, for large data) JSON-able
records. An eraser erases or anonymises and returns how many records it removed and how many it
retained, with reasons (a legal hold, an open invoice).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from readykit.errors import ConfigurationError
from readykit.logging.redact import redact_text

F = TypeVar("F", bound=Callable[..., Any])


def failure(exc: BaseException) -> str:
    """What failed, as it is stored and shown: exceptions quote DSNs and keys, redacted."""
    return redact_text(f"{type(exc).__name__}: {exc}")


@dataclass
class ErasureReport:
    """What one eraser did for one subject."""

    removed: int = 0
    retained: int = 0
    reasons: list[str] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def of(cls, value: Any) -> ErasureReport:
        """Accept an ErasureReport, a dict with removed/retained/reasons, or an int (removed)."""
        if isinstance(value, ErasureReport):
            return value
        if isinstance(value, int):
            return cls(removed=value)
        if isinstance(value, dict):
            return cls(
                removed=int(value.get("removed", 0)),
                retained=int(value.get("retained", 0)),
                # stored in the erasure log and answered to the caller: no secret they quote
                reasons=[redact_text(str(r)) for r in value.get("reasons", [])],
            )
        if value is None:
            return cls()
        raise TypeError(f"an eraser returned {type(value).__name__}; return removed/retained")


async def _records(fn: Callable[[str], Any], subject: str) -> AsyncIterator[Any]:
    result = fn(subject)
    if inspect.isawaitable(result):
        result = await result
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
        return
    if inspect.isgenerator(result):
        while True:  # a sync generator may block: take each item off the event loop
            item = await asyncio.to_thread(next, result, _END)
            if item is _END:
                return
            yield item
    for item in result or ():
        yield item


_END = object()


class Privacy:
    """`@kit.privacy.exporter("orders")` and `@kit.privacy.eraser("orders")`."""

    def __init__(self) -> None:
        self.exporters: dict[str, Callable[[str], Any]] = {}
        self.erasers: dict[str, Callable[[str], Any]] = {}

    def _register(self, table: dict[str, Callable[[str], Any]], what: str, name: str) -> Any:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigurationError(f"privacy {what} name {name!r}: use letters, digits, - and _")
        if name in table:
            raise ConfigurationError(f"privacy {what} {name!r} is registered twice")

        def register(fn: F) -> F:
            table[name] = fn
            return fn

        return register

    def exporter(self, name: str) -> Callable[[F], F]:
        """Register a function: subject id -> JSON-able records (list, generator, async)."""
        return self._register(self.exporters, "exporter", name)  # type: ignore[no-any-return]

    def eraser(self, name: str) -> Callable[[F], F]:
        """Register a function: subject id -> removed/retained report."""
        return self._register(self.erasers, "eraser", name)  # type: ignore[no-any-return]

    def records(self, name: str, subject: str) -> AsyncIterator[Any]:
        """The records of exporter `name` for `subject`, one at a time (as it yields them)."""
        return _records(self.exporters[name], subject)

    async def export(self, subject: str) -> dict[str, list[Any]]:
        """Every exporter's records for `subject`, in memory (an exporter that raises fails
        the export); the export jobs stream them into the archive instead."""
        return {name: [item async for item in self.records(name, subject)]
                for name in self.exporters}  # fmt: skip

    async def erase(self, subject: str) -> dict[str, ErasureReport]:
        """Run every eraser; one failing does not stop the others (its error is reported)."""
        reports: dict[str, ErasureReport] = {}
        for name, fn in self.erasers.items():
            try:
                result = fn(subject)
                if inspect.isawaitable(result):
                    result = await result
                reports[name] = ErasureReport.of(result)
            except Exception as exc:
                reports[name] = ErasureReport(error=failure(exc))
        return reports
