"""A backup repository: `<id>.rkb` data files, `<id>.json` manifests, a `config` and a `lock`.

Reading a backup to restore or verify it goes through `access` (the key against the config)
and `resolve` (the manifest against its MAC and the chain); nothing falls back silently.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from readykit.backup import auth
from readykit.backup.atomic import TEMP_PREFIX, fsync_dir, write_atomic
from readykit.backup.config import CONFIG_NAME, Head, RepoConfig
from readykit.backup.crypto import KEY_ENV, Key
from readykit.backup.errors import (
    BackupError,
    IntegrityFailure,
    ToolFailure,
    UnknownBackupError,
    WrongKeyError,
)
from readykit.backup.lock import (
    private_scratch_parent,
    remove_abandoned,
    repository_lock,
    scratch_dir,
)
from readykit.backup.manifest import (
    DATA_SUFFIX,
    ID_EXAMPLE,
    MANIFEST_SUFFIX,
    Manifest,
    Verification,
    is_backup_id,
)
from readykit.files import read_small_file

STALE_AFTER_S = 24 * 3600
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few kB; its table counts are the most of it


@dataclass(frozen=True)
class Access:
    """A repository config checked against the key given (authenticated when it has a key)."""

    config: RepoConfig
    key: Key | None


class Repository:
    """Backups in one directory; only a backup whose manifest was written is ever listed."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.problems: list[str] = []

    @classmethod
    def open(cls, root: Path, create: bool = False) -> Repository:
        """The repository at `root`; `create` makes the directory (mode 0700) if missing."""
        if create:
            try:
                root.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise ToolFailure(f"cannot create repository {root}: {exc.strerror}") from exc
        if not root.is_dir():
            raise BackupError(f"no backup repository at {root}")
        return cls(root)

    # -- paths: every one built from a validated id, so none can leave the repository

    def manifest_path(self, backup_id: str) -> Path:
        """Where the manifest of `backup_id` lives."""
        return self._inside(backup_id, MANIFEST_SUFFIX)

    def data_path_for(self, backup_id: str) -> Path:
        """Where the data file of backup `backup_id` lives."""
        return self._inside(backup_id, DATA_SUFFIX)

    def data_path(self, manifest: Manifest) -> Path:
        """Where `manifest`'s data file lives."""
        return self.data_path_for(manifest.id)

    @property
    def config_path(self) -> Path:
        """The repository config file."""
        return self.root / CONFIG_NAME

    def _inside(self, backup_id: str, suffix: str) -> Path:
        if not is_backup_id(backup_id):
            raise BackupError(f"{backup_id!r} is not a backup id (like {ID_EXAMPLE})")
        path = self.root / f"{backup_id}{suffix}"
        if path.parent != self.root:  # pragma: no cover - the id pattern already rules this out
            raise BackupError(f"{backup_id!r} would leave the repository")
        return path

    # -- reading

    def _manifest_files(self) -> list[Path]:
        return sorted(
            p for p in self.root.glob(f"*{MANIFEST_SUFFIX}") if not p.name.startswith(".")
        )

    def read_manifest(self, path: Path) -> Manifest:
        """Parse the manifest at `path`; a bad one is an IntegrityFailure naming the file."""
        try:
            return Manifest.from_json(read_small_file(path, MAX_MANIFEST_BYTES), path.name)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise IntegrityFailure(
                "manifest", f"{path}: unreadable manifest ({exc.strerror})"
            ) from exc
        except RecursionError as exc:  # JSON nested deeper than any manifest
            raise IntegrityFailure("manifest", f"{path}: unreadable manifest (nested)") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityFailure("manifest", f"{path}: unreadable manifest ({exc})") from exc

    def manifests(self) -> list[Manifest]:
        """Every complete backup, oldest first; unreadable manifests go to `problems`.

        Nothing here is authenticated (no key is needed to list or prune): `resolve` is.
        """
        found: list[Manifest] = []
        self.problems = []
        for path in self._manifest_files():
            try:
                manifest = self.read_manifest(path)
            except FileNotFoundError:
                continue  # removed meanwhile
            except IntegrityFailure as exc:
                self.problems.append(str(exc))
                continue
            if not self.data_path(manifest).is_file():
                self.problems.append(f"{path}: data file {manifest.data_file} is missing")
                continue
            found.append(manifest)
        found.sort(key=lambda m: (m.sequence, m.created, m.id))
        return found

    def read_config(self) -> RepoConfig | None:
        """The repository config, or None for a repository that has never held a backup."""
        path = self.config_path
        try:
            raw = read_small_file(path, MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            if self._manifest_files():
                raise IntegrityFailure(
                    "config",
                    f"{path}: missing, but the repository holds backups (removed, or the "
                    "repository was made by an older readykit): refusing to trust them",
                ) from None
            return None
        except OSError as exc:
            raise IntegrityFailure("config", f"{path}: unreadable ({exc.strerror})") from exc
        try:
            return RepoConfig.from_json(raw)
        except RecursionError as exc:
            raise IntegrityFailure("config", f"{path}: unreadable repository config") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityFailure(
                "config", f"{path}: unreadable repository config ({exc})"
            ) from exc

    def write_config(self, config: RepoConfig, key: Key | None) -> None:
        """Publish `config` atomically, with its MAC when the repository has a key."""
        config.mac = (
            auth.sign(key, "config", config.body()) if config.authenticated and key else None
        )
        write_atomic(self.config_path, config.to_json())

    def access(self, key: Key | None) -> Access:
        """Check `key` against the config: needed, the right one, and the config authentic."""
        config = self.read_config()
        if config is None:
            raise UnknownBackupError(f"no backups in {self.root}")
        return self.check_access(config, key)

    def check_access(self, config: RepoConfig, key: Key | None) -> Access:
        """See `access`."""
        path = self.config_path
        if config.authenticated:
            if key is None:
                what = "encrypted" if config.encrypted else "authenticated with a key"
                raise BackupError(
                    f"repository {self.root} is {what}: give --key-file or set {KEY_ENV}"
                )
            if key.id != config.key_id:
                raise WrongKeyError(
                    f"wrong key: repository {self.root} uses key id {config.key_id}, "
                    f"the key from {key.origin} has id {key.id}"
                )
            if not auth.is_valid(key, "config", config.body(), config.mac):
                raise IntegrityFailure(
                    "config",
                    f"{path}: repository config failed authentication ({auth.ALGORITHM}): "
                    "modified or replaced",
                )
        elif config.mac is not None:
            raise IntegrityFailure(
                "config", f"{path}: carries a MAC but names no key: modified (downgraded?)"
            )
        elif key is not None:
            raise IntegrityFailure(
                "config",
                f"{path}: the repository has no key (its backups are not authenticated) but a "
                "key was given: refusing a possible downgrade (if the repository really was "
                f"made without a key, run without --key-file and with {KEY_ENV} unset)",
            )
        return Access(config, key)

    def authenticate(self, access: Access, manifest: Manifest) -> None:
        """Raise IntegrityFailure naming the manifest file unless it carries a valid MAC (when
        the repository has a key), belongs to this repository and is encrypted exactly when
        the repository is."""
        path = self.manifest_path(manifest.id)
        if access.key is not None and access.config.authenticated:
            if manifest.mac is None:
                raise IntegrityFailure(
                    "manifest",
                    f"{path}: manifest authentication failed: it has no MAC, in a repository "
                    "whose backups all have one (planted or downgraded)",
                )
            if not auth.is_valid(access.key, "manifest", manifest.body(), manifest.mac):
                raise IntegrityFailure(
                    "manifest",
                    f"{path}: manifest authentication failed ({auth.ALGORITHM}): modified, or "
                    "not written with this repository's key",
                )
        self.check_consistent(access.config, manifest)

    def check_consistent(self, config: RepoConfig, manifest: Manifest) -> None:
        """What can be checked without a key: the manifest has a MAC and encryption exactly when
        the config says so, and names this repository. Catches a downgraded config too."""
        path = self.manifest_path(manifest.id)
        if (manifest.mac is not None) != config.authenticated:
            state = "has no MAC" if config.authenticated else "carries a MAC"
            raise IntegrityFailure(
                "manifest",
                f"{path}: manifest authentication failed: it {state} but the repository config "
                f"says {config.describe()} (planted, or a downgraded config)",
            )
        if (manifest.encryption is not None) != config.encrypted:
            state = "is not encrypted" if config.encrypted else "is encrypted"
            raise IntegrityFailure(
                "manifest",
                f"{path}: the backup {state} but the repository config says "
                f"{config.describe()} (downgrade refused)",
            )
        if manifest.repository != config.id:
            raise IntegrityFailure(
                "manifest", f"{path}: belongs to another repository ({manifest.repository})"
            )

    def _authentic(self, access: Access, backup_id: str, role: str) -> Manifest:
        path = self.manifest_path(backup_id)
        try:
            manifest = self.read_manifest(path)
        except FileNotFoundError:
            raise IntegrityFailure(
                "chain", f"{path}: missing, but it is {role}: refusing to use an older backup"
            ) from None
        self.authenticate(access, manifest)
        return manifest

    def tip(self, access: Access) -> Manifest | None:
        """The newest backup: the config's head, extended by any later manifests that chain to
        it (a `create` killed between its manifest and the config). A missing or unreadable head,
        a manifest that contradicts the config, one that does not chain, or an unreadable one
        whose id sorts after the head's fails naming the file — never a silent fallback. Other
        unreadable manifests (older, or not named like a backup) go to `problems`."""
        config = access.config
        self.problems = []
        current: Manifest | None = None
        sequence, link = 0, None
        if config.head is not None:
            head = config.head
            current = self._authentic(
                access, head.id, f"the newest backup (sequence {head.sequence}) per {CONFIG_NAME}"
            )
            if current.sequence != head.sequence or current.link != head.link:
                raise IntegrityFailure(
                    "chain",
                    f"{self.manifest_path(head.id)}: is not the backup the repository config "
                    f"records as newest (sequence {head.sequence}): replaced",
                )
            sequence, link = head.sequence, head.link
        later: list[Manifest] = []
        for path in self._manifest_files():
            try:
                manifest = self.read_manifest(path)
            except FileNotFoundError:
                continue  # removed meanwhile (restore and list take no lock)
            except IntegrityFailure as exc:
                # Ids start with the time (to the second): only one named for the head's second
                # or later could be newer than the head.
                head_time = config.head.id[:16] if config.head else ""
                if is_backup_id(path.stem) and path.stem[:16] >= head_time:
                    raise IntegrityFailure(
                        "chain", f"{exc}: it may be newer than the newest backup, so it stops here"
                    ) from exc
                self.problems.append(str(exc))
                continue
            self.check_consistent(config, manifest)
            if manifest.sequence > sequence:
                later.append(manifest)
        for manifest in sorted(later, key=lambda m: m.sequence):
            self.authenticate(access, manifest)
            if manifest.sequence != sequence + 1 or manifest.previous != link:
                raise IntegrityFailure(
                    "chain",
                    f"{self.manifest_path(manifest.id)}: sequence {manifest.sequence} does not "
                    f"follow the newest backup (sequence {sequence}): planted, or a rollback",
                )
            current, sequence, link = manifest, manifest.sequence, manifest.link
        return current

    def resolve(self, ref: str, access: Access) -> Manifest:
        """The authenticated backup `ref` (an id), or the newest one for `latest`."""
        if ref == "latest":
            newest = self.tip(access)
            if newest is None:
                raise UnknownBackupError(f"no backups in {self.root}")
            return newest
        if not is_backup_id(ref):
            raise UnknownBackupError(
                f"no backup with id {ref!r} in {self.root} (ids look like {ID_EXAMPLE})"
            )
        try:
            manifest = self.read_manifest(self.manifest_path(ref))
        except FileNotFoundError:
            raise UnknownBackupError(f"no backup with id {ref!r} in {self.root}") from None
        self.authenticate(access, manifest)
        return manifest

    # -- writing (callers hold the repository lock)

    def lock(self, command: str) -> contextlib.AbstractContextManager[None]:
        """The repository lock for `command`; a second create/verify/prune fails at once."""
        return repository_lock(self.root, command)

    def scratch(self) -> contextlib.AbstractContextManager[Path]:
        """A private (0700) directory outside the repository (`private_scratch_parent`), removed
        afterwards — and by the next command if this process is killed
        (see `remove_abandoned_scratch`)."""
        return scratch_dir(private_scratch_parent())

    def remove_abandoned_scratch(self) -> list[str]:
        """Delete scratch directories (plaintext!) left by killed processes: in this user's
        private scratch directory, and any left inside the repository by older versions."""
        return remove_abandoned(private_scratch_parent()) + remove_abandoned(self.root)

    def write_manifest(self, manifest: Manifest) -> None:
        """Publish (or update) `manifest` atomically; this is what makes a backup visible."""
        write_atomic(self.manifest_path(manifest.id), manifest.to_json())

    def advance_head(self, access: Access, manifest: Manifest) -> None:
        """Record `manifest` as the newest backup in the config."""
        access.config.head = Head(manifest.sequence, manifest.id, manifest.link)
        self.write_config(access.config, access.key)

    def record_verification(self, manifest: Manifest, verification: Verification) -> None:
        """Store the outcome of `verify` in the backup's manifest."""
        manifest.verification = verification
        if self.manifest_path(manifest.id).exists():  # not one deleted meanwhile
            self.write_manifest(manifest)

    def delete(self, manifest: Manifest) -> None:
        """Remove a backup, manifest first: a crash never leaves a listed backup without data."""
        self.manifest_path(manifest.id).unlink(missing_ok=True)
        self.data_path(manifest).unlink(missing_ok=True)
        fsync_dir(self.root)

    def remove_stale(self, now: float | None = None) -> list[str]:
        """Delete day-old temp files and data files without a manifest; return their names."""
        cutoff = (time.time() if now is None else now) - STALE_AFTER_S
        removed: list[str] = self.remove_abandoned_scratch()
        for path in self.root.iterdir():
            # Orphan: no manifest file at all. A data file whose manifest is unreadable stays.
            orphan = path.suffix == DATA_SUFFIX and not path.with_suffix(MANIFEST_SUFFIX).exists()
            if not (path.name.startswith(TEMP_PREFIX) or orphan):
                continue
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime < cutoff:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    removed.append(path.name)
        return sorted(removed)
