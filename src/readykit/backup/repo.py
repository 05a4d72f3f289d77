"""A backup repository: a directory of `<id>.rkb` data files and `<id>.json` manifests."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from readykit.backup.atomic import TEMP_PREFIX, fsync_dir, write_atomic
from readykit.backup.errors import BackupError, ToolFailure, UnknownBackupError
from readykit.backup.manifest import DATA_SUFFIX, MANIFEST_SUFFIX, Manifest, Verification

STALE_AFTER_S = 24 * 3600


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

    def manifests(self) -> list[Manifest]:
        """Every complete backup, oldest first; unreadable manifests go to `problems`."""
        found: list[Manifest] = []
        self.problems = []
        for path in sorted(self.root.glob(f"*{MANIFEST_SUFFIX}")):
            if path.name.startswith("."):
                continue
            try:
                manifest = Manifest.from_json(path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.problems.append(f"{path.name}: unreadable manifest ({exc})")
                continue
            if not self.data_path(manifest).is_file():
                self.problems.append(f"{path.name}: data file {manifest.data_file} is missing")
                continue
            found.append(manifest)
        found.sort(key=lambda m: (m.created, m.id))
        return found

    def resolve(self, ref: str) -> Manifest:
        """The backup with id `ref`, or the newest one for `latest`."""
        manifests = self.manifests()
        if ref == "latest":
            if not manifests:
                raise UnknownBackupError(f"no backups in {self.root}")
            return manifests[-1]
        for manifest in manifests:
            if manifest.id == ref:
                return manifest
        raise UnknownBackupError(f"no backup with id {ref!r} in {self.root}")

    def data_path(self, manifest: Manifest) -> Path:
        """Where `manifest`'s data file lives."""
        return self.root / Path(manifest.data_file).name

    def manifest_path(self, backup_id: str) -> Path:
        """Where the manifest of `backup_id` lives."""
        return self.root / f"{backup_id}{MANIFEST_SUFFIX}"

    def data_path_for(self, backup_id: str) -> Path:
        """Where the data file of a new backup goes."""
        return self.root / f"{backup_id}{DATA_SUFFIX}"

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private (0700) temporary directory inside the repository, removed afterwards."""
        path = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.root))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def write_manifest(self, manifest: Manifest) -> None:
        """Publish (or update) `manifest` atomically; this is what makes a backup visible."""
        write_atomic(self.manifest_path(manifest.id), manifest.to_json())

    def record_verification(self, manifest: Manifest, verification: Verification) -> None:
        """Store the outcome of `verify` in the backup's manifest."""
        manifest.verification = verification
        self.write_manifest(manifest)

    def delete(self, manifest: Manifest) -> None:
        """Remove a backup, manifest first: a crash never leaves a listed backup without data."""
        self.manifest_path(manifest.id).unlink(missing_ok=True)
        self.data_path(manifest).unlink(missing_ok=True)
        fsync_dir(self.root)

    def remove_stale(self, now: float | None = None) -> list[str]:
        """Delete day-old temp files and data files without a manifest; return their names."""
        cutoff = (time.time() if now is None else now) - STALE_AFTER_S
        listed = {self.data_path(m).name for m in self.manifests()}
        removed: list[str] = []
        for path in self.root.iterdir():
            orphan = path.suffix == DATA_SUFFIX and path.name not in listed
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
