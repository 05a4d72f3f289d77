"""What a service finds wrong with its store at startup is one line naming the variable: a store
that cannot be opened names READYKIT_STORE_URL (with the driver's reason, unmangled), and a
store whose audit chain is behind the checkpoint of the last run is said, counted and keeps the
service unready."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.records import StoreUnavailable, _reason
from readykit.testing import asgi_request, lifespan
from support import kit_writes

pytestmark = pytest.mark.anyio


async def hello(scope: object, receive: object, send: object) -> None:
    raise AssertionError("only the kit's own routes are asked")


def behind_total(kit: ReadyKit) -> float | None:
    return kit.metrics.registry.get_sample_value("readykit_audit_anchor_behind_total")


def ready_after_startup(kit: ReadyKit) -> tuple[int, str]:
    """Start the kit's app, ask /health/ready, shut it down: the status and the body."""
    app = kit.wrap(hello)  # type: ignore[arg-type]

    async def ask() -> tuple[int, str]:
        async with lifespan(app):
            ready = await asgi_request(app, "GET", "/health/ready")
        return ready.status, ready.body.decode()

    return asyncio.run(ask())


@pytest.mark.parametrize("loss", ["cut", "replaced"])
def test_a_store_behind_its_checkpoint_is_said_counted_and_not_ready(
    loss: str, state: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit_writes(5)
    checkpoint = state / "audit-head.json"
    db = tmp_path / "records.db"
    if loss == "cut":  # the newest acknowledged events deleted (or an older backup restored)
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM rk_audit WHERE seq > 2")
        said = f"ends at seq 2, behind the checkpoint {checkpoint} (seq 5)"
    else:  # another, empty database than the one the checkpoint was written for
        db.unlink()
        said = f"is empty, behind the checkpoint {checkpoint} (seq 5)"
    kit = ReadyKit(Settings(configure_logging=False, access_log=False))
    with caplog.at_level(logging.ERROR, logger="readykit.records"):
        status, body = ready_after_startup(kit)
    (line,) = [r.getMessage() for r in caplog.records if str(checkpoint) in r.getMessage()]
    assert said in line
    assert "readykit audit verify" in line
    assert behind_total(kit) == 1
    assert status == 503
    assert "audit-anchor" in body


def test_a_store_that_reaches_its_checkpoint_is_ready(
    state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit_writes(3)
    kit = ReadyKit(Settings(configure_logging=False, access_log=False))
    with caplog.at_level(logging.ERROR, logger="readykit.records"):
        status, body = ready_after_startup(kit)
    assert status == 200, body
    assert behind_total(kit) == 0
    assert not [r for r in caplog.records if "checkpoint" in r.getMessage()]


@pytest.mark.parametrize(
    ("database", "said"),
    [
        ("postgres@{host}/readykit_no_such_database", 'database "readykit_no_such_database"'),
        ("readykit_no_such_role@{host}/postgres", 'role "readykit_no_such_role"'),
    ],
)
async def test_a_store_refused_at_login_names_the_store_url(
    database: str, said: str, postgres_server_url: str, tmp_path: Path
) -> None:
    host = postgres_server_url.split("@", 1)[1].split("/", 1)[0]
    url = "postgresql://" + database.format(host=host)
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            store_url=url,
            audit_key="test-audit-key-0123456789",
            spill_path=str(tmp_path / "spill.jsonl"),
        )
    )
    with pytest.raises(ConfigurationError) as refused:
        await kit.startup()
    line = str(refused.value)
    assert line.startswith("store_url: the store is unreachable"), line
    assert said in line
    assert "fix READYKIT_STORE_URL" in line
    assert "\n" not in line


async def test_a_file_that_is_no_database_is_named_as_sqlite_says_it(tmp_path: Path) -> None:
    # a path whose name is a secret's key (passwd, password) once read as `passwd: <secret>`
    # to the redaction, and SQLite's reason became [REDACTED]
    not_a_db = tmp_path / "passwd"
    not_a_db.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 64)
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            store_url=f"sqlite:///{not_a_db}",
            audit_key="test-audit-key-0123456789",
            spill_path=str(tmp_path / "spill.jsonl"),
        )
    )
    with pytest.raises(ConfigurationError) as refused:
        await kit.startup()
    from readykit.logging.redact import redact_text

    line = redact_text(str(refused.value))  # as the log's redaction shows it
    assert f"cannot open sqlite:///{not_a_db} (file is not a database)" in line
    assert "[REDACTED]" not in line


