"""The access log: one event per request, from the request's record."""

from __future__ import annotations

import logging
from typing import Any

from readykit.logging.setup import json_lane
from readykit.record import RequestRecord

# what the client chose; method is an HTTP token, route a template from the app's code
_CLIENT_SENT = ("path", "user_agent", "request_id")


class AccessLog:
    """Recorder that logs `request` with method, route, path, status, duration and sizes.

    INFO for 1xx-3xx, WARNING for 4xx, ERROR for 5xx.
    """

    def __init__(self, logger_name: str = "readykit.access") -> None:
        self._name = logger_name
        self._logger = logging.getLogger(logger_name)
        self._log: Any = None  # structlog's logger, got at the first use of the slow lane

    def __call__(self, record: RequestRecord) -> None:
        status = record.status
        level = (
            logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        )
        if not self._logger.isEnabledFor(level):
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
        lane = json_lane()
        if lane is not None:
            lane.emit(level, self._name, {**event, "event": "request"}, scan=_CLIENT_SENT)
        else:
            if self._log is None:
                import structlog  # only where the JSON lane is not configured

                self._log = structlog.get_logger(self._name)
            self._log.log(level, "request", **event)
