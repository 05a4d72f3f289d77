"""Reading a small request body in the kit's own endpoints, never past a bound."""

from __future__ import annotations

from readykit._types import Receive


class BodyTooLarge(Exception):
    """The body passed the limit; nothing more was read."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; raises BodyTooLarge as soon as it passes `limit` bytes."""
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client left
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge
        more = message.get("more_body", False)
    return body
