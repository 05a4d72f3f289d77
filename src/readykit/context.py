"""The request id: kept or generated per request, bound in a contextvar for logs and records."""

from __future__ import annotations

import re
from contextvars import ContextVar
from random import getrandbits

REQUEST_ID_HEADER = b"x-request-id"
_VALID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("readykit_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context (threadpool and tasks included)."""
    return request_id_var.get()


def accept_request_id(incoming: bytes | None) -> str:
    """Keep a well-formed incoming id (<= 128 chars of [A-Za-z0-9._:-]); otherwise make one.

    A made id is 128 random bits in hex (the shape of a uuid4's hex). Ids need to be unique,
    not secret, so the process PRNG (reseeded after fork) serves: a syscall per request would
    cost more than the rest of the id handling.
    """
    if incoming is not None and _VALID.fullmatch(incoming):
        return incoming.decode("ascii")
    return f"{getrandbits(128):032x}"
