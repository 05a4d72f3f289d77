"""Locks on open files (`flock`): the repository lock, and the owner lock of each scratch directory.

Scratch directories live in a private directory of the user outside the repository.

The kernel drops an `flock` when its holder dies, even by SIGKILL, so a lock can never be left
stale: a lock that can be taken belongs to nobody.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from readykit.backup.atomic import TEMP_PREFIX
from readykit.backup.errors import RepositoryLocked, ToolFailure

LOCK_NAME = "lock"
SCRATCH_PREFIX = ".scratch-"
_OWNER = ".owner"


@contextlib.contextmanager
def repository_lock(root: Path, command: str) -> Iterator[None]:
    """Hold `<root>/lock` exclusively; a second holder fails at once, naming the first."""
    path = root / LOCK_NAME
    try:
        # O_NOFOLLOW: a `lock` symlinked elsewhere must not make us truncate another file.
        # O_NONBLOCK: a FIFO planted as `lock` must not hang the open
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        raise ToolFailure(f"cannot open lock file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ToolFailure(f"lock file {path} is not a regular file: remove it")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lines = os.pread(fd, 200, 0).decode(errors="replace").strip().splitlines()
            holder = lines[0] if lines else "another run"  # one line, whatever the file holds
            raise RepositoryLocked(
                f"repository {root} is locked by {holder}: try again when it has finished"
            ) from None
        stamp = f"readykit backup {command} (pid {os.getpid()} on {socket.gethostname()}, "
        stamp += f"since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC)\n"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, stamp.encode(), 0)
        except OSError as exc:  # a full disk, most likely: nothing else could be written either
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            raise ToolFailure(f"cannot write lock file {path}: {exc.strerror} ({name})") from exc
        try:
            yield
        finally:
            # the stamp only names the holder for a second run's message; the flock is the lock
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def private_scratch_parent() -> Path:
    """`<tmp>/readykit-backup-<uid>`: this user's private (0700) directory for scratch space.

    It is outside every repository, so nobody who can merely write to a repository (shared
    storage) can swap a scratch directory for a symlink and receive the plaintext. `<tmp>` is
    Python's temporary directory (`$TMPDIR`, else /tmp). An existing one must be a real
    directory owned by this user and closed to others, or nothing is written into it.
    """
    path = Path(tempfile.gettempdir()) / f"readykit-backup-{os.geteuid()}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ToolFailure(f"cannot create scratch directory {path}: {exc.strerror}") from exc
    info = os.lstat(path)
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.geteuid()
        or stat.S_IMODE(info.st_mode) & 0o077
    ):
        raise ToolFailure(
            f"scratch directory {path} is not a private (0700) directory of this user: remove it"
        )
    return path


@contextlib.contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """A private (0700) directory in `parent`, locked by this process while it exists.

    `parent` must be private to this user (`private_scratch_parent`), never the repository:
    the directory is used by name. It is made under a temporary name and renamed once its owner
    lock is held, so `remove_abandoned` never sees one that is still being set up.
    """
    building = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent))
    fd = os.open(building / _OWNER, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = parent / f"{SCRATCH_PREFIX}{building.name.removeprefix(TEMP_PREFIX)}"
        os.rename(building, path)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)
        shutil.rmtree(building, ignore_errors=True)


def remove_abandoned(parent: Path) -> list[str]:
    """Delete the scratch directories in `parent` whose owner has died; return their names."""
    removed: list[str] = []
    for path in sorted(parent.glob(f"{SCRATCH_PREFIX}*")):
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            fd = os.open(path / _OWNER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            shutil.rmtree(path, ignore_errors=True)  # owner already gone, or never locked
            removed.append(path.name)
            continue
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue  # not one we made (a FIFO would hang a read): leave it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # alive
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        finally:
            os.close(fd)
    return removed
