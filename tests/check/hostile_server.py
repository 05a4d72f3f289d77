"""A raw asyncio HTTP/1.1 server on 127.0.0.1 for hostile-target tests: whatever bytes a test's
`answer(method, path, headers)` returns are sent as they are, framing and all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

Answer = Callable[[str, str, dict[str, str]], bytes]


def response(
    status: int, body: bytes | str = b"", headers: Iterable[str] = (), reason: str = "X"
) -> bytes:
    """One response with a Content-Length; `headers` as raw `Name: value` lines."""
    data = body.encode() if isinstance(body, str) else body
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(data)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + data


@asynccontextmanager
async def hostile(answer: Answer) -> AsyncIterator[str]:
    """Serve `answer` on a free loopback port in the running loop; yield the base URL."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                lines = head.split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                writer.write(answer(method, path, headers))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, limit=4 * 1024 * 1024)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
