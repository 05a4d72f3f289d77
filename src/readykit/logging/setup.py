"""One logging pipeline (structlog) for structlog loggers and the stdlib's alike."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import IO, Any

import structlog
from structlog.types import Processor

from readykit.context import current_request_id
from readykit.logging.redact import Redactor
from readykit.settings import Settings

_HANDLER_MARK = "_readykit_handler"
# loggers that install their own handlers (uvicorn, gunicorn): hand their records to ours
_TAKEN_OVER = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access")


def add_request_id(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add the id of the request being served, wherever the event was logged from."""
    if "request_id" not in event_dict:
        request_id = current_request_id()
        if request_id is not None:
            event_dict["request_id"] = request_id
    return event_dict


try:  # OpenTelemetry is optional: trace ids appear only where it is installed and in use
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - depends on the environment
    _otel_trace = None  # type: ignore[assignment]


def add_trace_ids(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add trace_id/span_id of the active OpenTelemetry span, if there is one."""
    if _otel_trace is not None and "trace_id" not in event_dict:
        context = _otel_trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict["trace_id"] = format(context.trace_id, "032x")
            event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def drop_color_message(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """uvicorn passes a coloured copy of its message as an extra; the event has the message."""
    event_dict.pop("color_message", None)
    return event_dict


def _renderer(settings: Settings, stream: IO[str]) -> Processor:
    console = settings.log_format == "console" or (
        settings.log_format == "auto" and stream.isatty()
    )
    if console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer()


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> None:
    """Route structlog and stdlib logging through one redacting pipeline to `stream`.

    JSON lines (a console renderer on a TTY, or as `log_format` says), `request_id` on every
    event logged while a request is served, secrets redacted last, after exceptions have been
    formatted. Safe to call again: it replaces what it installed before.
    """
    stream = stream if stream is not None else sys.stdout
    redactor = Redactor(settings.redact_keys)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_request_id,
        add_trace_ids,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), drop_color_message, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.StackInfoRenderer(),
            redactor,
            _renderer(settings, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _TAKEN_OVER:
        taken = logging.getLogger(name)
        taken.handlers.clear()
        taken.propagate = True
    if settings.access_log:  # ours replaces the server's: one access event per request
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
