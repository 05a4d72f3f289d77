"""The fast-path HTTP/1.1 client: body framings, keep-alive and its failure kinds."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from readykit.load.rawhttp import Pool, RawHTTPError
from support import settle

RESPONSES = {
    b"/len": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 201 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer: t\r\n\r\n",
    b"/close": b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nbye",
    b"/empty": b"HTTP/1.1 204 No Content\r\n\r\n",
    b"/garbage": b"SMTP ready\r\n\r\n",
    # interim 1xx responses come before the final one, on the same connection
    b"/early": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    # 304 and 204 never have a body, whatever Content-Length says
    b"/304cl": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n",
    b"/204cl": b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
}


OPEN: set[asyncio.StreamWriter] = set()
SEEN: dict[asyncio.StreamWriter, int] = {}


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    OPEN.add(writer)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1]
            if path == b"/hang":
                await reader.read()  # until the client gives up and closes
                break
            if path == b"/reset-second":
                # answers once, then resets the kept-alive connection when the next request
                # arrives on it, answering nothing (a server closing after N responses)
                seen = SEEN.get(writer, 0)
                SEEN[writer] = seen + 1
                if seen:
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                writer.write(RESPONSES[b"/len"])
                await writer.drain()
                continue
            writer.write(RESPONSES[path])
            await writer.drain()
            if path in (b"/close", b"/garbage"):
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
    OPEN.discard(writer)


async def _stop(server: asyncio.Server) -> None:
    """Close the listener and every connection still open on the server side."""
    server.close()
    for writer in list(OPEN):
        writer.close()
        await writer.wait_closed()
    await server.wait_closed()
    await settle()  # the client sides see the close before the loop ends


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "status", "kept"),
    [
        ("/len", 200, 1),
        ("/chunked", 201, 1),
        ("/close", 503, 0),
        ("/empty", 204, 1),
        ("/early", 200, 1),
        ("/304cl", 304, 1),
        ("/204cl", 204, 1),
    ],
)
async def test_framings(path: str, status: int, kept: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool(f"http://127.0.0.1:{port}{path}", "test")
    try:
        for _ in range(3):  # reused connections keep working
            assert await pool.get(2.0) == status
        assert len(pool.idle) == kept
    finally:
        pool.close()
        await _stop(server)


@pytest.mark.anyio
async def test_failures_have_kinds() -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(RawHTTPError, match="timeout"):
            await Pool(f"http://127.0.0.1:{port}/hang", "t").get(0.1)
        with pytest.raises(RawHTTPError, match="protocol"):
            await Pool(f"http://127.0.0.1:{port}/garbage", "t").get(1.0)
    finally:
        await _stop(server)
    with pytest.raises(RawHTTPError, match="connect"):
        await Pool(f"http://127.0.0.1:{port}/len", "t").get(1.0)


@pytest.mark.anyio
async def test_interim_responses_are_not_final() -> None:
    """A 103 before the 200 is one request answered once, and the line stays in step."""
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    early = Pool(f"http://127.0.0.1:{port}/early", "t")
    try:
        for _ in range(3):
            assert await early.get(2.0) == 200
        assert len(early.idle) == 1
    finally:
        early.close()
        await _stop(server)


@pytest.mark.anyio
async def test_reset_reused_connection_is_retried() -> None:
    """A server resetting a kept-alive connection before answering costs no error."""
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool(f"http://127.0.0.1:{port}/reset-second", "t")
    try:
        for _ in range(4):
            assert await pool.get(2.0) == 200
    finally:
        pool.close()
        SEEN.clear()
        await _stop(server)


@pytest.mark.anyio
async def test_idle_connection_closed_by_server_is_not_reused() -> None:
    """A kept-alive connection the server closed while idle is dropped, not written to."""
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool(f"http://127.0.0.1:{port}/len", "t")
    try:
        assert await pool.get(2.0) == 200
        first = pool.idle[0]
        for writer in list(OPEN):
            writer.close()
        await settle()  # the client side sees the FIN
        assert await pool.get(2.0) == 200
        assert pool.idle[0] is not first
        assert first.writer.is_closing()
    finally:
        pool.close()
        await _stop(server)
