"""One logging pipeline (structlog) for structlog loggers and the stdlib's alike."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import logging.handlers
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from readykit.context import current_request_id
from readykit.logging.redact import Redactor, redact_text, use_keys

if TYPE_CHECKING:
    from structlog.types import Processor

    from readykit.logging.config import LoggingConfig

# structlog is imported when logging is configured (at startup), not with readykit: importing it
# imports rich too where rich is installed, ~100 ms that `import readykit` need not pay

_HANDLER_MARK = "_readykit_handler"
# loggers that servers and frameworks give console handlers of their own (uvicorn, gunicorn,
# Litestar's app constructor, Django's default LOGGING): those handlers are dropped and the
# records handed to ours, or every line would be printed a second time, unredacted
_TAKEN_OVER = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "gunicorn.error",
    "gunicorn.access",
    "litestar",
    "django",
    "django.server",
    "py.warnings",  # `warnings.warn`, once `captureWarnings` routes it through logging
)
# modules whose handlers a framework puts on the root logger by default (Litestar's queue
# handler, whose listener writes to the console)
_FRAMEWORK_HANDLERS = ("litestar.",)


def _replaced(handler: logging.Handler) -> bool:
    """Whether configuring replaces this handler: ours from before, a framework's own, or one
    writing to the console (stdout/stderr), directly or through a queue's listener (a
    `logging.basicConfig`, Litestar's `LoggingConfig`, Litestar's queue handler on Python
    3.12+). The console is the kit's; files, mail and other handlers are left alone."""
    if getattr(handler, _HANDLER_MARK, False):
        return True
    if type(handler).__module__.startswith(_FRAMEWORK_HANDLERS):
        return True
    if type(handler) is logging.StreamHandler:  # not a FileHandler, nor a capture of tests
        return handler.stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    listener = getattr(handler, "listener", None)
    if isinstance(handler, logging.handlers.QueueHandler) and listener is not None:
        targets = getattr(listener, "handlers", ())
        return bool(targets) and all(_replaced(target) for target in targets)
    return False


