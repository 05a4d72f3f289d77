"""Streaming compression: zstd (default), gzip, or none — chunk in, chunk out.

Decompressors raise ValueError on corrupt or truncated input, whatever the library.
"""

from __future__ import annotations

import zlib
from typing import Protocol

COMPRESSIONS = ("zstd", "gzip", "none")


class Transform(Protocol):
    """A streaming byte transform: feed chunks to `update`, then call `finish` once."""

    def update(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class Identity:
    """No compression."""

    def update(self, data: bytes) -> bytes:
        """Pass `data` through."""
        return data

    def finish(self) -> bytes:
        """Nothing buffered."""
        return b""


class _Zlib:
    def __init__(self, compress: bool) -> None:
        # wbits 31: the gzip container, readable with `gunzip`.
        self._c = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
        self._d = None if compress else zlib.decompressobj(31)

    def update(self, data: bytes) -> bytes:
        if self._c is not None:
            return self._c.compress(data)
        assert self._d is not None
        try:
            return self._d.decompress(data)
        except zlib.error as exc:
            raise ValueError(str(exc)) from exc

    def finish(self) -> bytes:
        if self._c is not None:
            return self._c.flush()
        assert self._d is not None
        tail = self._d.flush()
        if not self._d.eof:
            raise ValueError("gzip stream is truncated")
        return tail


class _Zstd:
    def __init__(self, compress: bool) -> None:
        import zstandard

        self._c = zstandard.ZstdCompressor(level=3).compressobj() if compress else None
        self._d = None if compress else zstandard.ZstdDecompressor().decompressobj()

    def update(self, data: bytes) -> bytes:
        if self._c is not None:
            return self._c.compress(data)
        assert self._d is not None
        if not data:
            return b""  # zstandard refuses any call, even an empty one, after the frame ended
        import zstandard

        try:
            return bytes(self._d.decompress(data))
        except zstandard.ZstdError as exc:
            raise ValueError(str(exc)) from exc

    def finish(self) -> bytes:
        if self._c is not None:
            return self._c.flush()
        assert self._d is not None
        if not self._d.eof:
            raise ValueError("zstd stream is truncated")
        return b""


def compressor(name: str) -> Transform:
    """A compressing transform for `name` (one of COMPRESSIONS)."""
    return _make(name, compress=True)


def decompressor(name: str) -> Transform:
    """The matching decompressing transform."""
    return _make(name, compress=False)


def _make(name: str, compress: bool) -> Transform:
    if name == "zstd":
        return _Zstd(compress)
    if name == "gzip":
        return _Zlib(compress)
    if name == "none":
        return Identity()
    raise ValueError(f"unknown compression {name!r}")