def test_the_reason_shows_the_driver_with_the_password_redacted() -> None:
    url = "postgresql://app:hunter2-secret@db.internal:5432/records"
    exc = StoreUnavailable(f"cannot connect to {url}: password authentication failed")
    reason = _reason(exc, url)
    assert "hunter2-secret" not in reason
    assert "password authentication failed" in reason
    assert "db.internal:5432/records" in reason
    bare = ValueError("invalid DSN: hunter2-secret is not a host")
    assert "hunter2-secret" not in _reason(bare, url)


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"spill_path": ""}, "spill_path: '' names no file"),
        ({"spill_path": "."}, "spill_path: '.' names no file"),
        ({"spill_path": "/"}, "spill_path: '/' names no file"),
        ({"spill_path": "state/"}, "spill_path: 'state/' names no file"),
        ({"store_url": "sqlite:///:memory:"}, "store_url: 'sqlite:///:memory:' is a database in"),
        (
            {"store_url": "postgresql://u:hunter2-secret@127.0.0.1:notaport/db"},
            "store_url: the store URL 'postgresql://u:[REDACTED]@127.0.0.1:notaport/db' cannot "
            "be parsed: the port 'notaport'",
        ),
        ({"store_url": "postgresql://h1:5432,h2:x/db"}, "store_url: the store URL"),
        ({"records_retention_days": 1e300}, "records_retention_days: Input should be less than"),
        ({"records_flush_s": 1e-9}, "records_flush_s: Input should be greater than or equal to"),
        ({"stall_threshold_ms": 1e-9}, "stall_threshold_ms: Input should be greater than or e"),
        ({"slow_request_routes": {"^/r": -5}}, "slow_request_routes: [^/r] Input should be gre"),
        ({"slow_request_routes": {"^/r": 0}}, "slow_request_routes: [^/r] Input should be gre"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_variable(
    settings: dict[str, object], line: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings(**settings)  # type: ignore[arg-type]
    message = str(refused.value)
    assert message.startswith(
        "READYKIT_" + line.upper()[: line.index(":")] + line[line.index(":") :]
    )
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "settings",
    [
        {"store_url": "postgresql://h1:5432,h2:5433/db"},
        {"store_url": "postgresql://[::1]:5432/db"},
        {"store_url": "postgresql://u:p@host/db"},
        {"spill_path": "spill.jsonl"},
        {"records_flush_s": 0.01, "stall_threshold_ms": 10, "records_retention_days": 36500},
    ],
)
def test_settings_at_the_edges_are_taken(settings: dict[str, object]) -> None:
    Settings(**settings)  # type: ignore[arg-type]


def test_a_spill_path_under_a_file_names_the_spill_path(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            store_url=f"sqlite:///{tmp_path}/r.db",
            spill_path=str(a_file / "spill.jsonl"),
        )
    )
    assert kit.config_error is not None
    line = str(kit.config_error)
    assert line.startswith("READYKIT_SPILL_PATH: audit key file"), line
    assert "Not a directory" in line
    assert "READYKIT_AUDIT_KEY" in line
    missing = ReadyKit(
        Settings(
            configure_logging=False,
            store_url=f"sqlite:///{tmp_path}/r.db",
            spill_path="/proc/readykit-nope/spill.jsonl",
        )
    )
    assert str(missing.config_error).startswith(
        "READYKIT_SPILL_PATH: cannot create the audit key file /proc/readykit-nope/audit.key"
    )


def test_the_checkpoint_never_moves_onto_a_chain_found_behind_it(
    state: Path, tmp_path: Path
) -> None:
    """The writer goes on (the service must not stop auditing), but the checkpoint keeps the
    head it saved: moving it onto the cut chain made `audit verify` say intact, and the next
    start ready."""
    kit_writes(5)
    checkpoint = state / "audit-head.json"
    saved = checkpoint.read_text()
    with sqlite3.connect(tmp_path / "records.db") as conn:
        conn.execute("DELETE FROM rk_audit WHERE seq > 2")
    kit_writes(10)  # seq 3-12 chained after the cut
    assert checkpoint.read_text() == saved
    status, body = ready_after_startup(ReadyKit(Settings(configure_logging=False)))
    assert status == 503, body  # still: an operator accounts for it
