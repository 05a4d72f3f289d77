"""`backup verify`: checksum → decrypt → restore drill into a scratch database → compare."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from readykit.backup import postgres, sqlite
from readykit.backup.crypto import Key
from readykit.backup.datafile import checksum, unpack
from readykit.backup.errors import BackupError, IntegrityFailure, ToolFailure, WrongKeyError
from readykit.backup.manifest import Manifest, Verification
from readykit.backup.repo import Repository
from readykit.backup.source import SQLITE, Source, parse_source

STEPS = ("checksum", "decrypt", "restore", "row_counts", "schema")


@dataclass
class Step:
    """One step of a verify run."""

    name: str
    status: str  # "passed" | "failed" | "skipped"
    detail: str = ""


@dataclass
class Report:
    """The JSON report of `verify`."""

    id: str
    source: str
    ok: bool = True
    failed_step: str | None = None
    steps: list[Step] = field(default_factory=list)
    verified_at: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def message(self) -> str:
        """One line: what failed, or that all passed."""
        if self.ok:
            return f"backup {self.id}: verified ({', '.join(STEPS)} passed)"
        failed = next(s for s in self.steps if s.status == "failed")
        return f"backup {self.id}: verify failed at step {failed.name!r}: {failed.detail}"


def require_key(manifest: Manifest, key: Key | None) -> Key | None:
    """The key to open `manifest`'s data (None when it is not encrypted), checked against the key
    id it records."""
    if manifest.encryption is None:
        return None
    if key is None:
        raise BackupError(
            f"backup {manifest.id} is encrypted: give --key-file or set READYKIT_BACKUP_KEY"
        )
    expected = manifest.encryption.get("key_id")
    if expected and expected != key.id:
        raise WrongKeyError(
            f"wrong key: backup {manifest.id} was encrypted with key id {expected}, "
            f"the key from {key.origin} has id {key.id}"
        )
    return key


def verify_backup(
    repo: Repository, manifest: Manifest, key: Key | None, drill_server: str | None = None
) -> Report:
    """Run every step until the first failure; record the outcome in the manifest.

    `manifest` comes from `Repository.resolve`, so it is authenticated; the caller holds the
    repository lock.
    """
    key = require_key(manifest, key)
    started = time.monotonic()
    report = Report(id=manifest.id, source=manifest.source["url"])
    repo.remove_abandoned_scratch()
    with repo.scratch() as scratch:
        _run(report, manifest, lambda: _checksum(repo, manifest))
        plain = scratch / "restored"
        _run(report, manifest, lambda: _decrypt(repo, manifest, key, plain))
        if manifest.kind == SQLITE:
            _run(report, manifest, lambda: _sqlite_drill(plain, manifest))
        else:
            server = parse_source(drill_server or manifest.source["url"])
            _run(report, manifest, lambda: _postgres_drill(plain, manifest, server))
    for name in STEPS[len(report.steps) :]:
        report.steps.append(Step(name, "skipped"))
    report.verified_at = datetime.now(UTC).isoformat()
    report.duration_s = round(time.monotonic() - started, 3)
    failed = next((s for s in report.steps if s.status == "failed"), None)
    repo.record_verification(
        manifest,
        Verification(
            status="passed" if report.ok else "failed",
            at=report.verified_at,
            failed_step=failed.name if failed else None,
            message=failed.detail if failed else None,
        ),
    )
    return report


def _run(report: Report, manifest: Manifest, step: Callable[[], list[Step]]) -> None:
    if not report.ok:
        return
    try:
        steps = step()
    except IntegrityFailure as exc:
        steps = [Step(_step_name(exc.step), "failed", str(exc))]
    report.steps.extend(steps)
    failed = next((s for s in steps if s.status == "failed"), None)
    if failed is not None:
        report.ok, report.failed_step = False, failed.name


def _step_name(step: str) -> str:
    return "decrypt" if step == "decompress" else step


def _checksum(repo: Repository, manifest: Manifest) -> list[Step]:
    path = repo.data_path(manifest)
    try:
        digest, size = checksum(path, manifest.size)
    except IntegrityFailure as exc:  # no regular file, or larger than the manifest says
        return [Step("checksum", "failed", f"{path}: {exc}")]
    except OSError as exc:
        return [Step("checksum", "failed", f"{path}: unreadable ({exc.strerror})")]
    if size != manifest.size:
        detail = f"{path}: size {size} bytes, manifest says {manifest.size}"
        return [Step("checksum", "failed", detail)]
    if digest != manifest.sha256:
        return [Step("checksum", "failed", f"{path}: sha256 {digest} differs from the manifest")]
    return [Step("checksum", "passed", f"sha256 {digest}")]


def _decrypt(repo: Repository, manifest: Manifest, key: Key | None, plain: Path) -> list[Step]:
    data = repo.data_path(manifest)
    try:
        with plain.open("wb") as out:
            written = unpack(data, out, manifest.compression, key, (manifest.sha256, manifest.size))
    except IntegrityFailure as exc:
        raise IntegrityFailure(exc.step, f"{data}: {exc}") from exc
    except OSError as exc:
        raise ToolFailure(f"cannot write scratch file {plain}: {exc.strerror}") from exc
    if written != manifest.raw_size:
        return [Step("decrypt", "failed", f"{written} bytes, manifest says {manifest.raw_size}")]
    what = "decrypted and decompressed" if key else "decompressed"
    return [Step("decrypt", "passed", f"{what} {written} bytes ({manifest.compression})")]


def _compare(manifest: Manifest, tables: dict[str, int], schema: str) -> list[Step]:
    steps: list[Step] = []
    diffs = [
        f"{name}: {manifest.tables.get(name)} → {tables.get(name)}"
        for name in sorted(set(manifest.tables) | set(tables))
        if manifest.tables.get(name) != tables.get(name)
    ]
    if diffs:
        steps.append(Step("row_counts", "failed", "; ".join(diffs[:5])))
        return steps
    steps.append(Step("row_counts", "passed", f"{len(tables)} tables, {sum(tables.values())} rows"))
    if schema != manifest.schema_fingerprint:
        steps.append(Step("schema", "failed", f"{schema} != {manifest.schema_fingerprint}"))
    else:
        steps.append(Step("schema", "passed", schema))
    return steps


def _sqlite_drill(plain: Path, manifest: Manifest) -> list[Step]:
    problems = sqlite.integrity_problems(plain)
    if problems:
        return [Step("restore", "failed", "PRAGMA integrity_check: " + "; ".join(problems[:3]))]
    tables, schema = sqlite.inspect(plain)
    restored = Step("restore", "passed", "restored copy, PRAGMA integrity_check: ok")
    return [restored, *_compare(manifest, tables, schema)]


def _postgres_drill(plain: Path, manifest: Manifest, server: Source) -> list[Step]:
    with postgres.database_errors(f"PostgreSQL error during the drill on {server.redacted_url}"):
        with postgres.connect(server, autocommit=True) as probe:
            major = postgres.server_major(probe)
        dumped = postgres.major_of(manifest.tools.get("pg_dump", ""))
        pg_restore, _ = postgres.find_binary("pg_restore", max(major, dumped))
        with postgres.scratch_database(server) as made:
            scratch, dropped = made.source, made.dropped
            # Not as a superuser: the restore runs the backup's code (CHECK constraints, index
            # expressions).
            args = ["--no-owner", "--no-privileges"]
            if made.role is not None:
                args.append(f"--role={made.role}")
            try:
                postgres.run_restore(pg_restore, plain, scratch, args)
            except postgres.RestoreFailed as exc:
                return [Step("restore", "failed", f"pg_restore: {exc}")]
            with postgres.connect(scratch) as conn:
                tables, schema = postgres.inspect(conn)
    restored = Step("restore", "passed", f"pg_restore into scratch database {scratch.database}")
    if made.role is not None:
        restored.detail += f" as non-superuser role {made.role}"
    if dropped:
        restored.detail += f" (dropped scratch databases of killed runs: {', '.join(dropped)})"
    return [restored, *_compare(manifest, tables, schema)]
