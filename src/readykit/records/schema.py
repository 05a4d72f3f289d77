"""The store's schema, its versioned migrations, and the SQL both backends share.

Statements are written with `?` placeholders; the PostgreSQL backend numbers them (`$1` ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from readykit.errors import ConfigurationError
from readykit.records.store import (
    AUDIT,
    GENESIS,
    ChainKey,
    Head,
    StoreUnavailable,
    json_encoder,
    minute_of,
    row_mac,
)

# version -> statements; a store at version N runs N+1 ... in order, each in one transaction
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE rk_audit (seq {serial} PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        " ts {float} NOT NULL, actor TEXT, action TEXT NOT NULL, resource TEXT, status INTEGER,"
        " request_id TEXT, details TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
        "CREATE INDEX rk_audit_ts ON rk_audit (ts)",
        "CREATE INDEX rk_audit_actor ON rk_audit (actor, ts)",
        "CREATE TABLE rk_entries (id TEXT PRIMARY KEY, kind TEXT NOT NULL, ts {float} NOT NULL,"
        " grp TEXT NOT NULL, duration_ms {float}, data TEXT)",
        "CREATE INDEX rk_entries_kind_ts ON rk_entries (kind, ts)",
        "CREATE TABLE rk_buckets (kind TEXT NOT NULL, grp TEXT NOT NULL, minute INTEGER NOT NULL,"
        " count INTEGER NOT NULL, sum_ms {float} NOT NULL, max_ms {float} NOT NULL,"
        " PRIMARY KEY (kind, grp, minute))",
    ),
    2: (
        # small documents other parts keep (privacy jobs, the erasure log), by kind and id
        "CREATE TABLE rk_docs (kind TEXT NOT NULL, id TEXT NOT NULL, key TEXT,"
        " ts {float} NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id))",
        "CREATE INDEX rk_docs_key ON rk_docs (kind, key, ts)",
    ),
    3: (
        # keyed chain: which key wrote a row (NULL: an unkeyed row from before version 3)
        "ALTER TABLE rk_audit ADD COLUMN key_id TEXT",
    ),
    4: (
        # the last seq written before keyed chains (0: none), recorded once: verify refuses
        # an unkeyed row after it ("written without the key"), so a chain rewritten with the
        # public SHA-256 does not pass for an old one. Nothing writes unkeyed rows since
        # version 3, so those a store holds when it gets here predate keyed chains.
        "INSERT INTO rk_meta (key, value) SELECT 'audit_unkeyed_through',"
        " CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM rk_audit WHERE key_id IS NULL",
    ),
}
UNKEYED_THROUGH = "audit_unkeyed_through"  # the rk_meta key of version 4
VERSION = max(MIGRATIONS)


def stored_version(value: Any, store: str) -> int:
    """The schema version rk_meta holds (0: none yet). StoreUnavailable naming `store` and the
    value when it is not a version number: no migration is run on a store whose version is
    unknown, and the service does not write to it."""
    if value is None:
        return 0
    text = value.strip() if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit() and len(text) < 10):
        raise StoreUnavailable(
            f"{store}: rk_meta holds schema_version {value!r}, not a version number: edited, "
            "or not a readykit store; restore it from a backup or point store_url elsewhere"
        )
    return int(text)


PUT_DOC = (
    "INSERT INTO rk_docs (kind, id, key, ts, body) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (kind, id) DO UPDATE SET key = excluded.key, ts = excluded.ts,"
    " body = excluded.body"
)
GET_DOC = "SELECT body FROM rk_docs WHERE kind = ? AND id = ?"
# a lease: taken when absent, or when its stored ts (the lease's end) is not after the last `?`
CLAIM_DOC = (
    "INSERT INTO rk_docs (kind, id, key, ts, body) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (kind, id) DO UPDATE SET key = excluded.key, ts = excluded.ts,"
    " body = excluded.body WHERE rk_docs.ts <= ?"
)
# a lease moved to a new end only while it is still the holder's (its body as the holder wrote
# it): one statement, so another instance's claim in between is never overwritten
RENEW_DOC = "UPDATE rk_docs SET ts = ? WHERE kind = ? AND id = ? AND body = ?"
DELETE_DOCS = "DELETE FROM rk_docs WHERE kind = ? AND ts < ?"


def docs_query(kind: str, key: str | None, since: float | None) -> tuple[str, list[Any]]:
    """SELECT of the bodies of documents of `kind`, oldest first, optionally by key and time."""
    sql = "SELECT body FROM rk_docs WHERE kind = ?"
    params: list[Any] = [kind]
    if key is not None:
        sql += " AND key = ?"
        params.append(key)
    if since is not None:
        sql += " AND ts >= ?"
        params.append(since)
    return sql + " ORDER BY ts, id", params


_JSON = json_encoder(sort_keys=True, compact=False, ascii=True)  # as json.dumps(sort_keys=True)
META = "CREATE TABLE IF NOT EXISTS rk_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

AUDIT_COLUMNS = (
    "seq, id, ts, actor, action, resource, status, request_id, details, prev_hash, hash, key_id"
)
# seq is given, not generated: the chain's numbers are contiguous, so a gap is a deleted row
INSERT_AUDIT = (
    "INSERT INTO rk_audit (seq, id, ts, actor, action, resource, status, request_id, details,"
    " prev_hash, hash, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# a page from a seq on (inclusive): the first page starts at store.SEQ_MIN, below any row
AUDIT_PAGE = f"SELECT {AUDIT_COLUMNS} FROM rk_audit WHERE seq >= ? ORDER BY seq LIMIT ?"  # noqa: S608
UPSERT_BUCKET = (
    "INSERT INTO rk_buckets (kind, grp, minute, count, sum_ms, max_ms) VALUES (?, ?, ?, 1, ?, ?)"
    " ON CONFLICT (kind, grp, minute) DO UPDATE SET count = rk_buckets.count + 1,"
    " sum_ms = rk_buckets.sum_ms + excluded.sum_ms,"
    " max_ms = CASE WHEN excluded.max_ms > rk_buckets.max_ms THEN excluded.max_ms"
    " ELSE rk_buckets.max_ms END"
)
LAST_LINK = "SELECT seq, hash FROM rk_audit ORDER BY seq DESC LIMIT 1"
# PostgreSQL, a batch of audit rows in one statement (one round trip, its own transaction),
# chained after the head this process wrote last ($13 the chain lock, $14/$15 the head): the
# chain lock is taken before any row goes in, and nothing is inserted unless that head is still
# the newest row. A writer that got in after the statement's snapshot was taken inserted the
# same seq: the statement fails on the primary key and the caller takes the locked path.
APPEND_AUDIT_PG = (
    "INSERT INTO rk_audit (seq, id, ts, actor, action, resource, status, request_id, details,"
    " prev_hash, hash, key_id)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::text[], $5::text[],"
    " $6::text[], $7::integer[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])"
    " WHERE (SELECT pg_advisory_xact_lock($13::bigint)) IS NOT NULL"
    " AND (SELECT ROW(seq, hash) FROM rk_audit ORDER BY seq DESC LIMIT 1)"
    " = ROW($14::bigint, $15::text)"
)
INSERT_ENTRY = (
    "INSERT INTO rk_entries (id, kind, ts, grp, duration_ms, data) VALUES (?, ?, ?, ?, ?, ?)"
)


def existing_ids_sql(table: str, count: int) -> str:
    """SELECT of the ids among `count` placeholders already stored in `table`."""
    assert table in ("rk_audit", "rk_entries")
    return f"SELECT id FROM {table} WHERE id IN ({', '.join('?' * count)})"  # noqa: S608


def plan(
    events: Sequence[dict[str, Any]],
    known_audit: set[str],
    known_entries: set[str],
    prev: Head | None,
    key: ChainKey | None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows a batch adds: audit rows chained after `prev`, entries, bucket updates.

    Ids already stored (or repeated within the batch) are skipped, so a replay adds nothing.
    """
    prev_seq, prev_hash = (prev.seq, prev.hash) if prev is not None else (0, GENESIS)
    audits: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    buckets: list[tuple[Any, ...]] = []
    seen_audit, seen_entries = set(known_audit), set(known_entries)
    for event in events:
        if event["kind"] == AUDIT:
            if event["id"] in seen_audit:
                continue
            seen_audit.add(event["id"])
            if key is None:
                raise ConfigurationError(
                    "writing audit events needs the audit key (READYKIT_AUDIT_KEY or its key file)"
                )
            prev_seq += 1
            row = audit_row(event, prev_seq, prev_hash, key)
            prev_hash = row[10]
            audits.append(row)
        elif event["id"] not in seen_entries:
            seen_entries.add(event["id"])
            entry, bucket = entry_rows(event)
            entries.append(entry)
            buckets.append(bucket)
    return audits, entries, buckets


