"""The audit chain's key and its anchor outside the table.

The key: `READYKIT_AUDIT_KEY`, else a key file created once next to the spill file (mode 0600).
Several instances writing one PostgreSQL chain must share one key.

The anchor: after every flush that added audit rows, the head (seq, hash) goes to a checkpoint
file (only ever forward, under a lock, so several workers on one machine cannot move it back),
to the `readykit_audit_head_seq` metric, and to a log line (at most once per interval, and at
shutdown), so a deleted tail or a recomputed chain shows against a copy the database never held.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from readykit.errors import ConfigurationError
from readykit.files import UnsafeFile, read_small_file
from readykit.records.store import ChainKey, Head

logger = logging.getLogger("readykit.records")

MIN_KEY_CHARS = 16
# what is read of the key file and the checkpoint: both hold a line; more is not theirs
MAX_KEY_BYTES = 4096
MAX_CHECKPOINT_BYTES = 4096


def key_path(spill_path: Path) -> Path:
    """The default audit key file: next to the spill file."""
    return spill_path.with_name("audit.key")


def checkpoint_path(spill_path: Path) -> Path:
    """The checkpoint file of the chain's head: next to the spill file."""
    return spill_path.with_name("audit-head.json")


def check_audit_key(configured: str) -> str:
    """The configured audit key; one too short is refused naming the setting."""
    if len(configured.strip()) < MIN_KEY_CHARS:
        raise ConfigurationError(
            f"audit_key: needs at least {MIN_KEY_CHARS} characters (the same key on every instance)"
        )
    return configured


