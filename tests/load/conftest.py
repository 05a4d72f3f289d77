"""A known-behaviour loopback server for the load tests, started once per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from readykit.serve import ServerProcess, serve

APP = Path(__file__).with_name("load_target_app.py")


@pytest.fixture(scope="session")
def target() -> Iterator[ServerProcess]:
    """The server of `load_target_app.py` on a free loopback port."""
    with serve([sys.executable, str(APP), "--port", "{port}"]) as server:
        yield server
