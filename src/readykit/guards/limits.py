"""Body-size and time limits: 413 and 504 problem+json, with per-route overrides.

A declared `Content-Length` over the limit is refused before a byte is read; a body without one
(chunked, or a missing or malformed length) is counted as it arrives and cut off as soon as it
passes the limit, never buffered whole. The time limit runs until the response starts, so a
streamed response, once under way, is not cut.
"""

from __future__ import annotations

from readykit.route_table import RouteTable
from readykit.stage import Answer, Exchange, Headers


def body_too_large(limit: int) -> Answer:
    """The 413 for a body over `limit` bytes (the connection is closed: the rest is unread)."""
    detail = f"The request body is larger than this endpoint accepts ({limit} bytes)."
    return Answer(413, detail, [(b"connection", b"close")])


def timed_out(timeout_s: float) -> Answer:
    """The 504 for a response not started within `timeout_s`."""
    return Answer(504, f"The server did not answer within {timeout_s:g} s; try again later.")


class BodyLimit:
    """Stage: refuses request bodies above `limit` bytes (or the route's own limit) with 413.

    A declared length over the limit is refused here; a body of unknown length is left to the
    kit's layer to count (`Exchange.body_limit`), and cut off as soon as it passes the limit.
    """

    def __init__(self, *, limit: int | None, routes: RouteTable[int] | None = None) -> None:
        self.limit = limit
        self.routes = routes or RouteTable[int]({}, setting="body_limits")

    def request(self, ex: Exchange) -> Answer | None:
        limit = self.routes.value_for(ex.method, ex.path, self.limit) if self.routes else self.limit
        if limit is None:
            return None
        declared, count = ex.body_framing()
        if declared is not None and declared > limit:
            return body_too_large(limit)
        if count:  # else the server delivers at most `declared` bytes, within the limit
            ex.body_limit = limit
        return None

    def response(self, ex: Exchange, status: int, headers: Headers) -> bool:
        return False


class TimeLimit:
    """Stage: a 504 when the app has not started its response within `timeout_s` seconds (the
    kit's layer arms one timer on the event loop per request, `Exchange.timeout_s`)."""

    def __init__(self, *, timeout_s: float | None, routes: RouteTable[float] | None = None) -> None:
        self.timeout_s = timeout_s
        self.routes = routes or RouteTable[float]({}, setting="request_timeouts")

    def request(self, ex: Exchange) -> None:
        ex.timeout_s = (
            self.routes.value_for(ex.method, ex.path, self.timeout_s)
            if self.routes
            else self.timeout_s
        )
        return None

    def response(self, ex: Exchange, status: int, headers: Headers) -> bool:
        return False
