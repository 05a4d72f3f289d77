"""The durable store of records: audit events (hash-chained), APM entries and their per-minute
aggregates. Backends by URI: `sqlite:///path` (default) and `postgresql://...`.

Every event carries an id; writing one twice is a no-op, so a batch replayed after an outage
never duplicates. Audit events are chained: each stores the SHA-256 of the previous event's
hash and its own content, so an edited or deleted row breaks the chain at that row.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from readykit.errors import ConfigurationError

GENESIS = "0" * 64
AUDIT = "audit"
# APM kinds; each also feeds the per-minute aggregates the dashboard reads
KINDS = ("slow_request", "slow_query", "exception", "stall")


# built once: json.dumps with options builds a new encoder per call, a third of the write cost
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr)
_NOT_HASHED = ("hash", "prev_hash", "seq")


def canonical(event: dict[str, Any]) -> str:
    """The JSON an audit event is hashed over: its fields, sorted, without the hashes."""
    if any(k in event for k in _NOT_HASHED):
        event = {k: v for k, v in event.items() if k not in _NOT_HASHED}
    return _CANONICAL.encode(event)


def chain_hash(prev_hash: str, event: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and this event's canonical JSON."""
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """Where the audit chain breaks: the row's sequence number and id, and why."""

    seq: int
    id: str
    reason: str


def verify_chain(events: Iterable[dict[str, Any]]) -> BrokenLink | None:
    """The first broken link of audit events in sequence order, or None if the chain holds."""
    prev = GENESIS
    for event in events:
        if event["prev_hash"] != prev:
            return BrokenLink(event["seq"], event["id"], "prev_hash does not match the row before")
        if chain_hash(prev, event) != event["hash"]:
            return BrokenLink(event["seq"], event["id"], "content does not match its hash")
        prev = event["hash"]
    return None


class StoreUnavailable(Exception):
    """The store cannot be reached now; the caller spills and retries."""


class Store(ABC):
    """Where records live. `write` is idempotent by event id."""

    url: str

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema to the current version (raises StoreUnavailable)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def write(self, events: Sequence[dict[str, Any]]) -> int:
        """Insert events in order, skipping ids already stored; the number inserted.

        Audit events (`kind == "audit"`) are chained as they are inserted; APM events also
        update their per-minute aggregate. Raises StoreUnavailable when the store is down.
        """

    @abstractmethod
    async def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Audit events in sequence order, filtered."""

    @abstractmethod
    async def entries(
        self, kind: str, *, since: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """APM entries of `kind`, newest first."""

    @abstractmethod
    async def buckets(self, kind: str, *, since: float) -> list[dict[str, Any]]:
        """Per-minute aggregates of `kind` since `since`: minute, group, count, sum and max."""

    @abstractmethod
    async def trim(self, before: float, *, batch: int = 1000) -> int:
        """Delete APM entries and aggregates older than `before`, `batch` rows at a time."""

    @abstractmethod
    async def put_doc(
        self, kind: str, id: str, body: dict[str, Any], *, key: str | None = None, ts: float
    ) -> None:
        """Create or replace a small JSON document (a privacy job, an erasure log entry)."""

    @abstractmethod
    async def get_doc(self, kind: str, id: str) -> dict[str, Any] | None:
        """The document, or None."""

    @abstractmethod
    async def docs(
        self, kind: str, *, key: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Documents of `kind`, oldest first, optionally with `key` and not older than `since`."""

    async def claim_doc(
        self, kind: str, id: str, body: dict[str, Any], *, until: float, at: float
    ) -> bool:
        """Take a lease: create the document, or replace it when its `ts` is not after `at`.

        The document's `ts` becomes `until` (the lease's end). True when this call took it;
        atomic, so of several instances claiming at once exactly one gets True.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement claim_doc")

    async def delete_docs(self, kind: str, *, before: float, key: str | None = None) -> int:
        """Delete documents of `kind` (optionally with `key`) older than `before`; how many."""
        raise NotImplementedError(f"{type(self).__name__} does not implement delete_docs")

    async def check(self) -> None:
        """Readiness: raises when the store cannot be reached."""
        await self.entries("stall", limit=1)


def store_from_url(url: str) -> Store:
    """`sqlite:///path/to/file.db` or `postgresql://user@host:port/db`."""
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        from readykit.records.sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        from readykit.errors import require_extra

        require_extra("asyncpg", "postgres", "store_url")
        from readykit.records.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigurationError(
        f"store_url: unknown scheme {scheme!r} in {url!r}; use sqlite:///path or postgresql://"
    )


_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()


def _reseed() -> None:
    """A forked worker (gunicorn) must not repeat its parent's ids: a new prefix."""
    global _ID_PREFIX
    _ID_PREFIX = secrets.token_hex(8)


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A unique event id: a random per-process prefix and a counter (no syscall per event)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


def minute_of(ts: float) -> int:
    """The aggregate bucket (whole minutes since the epoch) of a timestamp."""
    return int(ts // 60)
