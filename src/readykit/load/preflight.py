"""Before a run: is the target reachable at all? A clear one-line error instead of a run of
nothing but connection errors."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from readykit.errors import ToolFailure
from readykit.logging.redact import redact_text

CONNECT_TIMEOUT_S = 3.0


class TargetUnreachable(ToolFailure):
    """The target did not accept a TCP connection (exit code 3 in the CLI)."""


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "127.0.0.1", port


def _failure(url: str, host: str, port: int, exc: BaseException) -> TargetUnreachable:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    if isinstance(exc, TimeoutError):
        reason = f"no answer within {CONNECT_TIMEOUT_S:g}s"
    return TargetUnreachable(
        f"cannot reach {redact_text(url)} ({host}:{port}: {reason}); "
        "is the service running and the URL right?"
    )


def check_reachable(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise TargetUnreachable unless `url`'s host accepts a TCP connection (sends nothing)."""
    host, port = _address(url)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except (OSError, TimeoutError) as exc:
        raise _failure(url, host, port, exc) from exc


async def check_reachable_async(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """`check_reachable` for async callers."""
    host, port = _address(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError) as exc:
        raise _failure(url, host, port, exc) from exc
    writer.close()
    await writer.wait_closed()
