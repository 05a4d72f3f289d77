"""Helpers for tests that drive real `readykit backup` processes."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import pytest

POLL_LIMIT_S = 120.0  # only a bound against hanging forever; no test asserts on time


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds; fail, naming `what`, only if it never does."""
    deadline = time.monotonic() + POLL_LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL `proc` and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