def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2` ..."""
    count = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


def audit_row(event: dict[str, Any], seq: int, prev_hash: str, key: ChainKey) -> tuple[Any, ...]:
    """The INSERT_AUDIT parameters of an audit event at `seq`, chained after `prev_hash`."""
    get = event.get
    kid = key.id
    linked = [
        seq, event["id"], float(event["ts"]), get("actor"), event["action"], get("resource"),
        get("status"), get("request_id"), _JSON(get("details")), prev_hash, kid,
    ]  # fmt: skip
    mac = row_mac(key, linked)
    return (*linked[:10], mac, kid)


def event_row(event: dict[str, Any]) -> tuple[Any, ...]:
    """An audit event as `Store.audit` returns it, back as its stored row (AUDIT_COLUMNS)."""
    return (
        event["seq"], event["id"], event["ts"], event["actor"], event["action"],
        event["resource"], event["status"], event["request_id"], _JSON(event["details"]),
        event["prev_hash"], event["hash"], event.get("key_id"),
    )  # fmt: skip


def audit_event(row: Sequence[Any]) -> dict[str, Any]:
    """An audit event as read back (columns in AUDIT_COLUMNS order), hashes included.

    A row whose details are not JSON (edited in the database) is read with `details` None and
    `unreadable` saying so, not raised: the rows around it are still read.
    """
    seq, id_, ts, actor, action, resource, status, request_id, details, prev, hash_, kid = row
    try:
        parsed = json.loads(details) if details is not None else None
    except (TypeError, ValueError, RecursionError):  # a number, a BLOB, text, deep nesting
        event = audit_event((*row[:8], None, *row[9:]))
        event["unreadable"] = "its details are not JSON"
        return event
    return {
        "seq": seq,
        "id": id_,
        "kind": AUDIT,
        "ts": ts,
        "actor": actor,
        "action": action,
        "resource": resource,
        "status": status,
        "request_id": request_id,
        "details": parsed,
        "prev_hash": prev,
        "hash": hash_,
        "key_id": kid,
    }


def entry_rows(event: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """INSERT_ENTRY and UPSERT_BUCKET parameters of an APM event."""
    duration = float(event.get("duration_ms") or 0.0)
    data = _JSON(event.get("data") or {})
    entry = (event["id"], event["kind"], float(event["ts"]), event["group"], duration, data)
    bucket = (event["kind"], event["group"], minute_of(float(event["ts"])), duration, duration)
    return entry, bucket


def entry_event(row: Sequence[Any]) -> dict[str, Any]:
    """An APM entry as read back: id, kind, ts, group, duration_ms, data."""
    id_, kind, ts, grp, duration, data = row
    return {
        "id": id_,
        "kind": kind,
        "ts": ts,
        "group": grp,
        "duration_ms": duration,
        "data": json.loads(data) if data else {},
    }


def entries_query(kind: str, since: float | None, limit: int | None) -> tuple[str, list[Any]]:
    """SELECT of one kind of entries, newest first, as `Store.entries` is asked."""
    sql = "SELECT id, kind, ts, grp, duration_ms, data FROM rk_entries WHERE kind = ?"
    params: list[Any] = [kind]
    if since is not None:
        sql += " AND ts >= ?"
        params.append(since)
    sql += " ORDER BY ts DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def audit_query(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """SELECT of audit events in sequence order, filtered as `Store.audit` is asked."""
    since, until = filters.get("since"), filters.get("until")
    limit, offset = filters.get("limit"), filters.get("offset", 0)
    where: list[str] = []
    params: list[Any] = []
    for column in ("actor", "action", "resource"):
        value = filters.get(column)
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts < ?")
        params.append(until)
    sql = f"SELECT {AUDIT_COLUMNS} FROM rk_audit"  # noqa: S608 - columns are constants
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq"
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        params.extend((limit if limit is not None else 2**62, offset))
    return sql, params
