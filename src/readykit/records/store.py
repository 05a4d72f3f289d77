"""The durable store of records: audit events (a keyed hash chain), APM entries and their
per-minute aggregates. Backends by URI: `sqlite:///path` (default) and `postgresql://...`.

Every event carries an id; writing one twice is a no-op, so a batch replayed after an outage
never duplicates. Audit events are chained: each row's `hash` is an HMAC, with a key the
database does not hold, over its sequence number, the previous row's hash and its stored
columns; sequence numbers are contiguous. An edited row fails its MAC, a deleted row leaves a
gap, and a chain recomputed without the key fails at its first recomputed row. A truncated
tail leaves a consistent chain, so the head (seq, hash) is anchored outside the table (see
`readykit.records.anchor`) and verification compares against it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import json.encoder
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from readykit.section import url_scheme

GENESIS = "0" * 64
AUDIT = "audit"
# the range of rk_audit.seq (SQLite INTEGER, PostgreSQL BIGINT); the chain itself starts at 1
SEQ_MIN, SEQ_MAX = -(2**63), 2**63 - 1
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
    """Unkeyed SHA-256 link of rows written before chains were keyed (verified, not trusted)."""
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


@dataclass(frozen=True)
class ChainKey:
    """The audit chain's HMAC key, and its public id (which key wrote a row)."""

    key: bytes = field(repr=False)
    id: str = field(init=False)
    _inner: Any = field(init=False, repr=False, compare=False)
    _outer: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # HMAC-SHA256 (RFC 2104) with the padded key hashed once: per row only the message is
        # hashed, about 3x faster than hmac.new() per row when a million rows are verified
        padded = (self.key if len(self.key) <= 64 else hashlib.sha256(self.key).digest()).ljust(
            64, b"\0"
        )
        object.__setattr__(self, "_inner", hashlib.sha256(bytes(b ^ 0x36 for b in padded)))
        object.__setattr__(self, "_outer", hashlib.sha256(bytes(b ^ 0x5C for b in padded)))
        object.__setattr__(self, "id", self.mac(b"readykit audit key id")[:16])

    def mac(self, message: bytes) -> str:
        """HMAC-SHA256 of `message` under this key, in hex."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())

    @classmethod
    def from_secret(cls, secret: str) -> ChainKey:
        """A key from a configured secret string (READYKIT_AUDIT_KEY, or a key file's text)."""
        return cls(hashlib.sha256(secret.strip().encode()).digest())


def json_encoder(*, sort_keys: bool, compact: bool, ascii: bool) -> Callable[[Any], str]:
    """A JSON encoding function, the same text as json.JSONEncoder with these options, about
    2.5x faster per call: the C encoder is built once, not per call. No cycle check: what is
    encoded here has been through the Redactor (cycles become "[CYCLE]") or is a flat row."""
    key_sep, item_sep = (":", ",") if compact else (": ", ", ")
    make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # not in the stubs
    if make_encoder is None:  # pragma: no cover - CPython always has _json
        slow = json.JSONEncoder(
            sort_keys=sort_keys, separators=(item_sep, key_sep), ensure_ascii=ascii, default=repr
        )
        return slow.encode
    encode_str = json.encoder.encode_basestring_ascii if ascii else json.encoder.encode_basestring
    encoder = make_encoder(None, repr, encode_str, None, key_sep, item_sep, sort_keys, False, True)
    return lambda value: "".join(encoder(value, 0))


# the stored columns a row's MAC covers, in order (AUDIT_COLUMNS without `hash`)
_ROW = json_encoder(sort_keys=False, compact=True, ascii=False)


def row_mac(key: ChainKey, row: Sequence[Any]) -> str:
    """The HMAC-SHA256 of one audit row as stored: seq, id, ts, actor, action, resource,
    status, request_id, details (the stored JSON text), prev_hash, key_id."""
    return key.mac(_ROW(row if isinstance(row, list) else list(row)).encode())


@dataclass(frozen=True, slots=True)
class Head:
    """The newest link of the chain: anchored outside the table so a cut tail shows."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """Where the audit chain breaks: the first bad sequence number, the row's id, and why."""

    seq: int
    id: str
    reason: str


class KeyProblem(Exception):
    """The chain cannot be checked with the key given: none given, or the wrong one."""


@dataclass
class Verification:
    """What `verify_rows` found: rows checked, the head, unkeyed rows, the first broken link."""

    rows: int = 0
    head: Head | None = None
    unkeyed: int = 0
    broken: BrokenLink | None = None


class ChainVerifier:
    """Checks stored audit rows (AUDIT_COLUMNS order, by seq), fed one at a time, against the
    key and the anchors (heads kept outside the table). Memory stays flat: it streams.

    Reports, by the first bad sequence number: a row numbered below 1 (readykit numbers from
    1), a gap (a deleted row), a row whose prev_hash is not the hash before it, an edited or
    recomputed row (MAC), an unkeyed row after keyed ones or after `unkeyed_through` (the last
    seq written before keyed chains, as the store recorded it), a tail shorter than an anchor,
    and a row that differs from its anchor. Given a key, a chain of unkeyed rows only that no
    anchor covers is not taken as intact: a chain rewritten without the key looks the same.
    `feed` raises KeyProblem when the chain is keyed but no key, or another key, is given.
    """

    def __init__(
        self,
        key: ChainKey | None,
        anchors: Sequence[Head] = (),
        *,
        anchored_key_id: str | None = None,
        unkeyed_through: int | None = None,
    ) -> None:
        self.key = key
        self.anchors = {a.seq: a.hash for a in anchors}
        self.anchored_key_id = anchored_key_id
        self.unkeyed_through = unkeyed_through
        self.result = Verification()
        self._seq, self._hash = 0, GENESIS
        self._keyed = False
        self._anchor_bad: BrokenLink | None = None
        self._first_unkeyed = (1, "")  # seq and id of the first unkeyed row

    def _broken(self, reason: str, seq: int, id_: str) -> bool:
        self.result.broken = BrokenLink(seq, id_, reason)
        return False

    def feed(self, row: Sequence[Any]) -> bool:
        """Check the next row; False once the chain is broken (then stop feeding)."""
        seq, id_, ts, actor, action, resource, status, request_id, details, prev, hash_, kid = row
        self.result.rows += 1
        if seq < 1:
            return self._broken(f"seq {seq} is below 1, where the chain starts: inserted", seq, id_)
        if kid is None:
            if self._keyed:
                return self._broken("an unkeyed row after keyed ones: recomputed", seq, id_)
            through = self.unkeyed_through
            if through is not None and seq > through:
                return self._broken(
                    f"unkeyed, but the rows that predate keyed chains end at seq {through}: "
                    "written without the key",
                    seq,
                    id_,
                )
            if prev != self._hash:
                return self._broken("prev_hash does not match the row before", seq, id_)
            try:
                parsed = json.loads(details) if details is not None else None
            except (TypeError, ValueError, RecursionError):  # a number, a BLOB, deep nesting
                return self._broken("its details are not JSON: edited", seq, id_)
            event = {"id": id_, "kind": AUDIT, "ts": ts, "actor": actor, "action": action,
                     "resource": resource, "status": status, "request_id": request_id,
                     "details": parsed}  # fmt: skip
            if chain_hash(prev, event) != hash_:
                return self._broken("content does not match its hash", seq, id_)
            if not self.result.unkeyed:
                self._first_unkeyed = (seq, id_)
            self.result.unkeyed += 1
        else:
            key = self.key
            if key is None:
                raise KeyProblem(
                    f"the audit chain is keyed (key id {kid}) but no key was given: set "
                    "READYKIT_AUDIT_KEY or pass --key-file"
                )
            if kid != key.id:
                if not self._keyed and self.anchored_key_id != key.id:
                    raise KeyProblem(
                        f"wrong audit key: the chain was written with key id {kid}, the key "
                        f"given has id {key.id}"
                    )
                # the anchor vouches for our key: rows under another key were rewritten
                return self._broken(f"written with another key (key id {kid})", seq, id_)
            self._keyed = True
            if seq != self._seq + 1:
                return self._broken(f"seq {self._seq + 1} is missing (deleted)", self._seq + 1, "")
            if prev != self._hash:
                return self._broken("prev_hash does not match the row before", seq, id_)
            linked = [seq, id_, ts, actor, action, resource, status, request_id, details, prev, kid]
            # a MAC is ASCII hex: a stored hash that is not (a BLOB, other text) was edited, and
            # compare_digest would raise on it rather than answer
            if not (
                isinstance(hash_, str)
                and hash_.isascii()
                and hmac.compare_digest(key.mac(_ROW(linked).encode()), hash_)
            ):
                return self._broken(
                    "content does not match its MAC (edited or recomputed)", seq, id_
                )
        self._seq, self._hash = seq, hash_
        anchored = self.anchors.get(seq)
        if anchored is not None and anchored != hash_ and self._anchor_bad is None:
            self._anchor_bad = BrokenLink(seq, id_, "differs from its anchored hash: recomputed")
        return True

    def feed_all(self, rows: Iterable[Sequence[Any]]) -> bool:
        """Check rows in order; False once the chain is broken."""
        feed = self.feed
        return all(feed(row) for row in rows)

    def finish(self) -> Verification:
        """The result, once every row was fed (or `feed` said stop)."""
        result = self.result
        if self._seq:
            result.head = Head(self._seq, self._hash)
        if result.broken is not None:
            return result
        beyond = [seq for seq in self.anchors if seq > self._seq]
        if beyond:
            result.broken = BrokenLink(
                self._seq + 1,
                "",
                f"the chain ends at seq {self._seq} but an anchor says seq {max(beyond)}: "
                f"the tail from seq {self._seq + 1} was deleted",
            )
        elif self._anchor_bad is not None:
            result.broken = self._anchor_bad
        elif self.key is not None and result.unkeyed and not self._keyed and not self.anchors:
            # with keyed rows after them, unkeyed ones are pinned by the first keyed row's MAC
            # (it covers prev_hash); with none, nothing tells them from a keyless rewrite
            result.broken = BrokenLink(
                *self._first_unkeyed,
                "every row is unkeyed and no anchor covers them: a chain rewritten without the "
                "key looks the same",
            )
        return result


def verify_rows(
    rows: Iterable[Sequence[Any]], key: ChainKey | None, anchors: Sequence[Head] = ()
) -> Verification:
    """Run a ChainVerifier over `rows`."""
    verifier = ChainVerifier(key, anchors)
    verifier.feed_all(rows)
    return verifier.finish()


def verify_chain(
    events: Iterable[dict[str, Any]], key: ChainKey | None, anchors: Sequence[Head] = ()
) -> BrokenLink | None:
    """The first broken link of audit events (as `Store.audit` returns them), or None."""
    from readykit.records.schema import event_row

    return verify_rows((event_row(e) for e in events), key, anchors).broken


class StoreUnavailable(Exception):
    """The store cannot be reached now; the caller spills and retries."""


class Store(ABC):
    """Where records live. `write` is idempotent by event id."""

    url: str
    audit_key: ChainKey | None = None
    head: Head | None = None
    """The chain's head after this store's last write of audit events (None before)."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema to the current version (raises StoreUnavailable)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def write(self, events: Sequence[dict[str, Any]], *, fresh: bool = False) -> int:
        """Insert events in order, skipping ids already stored; the number inserted.

        Audit events (`kind == "audit"`) are chained as they are inserted; APM events also
        update their per-minute aggregate. Raises StoreUnavailable when the store is down.
        `fresh`: the events were never offered before (not a replay), so the lookup of ids
        already stored is skipped; a unique index still refuses a duplicate.
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

    async def renew_doc(self, kind: str, id: str, body: dict[str, Any], *, until: float) -> bool:
        """Move a lease's end (`ts`) to `until` if the document still holds `body` (the lease
        this caller took with `claim_doc`); False if another has taken it since. Atomic."""
        raise NotImplementedError(f"{type(self).__name__} does not implement renew_doc")

    async def delete_docs(self, kind: str, *, before: float, key: str | None = None) -> int:
        """Delete documents of `kind` (optionally with `key`) older than `before`; how many."""
        raise NotImplementedError(f"{type(self).__name__} does not implement delete_docs")

    @abstractmethod
    async def audit_page(self, from_seq: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` stored audit rows (AUDIT_COLUMNS order) with seq >= `from_seq`, by
        seq (schema.AUDIT_PAGE)."""

    async def audit_pages(self, *, page: int = 10_000) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Every stored audit row, by seq, a page at a time (for verification and export).

        Every row, whatever its seq: from the lowest a 64-bit seq column holds, so a row
        inserted with seq 0 or below is read (and shown as broken), not skipped.
        The next page is read (in the store's thread or connection) while the caller works
        through this one.
        """
        pending = asyncio.ensure_future(self.audit_page(SEQ_MIN, page))
        try:
            while True:
                rows = await pending
                more = len(rows) == page and rows[-1][0] < SEQ_MAX
                if more:
                    pending = asyncio.ensure_future(self.audit_page(rows[-1][0] + 1, page))
                if rows:
                    yield rows
                if not more:
                    return
        finally:
            if not pending.done():
                pending.cancel()
                await asyncio.wait([pending])

    async def audit_head(self) -> Head | None:
        """The newest stored audit row's (seq, hash); None for an empty chain. (A store may
        read it in one query; this reads every page.)"""
        last: tuple[Any, ...] | None = None
        async for rows in self.audit_pages():
            last = rows[-1]
        return Head(int(last[0]), str(last[10])) if last is not None else None

    async def audit_rows(self, *, page: int = 10_000) -> AsyncIterator[tuple[Any, ...]]:
        """Every stored audit row, by seq (see `audit_pages`)."""
        async for rows in self.audit_pages(page=page):
            for row in rows:
                yield row

    async def check(self) -> None:
        """Readiness: raises when the store cannot be reached."""
        await self.entries("stall", limit=1)


STORE_SCHEMES = ("sqlite", "postgresql", "postgres")


def store_scheme(url: str) -> str:
    """`sqlite` (with a file named) or `postgresql`/`postgres`; anything else is refused naming
    the setting."""
    scheme = url_scheme(
        url, STORE_SCHEMES, setting="store_url", use="sqlite:///path or postgresql://"
    )
    if scheme == "sqlite":
        from readykit.records.sqlite import sqlite_path

        sqlite_path(url)
    else:
        _check_postgres_url(url)
    return scheme


def _check_postgres_url(url: str) -> None:
    """A PostgreSQL URL's ports are numbers (every host's, `host1:5432,host2:5433` too): a typo
    is told when the settings are read, never as a driver's error at the first connect. The
    URL is shown with its password redacted."""
    from urllib.parse import urlsplit

    from readykit.errors import ConfigurationError
    from readykit.logging.redact import redact_text

    try:
        hosts = urlsplit(url).netloc.rpartition("@")[2]
    except ValueError as exc:  # an unbalanced [ of an IPv6 address
        raise ConfigurationError(
            f"store_url: the store URL {redact_text(url)!r} cannot be parsed: {exc}; "
            "write postgresql://user:password@host:5432/database"
        ) from None
    for host in hosts.split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        _, colon, number = port.rpartition(":")
        if colon and not (number.isdigit() and 0 < int(number) < 65536):
            raise ConfigurationError(
                f"store_url: the store URL {redact_text(url)!r} cannot be parsed: the port "
                f"{number!r} is not a number from 1 to 65535; "
                "write postgresql://user:password@host:5432/database"
            )


def store_from_url(url: str, *, audit_key: ChainKey | None = None) -> Store:
    """`sqlite:///path/to/file.db` or `postgresql://user@host:port/db`.

    `audit_key` is needed to write audit events (reading works without it).
    """
    scheme = store_scheme(url)
    store: Store
    if scheme == "sqlite":
        from readykit.records.sqlite import SQLiteStore

        store = SQLiteStore(url)
    else:
        from readykit.errors import require_extra

        require_extra("asyncpg", "postgres", "store_url")
        from readykit.records.postgres import PostgresStore

        store = PostgresStore(url)
    store.audit_key = audit_key
    return store


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
