"""Reading files that someone may have replaced: only a regular file, never more than it may hold.

A FIFO planted in a file's place must not hang the read (and whatever lock the reader holds), nor
a symlink to /dev/zero fill memory. Used for backup data files and manifests, the audit key file
and the audit checkpoint.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


class UnsafeFile(OSError):
    """What is at the path is no file to read: not a regular file, or larger than it may be.

    `strerror` says which; `errno` is 0 (nothing failed: the file is not what it should be).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(0, reason)


def open_regular(path: Path) -> BinaryIO:
    """The regular file at `path`, open for reading; UnsafeFile if it is anything else (opened
    without blocking, so a FIFO answers at once). OSError as usual if it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFile("not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_small_file(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at `path`; UnsafeFile past `limit` bytes or when it is no
    regular file."""
    with open_regular(path) as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise UnsafeFile(f"larger than {limit} bytes")
    return raw
