"""Structured logs: one structlog pipeline, request ids on every event, redaction, access log."""

from readykit.logging.access import AccessLog
from readykit.logging.redact import Redactor, redact_text
from readykit.logging.setup import configure_logging, flush_access_log

__all__ = ["AccessLog", "Redactor", "configure_logging", "flush_access_log", "redact_text"]
