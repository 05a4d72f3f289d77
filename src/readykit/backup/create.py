"""`backup create`: snapshot the database, count and fingerprint it, pack it, publish a manifest."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from readykit.backup import postgres, sqlite
from readykit.backup.atomic import atomic_file
from readykit.backup.crypto import Key
from readykit.backup.datafile import Packed, pack, read_blocks
from readykit.backup.errors import ToolFailure
from readykit.backup.manifest import Manifest, new_id
from readykit.backup.repo import Repository
from readykit.backup.source import SQLITE, Source


def create_backup(
    repo: Repository,
    source: Source,
    compression: str,
    key: Key | None,
    now: datetime | None = None,
) -> Manifest:
    """Take one backup of `source` into `repo`; the backup is listed only once it is complete."""
    started = time.monotonic()
    created = now or datetime.now(UTC)
    backup_id = new_id(created)
    data_path = repo.data_path_for(backup_id)
    with repo.scratch() as scratch:
        if source.kind == SQLITE:
            assert source.path is not None
            copy = scratch / "snapshot.db"
            tools = sqlite.snapshot(source.path, copy)
            tables, schema = sqlite.inspect(copy)
            with copy.open("rb") as handle:
                packed = _write(repo, data_path, read_blocks(handle), compression, key)
        else:
            with postgres.snapshot_session(source) as (conn, snapshot):
                major = postgres.server_major(conn)
                pg_dump, dump_version = postgres.find_binary("pg_dump", major)
                server_version = str(conn.execute("SHOW server_version").fetchone()[0])
                tools = {"pg_dump": dump_version, "postgresql_server": server_version}
                tables, schema = postgres.inspect(conn)
                blocks = postgres.dump_blocks(pg_dump, source, snapshot, scratch / "pg_dump.err")
                packed = _write(repo, data_path, blocks, compression, key)
    manifest = Manifest(
        id=backup_id,
        created_at=created.astimezone(UTC).isoformat(),
        source={"kind": source.kind, "url": source.redacted_url},
        data_file=data_path.name,
        size=packed.size,
        raw_size=packed.raw_size,
        sha256=packed.sha256,
        compression=compression,
        encryption=key.describe() if key is not None else None,
        tools={**_library_versions(compression, key), **tools},
        tables=tables,
        schema_fingerprint=schema,
        duration_s=round(time.monotonic() - started, 3),
    )
    try:
        repo.write_manifest(manifest)
    except OSError as exc:
        data_path.unlink(missing_ok=True)
        raise ToolFailure(f"cannot write backup to {repo.root}: {exc.strerror or exc}") from exc
    return manifest


def _write(
    repo: Repository, path: Path, blocks: Iterable[bytes], compression: str, key: Key | None
) -> Packed:
    try:
        with atomic_file(path) as handle:
            return pack(blocks, handle, compression, key)
    except OSError as exc:
        raise ToolFailure(f"cannot write backup to {repo.root}: {exc.strerror or exc}") from exc


def _library_versions(compression: str, key: Key | None) -> dict[str, str]:
    names = ["readykit"]
    if compression == "zstd":
        names.append("zstandard")
    if key is not None:
        names.append("cryptography")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            versions[name] = "unknown"
    return versions
