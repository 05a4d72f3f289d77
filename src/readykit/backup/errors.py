"""The backup errors, each tied to the exit code the CLI gives it."""

from __future__ import annotations

from readykit.errors import ReadykitError, VerdictFailed
from readykit.errors import ToolFailure as _ToolFailure


class BackupError(ReadykitError):
    """A mistake the user can fix (bad URL, unknown id, missing key): exit code 2."""


class UnknownBackupError(BackupError):
    """No backup in the repository has the requested id."""


class WrongKeyError(BackupError):
    """The key given is not the key the backup was encrypted with."""


class ToolFailure(_ToolFailure):
    """The environment failed us (database unreachable, pg_dump missing, disk full): exit code 3."""


class IntegrityFailure(VerdictFailed):
    """A backup's bytes are not what its manifest says (checksum, authentication): exit code 1."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


class RepositoryLocked(ToolFailure):
    """Another `create`, `verify` or `prune` holds the repository lock: exit code 3."""
