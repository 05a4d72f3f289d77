"""A built-in check whose client library is missing is refused where it is registered, naming
the extra, not by every readiness probe after the service started."""

from __future__ import annotations

import sys

import pytest

from readykit import ConfigurationError
from readykit.health.checks import http_dependency


def test_http_dependency_without_aiohttp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as if not installed
    with pytest.raises(ConfigurationError) as refused:
        http_dependency("http://127.0.0.1:9/")
    assert str(refused.value) == (
        "http_dependency(): needs the 'aiohttp' package; pip install 'readykit[load]'"
    )