def add_request_id(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add the id of the request being served, wherever the event was logged from."""
    if "request_id" not in event_dict:
        request_id = current_request_id()
        if request_id is not None:
            event_dict["request_id"] = request_id
    return event_dict


def add_trace_ids(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add trace_id/span_id of the active OpenTelemetry span, if there is one."""
    # OpenTelemetry is optional: trace ids appear only where it is installed and in use. Read
    # from sys.modules, not imported: an app that traces has imported it before any request
    otel_trace = sys.modules.get("opentelemetry.trace")
    if otel_trace is not None and "trace_id" not in event_dict:
        context = otel_trace.get_current_span().get_span_context()
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


def _foreign_only(processor: Processor) -> Processor:
    """Run `processor` only on stdlib records: structlog events went through it already."""

    def run(
        logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event_dict.get("_from_structlog"):
            return event_dict
        return processor(logger, method_name, event_dict)  # type: ignore[return-value]

    return run


def _renderer(settings: LoggingConfig, stream: IO[str]) -> Processor:
    import structlog

    console = settings.log_format == "console" or (
        settings.log_format == "auto" and stream.isatty()
    )
    if console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer()


_ENCODER = json.JSONEncoder(default=repr)  # one encoder: json.dumps(default=) builds one a call
_NO_FIELDS: dict[str, Any] = {}


class JsonLane:
    """A fast lane into the pipeline for the kit's own per-request events (the access log).

    The same handler, stream, fields and redaction as a structlog event rendered as JSON, without
    the two LogRecords and the processor chain a structlog call costs: at tens of thousands of
    requests a second that chain is most of the kit's per-request cost. A line is encoded and
    written to the stream's buffer when its request has ended (after the response went out);
    the stream is flushed to the OS once per turn of the event loop, so a busy service pays one
    write system call for all the lines of a turn, and a process killed outright loses at most
    that turn's lines (none of a request whose client saw the loop turn after its response).
    """

    def __init__(self, handler: logging.StreamHandler[IO[str]], redactor: Redactor) -> None:
        from structlog.contextvars import get_contextvars

        self._handler = handler
        self._redactor = redactor
        self._bound = get_contextvars
        self._scheduled = False

    def context(self) -> dict[str, Any] | None:
        """What every event carries besides its own fields: structlog's bound context variables
        (redacted) and the active trace's ids; None when there are none (the common case)."""
        fields: dict[str, Any] = {}
        bound = self._bound()
        if bound:
            fields.update(self._redactor.redact(bound))
        add_trace_ids(None, "", fields)
        return fields or None

    def emit(
        self,
        level: int,
        logger_name: str,
        event: dict[str, Any],
        *,
        scan: tuple[str, ...],
        context: dict[str, Any] | None = None,
    ) -> None:
        """Write `event` as one JSON line, as `structlog.get_logger(logger_name)` would (the
        flush comes at the end of the loop's turn).

        Args:
            scan: the keys whose string values can carry a secret (e.g. what a client sent);
                the caller vouches for the others (numbers, templates, validated tokens).
            context: `context()`, when the caller has it already.
        """
        for key in scan:
            value = event.get(key)
            if type(value) is str:
                event[key] = redact_text(value)
        for key, value in (context or self.context() or _NO_FIELDS).items():
            event.setdefault(key, value)
        event["logger"] = logger_name
        event["level"] = logging.getLevelName(level).lower()
        event["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.write(_ENCODER.encode(event) + "\n", event.get("event"))

    def write(self, line: str, event: object) -> None:
        """Write one rendered line (`event` names it if the stream fails); flushed at the end
        of the loop's turn."""
        handler = self._handler
        handler.acquire()
        try:
            handler.stream.write(line)
        except Exception:  # as logging does: a broken stream must not break the request
            handler.handleError(logging.makeLogRecord({"msg": event}))
        finally:
            handler.release()
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop to wait for: flush now
                self.flush()
                return
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Flush the stream (what this turn's lines wrote to its buffer)."""
        self._scheduled = False
        handler = self._handler
        if getattr(handler.stream, "closed", False):  # its owner closed it: nothing to flush
            return
        handler.acquire()
        try:
            handler.flush()
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": "flush"}))
        finally:
            handler.release()


_lane: JsonLane | None = None


def flush_access_log() -> None:
    """Write what the fast lane still holds (at shutdown, and at the interpreter's exit)."""
    if _lane is not None:
        _lane.flush()


def json_lane() -> JsonLane | None:
    """The fast lane, when the pipeline is configured to render JSON; else None."""
    return _lane


def configure_logging(settings: LoggingConfig, *, stream: IO[str] | None = None) -> None:
    """Route structlog and stdlib logging through one redacting pipeline to `stream`.

    JSON lines (a console renderer on a TTY, or as `log_format` says), `request_id` on every
    event logged while a request is served, secrets redacted last, after exceptions have been
    formatted. Safe to call again: it replaces what it installed before.
    """
    import structlog

    stream = stream if stream is not None else sys.stdout
    redactor = Redactor(settings.redact_keys)
    use_keys(settings.redact_keys)  # the fast lane's texts and every other sink too
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_request_id,
        add_trace_ids,
    ]
    # exceptions are formatted before redaction, so secrets in their text are caught too; for
    # structlog events this happens before the hand-off, so any handler sees only redacted data
    finish: list[Processor] = [
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redactor,
    ]
    renderer = _renderer(settings, stream)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), drop_color_message, *shared],
        processors=[
            *(_foreign_only(p) for p in finish),
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    global _lane
    if _lane is not None:
        _lane.flush()  # what the lane it replaces still holds
    else:
        atexit.register(flush_access_log)
    _lane = (
        JsonLane(handler, redactor)
        if isinstance(renderer, structlog.processors.JSONRenderer)
        else None
    )

    root = logging.getLogger()
    for old in [h for h in root.handlers if _replaced(h)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _TAKEN_OVER:
        taken = logging.getLogger(name)
        server = name.startswith(("uvicorn", "gunicorn"))  # all theirs: ours replaces them
        for old in [h for h in taken.handlers if server or _replaced(h)]:
            taken.removeHandler(old)
        if not taken.handlers:  # what it logs reaches ours (Django's mail to ADMINS stays)
            taken.propagate = True
    # a warning's text (`SECRET_KEY=... is insecure`) goes through the redaction too, not
    # straight to stderr
    logging.captureWarnings(True)
    if settings.access_log:  # ours replaces the server's: one access event per request
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

    structlog.configure(
        processors=[
            *shared,
            *finish,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
