"""A backup's data file: dump bytes → compress → encrypt → disk, SHA-256 over what is stored."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from readykit.backup.codec import Identity, Transform, compressor, decompressor
from readykit.backup.crypto import Key, Opener, Sealer
from readykit.backup.errors import IntegrityFailure
from readykit.files import UnsafeFile, open_regular

BLOCK = 1 << 20


@dataclass(frozen=True)
class Packed:
    """Sizes and checksum of a data file just written."""

    size: int
    raw_size: int
    sha256: str


def read_blocks(handle: BinaryIO, block: int = BLOCK) -> Iterator[bytes]:
    """`handle`'s content in blocks, never the whole file in memory."""
    while chunk := handle.read(block):
        yield chunk


def _open_regular(path: Path) -> BinaryIO:
    """The regular file at `path`, opened for reading; IntegrityFailure ("checksum") when it is
    anything else: a FIFO planted as the data file must not hang the read (and the repository
    lock with it). Opening fails with OSError as usual (a missing file, say)."""
    try:
        return open_regular(path)
    except UnsafeFile:
        raise IntegrityFailure("checksum", "not a regular file: refusing to read it") from None


def _bounded(handle: BinaryIO, limit: int) -> Iterator[bytes]:
    """`handle`'s blocks; IntegrityFailure ("checksum") past `limit` bytes, the manifest's size,
    so a file grown or swapped for something endless is never read on."""
    size = 0
    while chunk := handle.read(min(BLOCK, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            raise IntegrityFailure("checksum", f"larger than the {limit} bytes the manifest says")
        yield chunk


def pack(blocks: Iterable[bytes], out: BinaryIO, compression: str, key: Key | None) -> Packed:
    """Stream `blocks` through compression and encryption into `out`."""
    comp = compressor(compression)
    enc: Transform = Sealer(key) if key is not None else Identity()
    digest = hashlib.sha256()
    size = raw = 0

    def emit(data: bytes) -> None:
        nonlocal size
        if data:
            digest.update(data)
            out.write(data)
            size += len(data)

    for block in blocks:
        raw += len(block)
        emit(enc.update(comp.update(block)))
    emit(enc.update(comp.finish()))
    emit(enc.finish())
    return Packed(size=size, raw_size=raw, sha256=digest.hexdigest())


def checksum(path: Path, limit: int) -> tuple[str, int]:
    """SHA-256 hex digest and size of the regular file at `path`, read up to `limit` bytes.

    Raises IntegrityFailure when it is larger or no regular file.
    """
    digest = hashlib.sha256()
    size = 0
    with _open_regular(path) as handle:
        for block in _bounded(handle, limit):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def unpack(
    path: Path, out: BinaryIO, compression: str, key: Key | None, expect: tuple[str, int]
) -> int:
    """Decrypt and decompress `path` into `out`; returns the plaintext size.

    `expect` is the manifest's (SHA-256, size) of the data file, checked on the bytes this
    read: a file swapped after an earlier checksum passed is caught here, before the caller
    puts anything in place.
    """
    dec: Transform = Opener(key) if key is not None else Identity()
    comp = decompressor(compression)
    written = 0
    digest = hashlib.sha256()
    size = 0

    def emit(data: bytes) -> None:
        nonlocal written
        if data:
            out.write(data)
            written += len(data)

    try:
        with _open_regular(path) as handle:
            for block in _bounded(handle, expect[1]):
                digest.update(block)
                size += len(block)
                emit(comp.update(dec.update(block)))
        if (digest.hexdigest(), size) != expect:
            raise IntegrityFailure(
                "checksum", "SHA-256 differs from the manifest (the data file changed while read)"
            )
        emit(comp.update(dec.finish()))
        emit(comp.finish())
    except ValueError as exc:
        raise IntegrityFailure("decompress", f"cannot decompress ({compression}): {exc}") from exc
    return written
