"""Test support: skip (or, under READYKIT_REQUIRE_SERVICES=1, fail) when a service is missing."""

from __future__ import annotations

import os
import shutil

import pytest


def services_required() -> bool:
    return os.environ.get("READYKIT_REQUIRE_SERVICES") == "1"


def need(reason: str) -> None:
    """Skip the test with `reason`, or fail it when services are required."""
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def need_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        need(f"{name} is not installed")
        raise AssertionError  # unreachable: need() raises
    return path
