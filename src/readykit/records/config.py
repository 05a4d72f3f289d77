"""The records' section of the settings: the store, audit and APM (see readykit.section)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr

from readykit.records.anchor import check_audit_key
from readykit.records.store import store_scheme
from readykit.section import Section, parsed_by, regexes


def _audit_key(key: SecretStr | None) -> None:
    if key is not None:
        check_audit_key(key.get_secret_value())


class RecordsConfig(Section):
    """readykit.records: where audit and APM records go, how they are batched, what is
    recorded."""

    store_url: Annotated[str, AfterValidator(parsed_by(store_scheme))] = Field(
        default="sqlite:///.readykit/readykit.db",
        description="Where audit and APM records go: sqlite:///path or postgresql://...",
    )
    store_required: bool = Field(
        default=True,
        description="Refuse to start when the store is unreachable; false starts and spills.",
    )
    records: bool = Field(default=True, description="Record audit and APM events at all.")
    spill_path: str = Field(
        default=".readykit/spill.jsonl",
        description="Append-only file for records the store could not take yet.",
    )
    records_batch_size: int = Field(default=500, gt=0, description="Events per write to the store.")
    records_flush_s: float = Field(
        default=1.0, gt=0, description="Longest time an event waits before it is written."
    )
    records_max_queue: int = Field(
        default=100_000,
        gt=0,
        description="Events held in memory before the full-queue policy applies.",
    )
    records_full_policy: Literal["spill", "drop"] = Field(
        default="spill", description="When the queue is full: spill to disk, or drop (counted)."
    )
    records_retention_days: float = Field(default=7.0, gt=0, description="APM entries kept.")
    audit_mutations: bool = Field(
        default=True, description="Audit every POST/PUT/PATCH/DELETE the app answers."
    )
    audit_durability: Literal["commit", "async"] = Field(
        default="commit",
        description="commit: a mutating request's audit event is on disk before its response "
        "completes (group commit); async: written within records_flush_s, after the response.",
    )
    audit_key: Annotated[SecretStr | None, AfterValidator(parsed_by(_audit_key))] = Field(
        default=None,
        description="HMAC key of the audit chain (16+ characters; the same on every instance); "
        "unset: audit.key is created next to spill_path.",
    )
    slow_request_ms: float = Field(
        default=1000.0, gt=0, description="Requests slower than this are recorded."
    )
    slow_request_routes: Annotated[
        dict[str, float], AfterValidator(regexes("slow_request_routes"))
    ] = Field(
        default_factory=dict,
        description='Per-route thresholds by regex on the route: {"^/reports": 5000}.',
    )
    slow_query_ms: float = Field(
        default=100.0, gt=0, description="SQL statements slower than this are recorded."
    )
    stall_threshold_ms: float = Field(
        default=100.0, gt=0, description="Event-loop stalls longer than this are recorded."
    )
    apm_sample_rate: float = Field(
        default=1.0, gt=0, le=1.0, description="Share of slow requests recorded (1.0 = all)."
    )
