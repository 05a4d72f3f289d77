"""The access log: one event per request, from the request's record.

With the JSON pipeline (the fast lane of `readykit.logging.setup`) the line is assembled from
parts, each escaped as `json` escapes it: what a client sent (path, user agent, request id) is
redacted first, and the redacted, escaped text of paths, agents, methods and routes is
remembered, since they repeat from request to request. The line is the one the pipeline renders
for the same event (`tests/logs/test_pipeline.py` pins them equal); when structlog context
variables are bound or a trace is active, the event goes through the lane's general path.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any

from readykit.logging.redact import Remembered, redact_text
from readykit.logging.setup import json_lane
from readykit.record import RequestRecord

# what the client chose (a method too: a server like h11 passes any token); route is a
# template from the app's code
_CLIENT_SENT = ("method", "path", "user_agent", "request_id")
_LEVELS = {logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}


class _Escaped(Remembered):
    """Text as a JSON string literal, redacted first when a client sent it; remembered (within
    bounds: a scan of distinct or long paths must not grow memory)."""

    def __init__(self, *, redact: bool) -> None:
        super().__init__(_escaped_redacted if redact else encode_basestring_ascii)

    def __call__(self, text: str | None) -> str:
        if text is None:
            return "null"
        return self.known.get(text) or super().__call__(text)  # a literal is never ""


def _escaped_redacted(text: str) -> str:
    return encode_basestring_ascii(redact_text(text))


class _Clock:
    """The event's timestamp as the pipeline writes it (ISO 8601, UTC, microseconds, `Z`);
    the date and time to the second formatted once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self.second = second
        micro = int((now - second) * 1_000_000)
        # as datetime.isoformat() (structlog's "iso"): no fraction at all on a whole second
        return f"{self.prefix}.{micro:06d}Z" if micro else f"{self.prefix}Z"


class AccessLog:
    """Recorder that logs `request` with method, route, path, status, duration and sizes.

    INFO for 1xx-3xx, WARNING for 4xx, ERROR for 5xx.
    """

    def __init__(self, logger_name: str = "readykit.access") -> None:
        self._name = logger_name
        self._logger = logging.getLogger(logger_name)
        self._log: Any = None  # structlog's logger, got at the first use of the slow lane
        self._tail = f', "event": "request", "logger": {encode_basestring_ascii(logger_name)}, '
        self._token = _Escaped(redact=False)  # route: a template from the app's code
        self._client_sent = _Escaped(redact=True)  # method, path, user agent
        self._clock = _Clock()

    def __call__(self, record: RequestRecord) -> None:
        status = record.status
        level = (
            logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        )
        if not self._logger.isEnabledFor(level):
            return
        lane = json_lane()
        context = lane.context() if lane is not None else None
        if lane is not None and context is None:
            lane.write(self._line(record, level), "request")
            return
        event = {
            "method": record.method,
            "route": record.route,
            "path": record.path,
            "status": status,
            "duration_ms": round(record.duration_s * 1000, 3),
            "bytes": record.response_bytes,
            "request_bytes": record.request_bytes,
            "client": record.client,
            "user_agent": record.user_agent,
            "request_id": record.request_id,
        }
        if lane is not None:
            lane.emit(
                level, self._name, {**event, "event": "request"}, scan=_CLIENT_SENT, context=context
            )
        else:
            if self._log is None:
                import structlog  # only where the JSON lane is not configured

                self._log = structlog.get_logger(self._name)
            self._log.log(level, "request", **event)

    def _line(self, record: RequestRecord, level: int) -> str:
        """The event as the pipeline's JSON line, assembled from escaped parts."""
        token, sent = self._token, self._client_sent
        client = record.client
        return (
            f'{{"method": {sent(record.method)}, "route": {token(record.route)}, '
            f'"path": {sent(record.path)}, "status": {record.status}, '
            f'"duration_ms": {round(record.duration_s * 1000, 3)!r}, '
            f'"bytes": {record.response_bytes}, "request_bytes": {record.request_bytes}, '
            f'"client": {"null" if client is None else encode_basestring_ascii(client)}, '
            f'"user_agent": {sent(record.user_agent)}, '
            f'"request_id": {encode_basestring_ascii(redact_text(record.request_id))}'
            f'{self._tail}"level": "{_LEVELS.get(level) or logging.getLevelName(level).lower()}", '
            f'"timestamp": "{self._clock()}"}}\n'
        )
