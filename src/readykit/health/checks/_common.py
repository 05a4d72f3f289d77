"""Types and small helpers shared by the built-in checks."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from readykit.errors import ConfigurationError
from readykit.health.observation import Observation

if TYPE_CHECKING:
    pass

T = TypeVar("T")

Check = Callable[[], Awaitable[Observation | None]]

# Connect/read timeout for clients the checks create themselves, so a dead peer fails fast.
_CLIENT_TIMEOUT_S = 1.0
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ClosableCheck(Protocol):
    """A check that owns a client; `aclose()` releases it (call it at shutdown)."""

    def __call__(self) -> Awaitable[Observation | None]: ...

    async def aclose(self) -> None: ...


def _require_path(path: object, factory: str) -> str:
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise ConfigurationError(f"{factory}() needs a directory path, got {path!r}")
    return str(os.fspath(path))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _bytes(n: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, i = float(n), 0
    while size >= 1024 and i < len(units) - 1:
        size, i = size / 1024, i + 1
    return f"{n} B" if i == 0 else f"{size:.1f} {units[i]}"


def hinted(check: Check, *, measurement: str, component_type: str) -> Check:
    """Tell the kit how health+json should name this check's value (`name:measurement`)."""
    check.measurement = measurement  # type: ignore[attr-defined]
    check.component_type = component_type  # type: ignore[attr-defined]
    return check