def load_key(configured: str | None, path: Path, *, create: bool = True) -> ChainKey | None:
    """The configured key, else the key in `path` (created once when `create`), else None.

    `path` is the key file next to the spill file: what keeps it from being read or created
    (a file where its directory should be, a directory that cannot be made) is refused naming
    spill_path, with READYKIT_AUDIT_KEY as the other way out.
    """
    if configured is not None:
        return ChainKey.from_secret(check_audit_key(configured))
    try:
        return read_key_file(path, setting="spill_path")
    except FileNotFoundError:
        if not create:
            return None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # atomic and exclusive: workers starting together agree on one key
    except FileExistsError:
        pass  # another worker created it first: use theirs
    except OSError as exc:
        raise ConfigurationError(
            f"spill_path: cannot create the audit key file {path} next to it "
            f"({exc.strerror or exc}); point READYKIT_SPILL_PATH into a writable directory, "
            "or set READYKIT_AUDIT_KEY"
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return read_key_file(path, setting="spill_path")


def read_key_file(path: Path, *, setting: str | None = None) -> ChainKey:
    """The key in a key file (its text, as READYKIT_AUDIT_KEY would hold it).

    FileNotFoundError when there is none; ConfigurationError naming the file for one that
    cannot be read (a FIFO or a device in its place, too large, not UTF-8, too short), and
    `setting` (the one its path comes from) first when given.
    """
    try:
        text = read_small_file(path, MAX_KEY_BYTES).decode().strip()
    except FileNotFoundError:
        raise
    except UnsafeFile as exc:
        raise ConfigurationError(
            _named(setting, f"audit key file {path}: cannot read it ({exc.strerror or exc})")
        ) from exc
    except OSError as exc:  # ENOTDIR, EACCES, EIO: the directory, not the file's content
        hint = (
            f"; point READYKIT_{setting.upper()} into a readable directory, or set "
            "READYKIT_AUDIT_KEY"
            if setting
            else ""
        )
        raise ConfigurationError(
            _named(setting, f"audit key file {path}: cannot read it ({exc.strerror or exc})") + hint
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            _named(
                setting,
                f"audit key file {path}: not UTF-8 text (byte {exc.start}): edited, or not a "
                "key file",
            )
        ) from exc
    if len(text) < MIN_KEY_CHARS:
        raise ConfigurationError(
            _named(
                setting,
                f"audit key file {path}: needs at least {MIN_KEY_CHARS} characters (empty or cut?)",
            )
        )
    return ChainKey.from_secret(text)


def _named(setting: str | None, message: str) -> str:
    """`message`, after the setting it is about (`spill_path: ...`) when there is one."""
    return f"{setting}: {message}" if setting else message


def write_checkpoint(path: Path, head: Head, key_id: str) -> Head:
    """Move the checkpoint forward to `head` (never back); the head the file now holds.

    A checkpoint that cannot be read (emptied, torn, edited) is logged and replaced by `head`:
    left alone, it would stop every later anchor. The new file is on disk (fsynced, then
    renamed over the old one) before this returns, so a power cut leaves the old or the new.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_NONBLOCK: a FIFO planted as the lock file is an error (ENXIO), not a thread hung
    lock_fd = os.open(
        path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o600
    )
    with os.fdopen(lock_fd, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = read_checkpoint(path)
        except ValueError as exc:
            logger.error(
                "records: %s; replaced by the head %d:%s (a tail cut before now shows only "
                "against the anchor log lines)",
                exc,
                head.seq,
                head.hash,
            )
            current = None
        if current is not None and current[0].seq >= head.seq:
            return current[0]
        tmp = path.with_name(path.name + ".tmp")
        body = {"seq": head.seq, "hash": head.hash, "key_id": key_id, "at": time.time()}
        # made anew (under the lock): whatever was left or planted there (a FIFO, a symlink)
        # is neither opened nor followed
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(json.dumps(body) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return head


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable; best effort (not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_checkpoint(path: Path) -> tuple[Head, str | None] | None:
    """The head in a checkpoint file and the id of the key that wrote it; None if there is no
    file. ValueError, saying what is wrong, if what is there cannot be read as one (a FIFO or
    a device in its place, too large, not JSON, no seq and hash); OSError if the disk fails."""
    try:
        raw = read_small_file(path, MAX_CHECKPOINT_BYTES)
    except FileNotFoundError:
        return None
    except UnsafeFile as exc:  # what was put in the file's place, not the disk failing
        raise ValueError(f"the checkpoint {path} is {exc.strerror}") from exc
    try:
        body = json.loads(raw.decode())
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
        raise ValueError(f"the checkpoint {path} is not JSON ({exc})") from exc
    try:
        key_id = body.get("key_id")
        return Head(int(body["seq"]), str(body["hash"])), str(key_id) if key_id else None
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"the checkpoint {path} has no seq and hash") from exc


def parse_head(text: str) -> Head:
    """`SEQ:HASH` (as the anchor log line prints it) as a Head; ValueError if malformed."""
    seq, sep, hash_ = text.partition(":")
    if not sep or not seq.isdigit() or len(hash_) != 64:
        raise ValueError(f"{text!r} is not SEQ:HASH (e.g. 1042:9f86d0...)")
    return Head(int(seq), hash_)


class Anchor:
    """Anchors the head after each flush: the checkpoint file and a rate-limited log line."""

    def __init__(
        self,
        path: Path,
        key_id: str,
        *,
        log_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.key_id = key_id
        self.log_every_s = log_every_s
        self._clock = clock
        self._logged_at = float("-inf")
        self._written: Head | None = None
        self._logged: Head | None = None

    def write(self, head: Head) -> None:
        """Anchor `head` (run in a worker thread: it touches the disk)."""
        if self._written == head:
            return
        try:
            write_checkpoint(self.path, head, self.key_id)
        except (OSError, ValueError) as exc:  # never let the anchoring task die with it
            logger.error("records: cannot write the audit checkpoint %s (%s)", self.path, exc)
        self._written = head

    def log(self, head: Head, *, force: bool = False) -> None:
        """The anchor log line, at most once per `log_every_s` unless `force`."""
        now = self._clock()
        if head == self._logged or (not force and now - self._logged_at < self.log_every_s):
            return
        self._logged_at, self._logged = now, head
        logger.info(
            "audit chain head %d:%s",
            head.seq,
            head.hash,
            extra={"audit_head_seq": head.seq, "audit_head_hash": head.hash},
        )
