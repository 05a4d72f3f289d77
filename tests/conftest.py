"""Shared fixtures: real backing services, skipped with a reason when absent.

Under READYKIT_REQUIRE_SERVICES=1 (CI) a missing service is a failure, not a skip.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import need

POSTGRES_URL = os.environ.get(
    "READYKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("READYKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the PostgreSQL server's `test` database (shared; prefer `postgres_url`)."""
    if not _reachable(POSTGRES_URL):
        need(f"PostgreSQL not reachable at {POSTGRES_URL}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"rk_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of a real Redis, flushed before and after the test."""
    if not _reachable(REDIS_URL):
        need(f"Redis not reachable at {REDIS_URL}")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A kit's startup installs the logging pipeline globally; undo it after each test."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _private_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's kits keep their records, spill file and privacy key in its own directory,
    not in a `.readykit/` shared by every test (and every run) in the working directory."""
    monkeypatch.setenv("READYKIT_STORE_URL", f"sqlite:///{tmp_path}/readykit/records.db")
    monkeypatch.setenv("READYKIT_SPILL_PATH", str(tmp_path / "readykit" / "spill.jsonl"))
    monkeypatch.setenv("READYKIT_PRIVACY_KEY_PATH", str(tmp_path / "readykit" / "privacy.key"))
    monkeypatch.setenv("READYKIT_PRIVACY_ARCHIVE_DIR", str(tmp_path / "readykit" / "exports"))
