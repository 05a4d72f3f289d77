"""`backup create`: snapshot the database, count and fingerprint it, pack it, publish a manifest."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from readykit.backup import auth, postgres, sqlite
from readykit.backup.atomic import atomic_file
from readykit.backup.config import RepoConfig
from readykit.backup.crypto import KEY_ENV, Key
from readykit.backup.datafile import Packed, pack, read_blocks
from readykit.backup.errors import BackupError, ToolFailure
from readykit.backup.manifest import Manifest, new_id
from readykit.backup.repo import Access, Repository
from readykit.backup.source import SQLITE, Source


def create_backup(
    repo: Repository,
    source: Source,
    compression: str,
    key: Key | None,
    now: datetime | None = None,
    encrypt: bool | None = None,
) -> Manifest:
    """Take one backup of `source` into `repo`; the backup is listed only once it is complete.

    `encrypt` defaults to "when there is a key"; a key with `encrypt=False` stores the data
    unencrypted but still authenticates the manifest. The caller holds the repository lock.
    """
    encrypt = key is not None if encrypt is None else encrypt
    access = _access(repo, key, encrypt)
    previous = repo.tip(access)
    started = time.monotonic()
    created = now or datetime.now(UTC)
    backup_id = new_id(created)
    data_path = repo.data_path_for(backup_id)
    sealing_key = key if access.config.encrypted else None
    repo.remove_abandoned_scratch()
    with repo.scratch() as scratch:
        if source.kind == SQLITE:
            assert source.path is not None
            copy = scratch / "snapshot.db"
            tools = sqlite.snapshot(source.path, copy)
            tables, schema = sqlite.inspect(copy)
            with copy.open("rb") as handle:
                packed = _write(repo, data_path, read_blocks(handle), compression, sealing_key)
        else:
            with postgres.snapshot_session(source) as (conn, snapshot):
                major = postgres.server_major(conn)
                pg_dump, dump_version = postgres.find_binary("pg_dump", major)
                server_version = str(conn.execute("SHOW server_version").fetchone()[0])
                tools = {"pg_dump": dump_version, "postgresql_server": server_version}
                tables, schema = postgres.inspect(conn)
                blocks = postgres.dump_blocks(pg_dump, source, snapshot, scratch / "pg_dump.err")
                packed = _write(repo, data_path, blocks, compression, sealing_key)
    manifest = Manifest(
        id=backup_id,
        created_at=created.astimezone(UTC).isoformat(),
        source={"kind": source.kind, "url": source.redacted_url},
        data_file=data_path.name,
        size=packed.size,
        raw_size=packed.raw_size,
        sha256=packed.sha256,
        compression=compression,
        encryption=sealing_key.describe() if sealing_key is not None else None,
        tools={**_library_versions(compression, key), **tools},
        tables=tables,
        schema_fingerprint=schema,
        repository=access.config.id,
        sequence=previous.sequence + 1 if previous else 1,
        previous=previous.link if previous else None,
        duration_s=round(time.monotonic() - started, 3),
    )
    if access.config.authenticated:
        assert key is not None
        manifest.mac = auth.sign(key, "manifest", manifest.body())
    try:
        repo.write_manifest(manifest)
    except OSError as exc:
        data_path.unlink(missing_ok=True)
        raise ToolFailure(f"cannot write backup to {repo.root}: {exc.strerror or exc}") from exc
    try:
        repo.advance_head(access, manifest)
    except OSError as exc:
        # The backup is complete and chains to the old head, so readers still find it.
        raise ToolFailure(
            f"backup {manifest.id} written, but {repo.config_path} could not be updated: "
            f"{exc.strerror or exc}"
        ) from exc
    return manifest


def _access(repo: Repository, key: Key | None, encrypt: bool) -> Access:
    """The repository's config (written now for a new repository), checked for a downgrade."""
    config = repo.read_config()
    if config is None:
        if encrypt and key is None:
            raise BackupError(f"no encryption key: give --key-file or set {KEY_ENV}")
        config = RepoConfig.new(encrypted=encrypt, key_id=key.id if key else None)
        try:
            repo.write_config(config, key)
        except OSError as exc:
            raise ToolFailure(f"cannot write to {repo.root}: {exc.strerror or exc}") from exc
        return repo.check_access(config, key)
    if config.encrypted and not encrypt:
        raise BackupError(
            f"repository {repo.root} is encrypted: refusing an unencrypted backup (downgrade)"
            + ("" if key else f"; give --key-file or set {KEY_ENV}")
        )
    if not config.authenticated and key is not None:
        raise BackupError(
            f"repository {repo.root} was made without a key, so its backups cannot be "
            f"authenticated: use a new repository for keyed backups, or unset the key"
        )
    if config.authenticated and not config.encrypted and encrypt:
        raise BackupError(
            f"repository {repo.root} holds unencrypted (authenticated) backups: pass "
            "--unencrypted, or use a new repository for encrypted ones"
        )
    return repo.check_access(config, key)


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
