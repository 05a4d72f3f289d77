"""The records' section of the settings: the store, audit and APM (see readykit.section)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr

from readykit.errors import ConfigurationError
from readykit.records.anchor import check_audit_key
from readykit.records.store import store_scheme
from readykit.section import Positive, Section, parsed_by, regexes

# the floors of the timing settings: below them a value costs a core or floods the store
MIN_FLUSH_S = 0.01  # the writer's timer: 1e-9 turned it into a busy loop
MIN_STALL_MS = 10.0  # the watchdog's tick: 1e-9 recorded every turn of the event loop
MAX_RETENTION_DAYS = 36500  # a century: past it the cut-off is no time the store can hold


def _audit_key(key: SecretStr | None) -> None:
    if key is not None:
        check_audit_key(key.get_secret_value())


def names_a_file(setting: str, example: str) -> Callable[[str], None]:
    """A parser: the path names a file (not empty, `.`, `/` or a directory's trailing `/`);
    the files kept beside it (the audit key, the checkpoint) are named after it."""

    def check(value: str) -> None:
        if not value.strip() or value.endswith("/") or PurePath(value).name in ("", ".", ".."):
            raise ConfigurationError(
                f"{setting}: {value!r} names no file; give a file's path, e.g. {example}"
            )

    return check


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
    spill_path: Annotated[
        str, AfterValidator(parsed_by(names_a_file("spill_path", ".readykit/spill.jsonl")))
    ] = Field(
        default=".readykit/spill.jsonl",
        description="Append-only file for records the store could not take yet.",
    )
    records_batch_size: int = Field(default=500, gt=0, description="Events per write to the store.")
    records_flush_s: float = Field(
        default=1.0,
        ge=MIN_FLUSH_S,
        allow_inf_nan=False,
        description=f"Longest time an event waits before it is written (at least {MIN_FLUSH_S}).",
    )
    records_max_queue: int = Field(
        default=100_000,
        gt=0,
        description="Events held in memory before the full-queue policy applies.",
    )
    records_full_policy: Literal["spill", "drop"] = Field(
        default="spill", description="When the queue is full: spill to disk, or drop (counted)."
    )
    records_retention_days: float = Field(
        default=7.0,
        gt=0,
        le=MAX_RETENTION_DAYS,
        allow_inf_nan=False,
        description=f"Days APM entries are kept (at most {MAX_RETENTION_DAYS}).",
    )
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
        default=1000.0,
        gt=0,
        allow_inf_nan=False,
        description="Requests slower than this are recorded.",
    )
    slow_request_routes: Annotated[
        dict[str, Positive], AfterValidator(regexes("slow_request_routes"))
    ] = Field(
        default_factory=dict,
        description="Per-route thresholds in ms (above 0) by regex on the route: "
        '{"^/reports": 5000}.',
    )
    slow_query_ms: float = Field(
        default=100.0,
        gt=0,
        allow_inf_nan=False,
        description="SQL statements slower than this are recorded.",
    )
    stall_threshold_ms: float = Field(
        default=100.0,
        ge=MIN_STALL_MS,
        allow_inf_nan=False,
        description=f"Event-loop stalls longer than this are recorded (at least {MIN_STALL_MS:g}).",
    )
    apm_sample_rate: float = Field(
        default=1.0,
        gt=0,
        le=1.0,
        allow_inf_nan=False,
        description="Share of slow requests recorded (1.0 = all).",
    )
