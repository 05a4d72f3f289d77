"""A minimal HTTP/1.1 keep-alive GET client on asyncio streams, for the plain-URL fast path.

Measured on loopback it sends about six times more requests per core than aiohttp (see
bench/README.md), which is what lets one generator core outrun the server it measures.
It handles Content-Length, chunked and close-delimited bodies; anything else (HTTPS, methods
with bodies, scenarios) goes through aiohttp.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
# bodies are discarded as they arrive, never kept: up to this length in one read (the common
# case, no per-chunk overhead), longer ones (a 10 GiB Content-Length) in pieces of this size
READ_AT_ONCE = 64 * 1024


class RawHTTPError(Exception):
    """A request failed; `kind` is the error kind it is counted under."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = False

    def close(self) -> None:
        self.writer.close()

    def usable(self) -> bool:
        """Whether an idle connection may carry another request: a server that closed it
        while it sat idle (no `Connection: close`, just a FIN) left its reader at EOF."""
        return not (self.reader.at_eof() or self.writer.transport.is_closing())

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """Send `request`, read the whole response; its status and whether to keep the line.

        `received` tells afterwards whether any byte of the response arrived (a request that
        failed before then on a reused connection may never have reached the server)."""
        self.received = False
        self.writer.write(request)
        reader = self.reader
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            self.received = True
            lines = head.split(b"\r\n")
            status_line = lines[0].split(b" ", 2)
            if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
                raise ValueError("not an HTTP/1.x response")
            status = int(status_line[1])
            # 1xx interim responses (100 Continue, 103 Early Hints) have no body and are
            # followed by the final response on the same connection; 101 is final
            if not (100 <= status < 200 and status != 101):
                break
        keep = status_line[0] == b"HTTP/1.1" and status != 101
        length = -1
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                v = value.strip().lower()
                keep = v != b"close" and (keep or v == b"keep-alive")
        if status < 200 or status in (204, 304):
            # never a body, whatever Content-Length or Transfer-Encoding say (RFC 9112 6.3)
            return status, keep
        if chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers
                    break
                await _discard(reader, size + 2)
        elif length >= 0:
            if length:
                await _discard(reader, length)
        else:
            # delimited by the server closing the connection
            while await reader.read(READ_AT_ONCE):
                pass
            keep = False
        return status, keep


async def _discard(reader: asyncio.StreamReader, length: int) -> None:
    """Read `length` body bytes and drop them, holding at most `READ_AT_ONCE` at a time."""
    if length <= READ_AT_ONCE:
        await reader.readexactly(length)
        return
    last = b""
    while length > 0:
        chunk = await reader.read(min(length, READ_AT_ONCE))
        if not chunk:
            raise asyncio.IncompleteReadError(last, length)  # `last`: a body had begun
        last = chunk
        length -= len(chunk)


class Pool:
    """Keep-alive connections to one URL, reused last-in first-out."""

    def __init__(self, url: str, user_agent: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.request = (
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"User-Agent: {user_agent}\r\nAccept: */*\r\n\r\n"
        ).encode("latin-1")
        self.idle: list[_Connection] = []

    @staticmethod
    def supports(url: str) -> bool:
        """Whether the fast path can serve `url` (plain http only)."""
        return urlsplit(url).scheme == "http"

    async def _open(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        except OSError as exc:
            raise RawHTTPError("connect") from exc
        return _Connection(reader, writer)

    def _idle(self) -> _Connection | None:
        """The most recently used idle connection the server has not closed, if any."""
        while self.idle:
            conn = self.idle.pop()
            if conn.usable():
                return conn
            conn.close()
        return None

    async def get(self, timeout_s: float) -> int:
        """GET the URL once; the status. Raises RawHTTPError with the error kind."""
        try:
            async with asyncio.timeout(timeout_s):
                conn = self._idle()
                reused = conn is not None
                if conn is None:
                    conn = await self._open()
                try:
                    status, keep = await conn.exchange(self.request)
                except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
                    conn.close()
                    if not reused or conn.received:
                        raise
                    # the server closed a reused keep-alive connection before any of the
                    # response came (it may never have seen the request): retry once, fresh
                    conn = await self._open()
                    try:
                        status, keep = await conn.exchange(self.request)
                    except BaseException:
                        conn.close()
                        raise
                except BaseException:
                    conn.close()
                    raise
        except TimeoutError as exc:
            raise RawHTTPError("timeout") from exc
        except asyncio.IncompleteReadError as exc:
            raise RawHTTPError("disconnected") from exc
        except (asyncio.LimitOverrunError, ValueError) as exc:
            raise RawHTTPError("protocol") from exc
        except ConnectionError as exc:
            raise RawHTTPError("connection_reset") from exc
        except OSError as exc:
            raise RawHTTPError("connection_reset") from exc
        if keep:
            self.idle.append(conn)
        else:
            conn.close()
        return status

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self.idle:
            conn.close()
        self.idle.clear()
