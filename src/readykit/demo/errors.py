"""Validation errors as problem+json that never echo the input back.

FastAPI's default 422 repeats each bad value, which leaks a mistyped password into the response
and crashes (a 500) on input it cannot re-encode, such as a lone surrogate or `1e999`.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from readykit.problem import PROBLEM_JSON, problem_body


async def validation_problem(request: Request, exc: Exception) -> Response:
    """422 problem+json listing where each error is and what is wrong, without the values."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
         "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]  # fmt: skip
    body = problem_body(422, "The request is not valid; see errors.", errors=errors)
    return Response(body, status_code=422, media_type=PROBLEM_JSON.decode())
