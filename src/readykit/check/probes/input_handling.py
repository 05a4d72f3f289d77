"""input-handling: malformed JSON, wrong content types, oversized bodies, bad parameter types
and TRACE against the endpoints found. Any 5xx, stack trace or debug output is a blocker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from readykit.check.client import RequestFailed, Response
from readykit.check.discovery import Endpoint
from readykit.check.finding import Evidence, Finding, excerpt
from readykit.check.fingerprints import debug_output
from readykit.check.probe import ProbeContext

MAX_ENDPOINTS = 12
OVERSIZE_BYTES = 2 * 1024 * 1024
OVERSIZE_ENDPOINTS = 2
TRACE_ENDPOINTS = 3
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Attempt:
    """One malformed request and what it is meant to test."""

    name: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None


def _body_methods(ctx: ProbeContext, endpoint: Endpoint) -> bool:
    """Every mutating endpoint, declared body or not (PUT/PATCH only with --allow-writes)."""
    return endpoint.method == "POST" or (
        endpoint.method in ("PUT", "PATCH") and ctx.options.allow_writes
    )


def attempts(ctx: ProbeContext, endpoints: list[Endpoint]) -> Iterator[Attempt]:
    """The malformed requests for `endpoints`, cheapest first."""
    for e in endpoints:
        if _body_methods(ctx, e):
            path = e.concrete()
            yield Attempt("malformed JSON", e.method, path, JSON, b'{"readykit": ')
            yield Attempt("JSON of the wrong shape", e.method, path, JSON, b"[null, 1, []]")
            yield Attempt("a non-finite number (1e999)", e.method, path, JSON, b'{"n": 1e999}')
            yield Attempt(
                "a huge number", e.method, path, JSON, b'{"n": 123456789012345678901234567890}'
            )
            yield Attempt("a lone surrogate", e.method, path, JSON, b'{"s": "\\ud800"}')
            yield Attempt(
                "wrong content type", e.method, path, {"Content-Type": "text/plain"}, b"a=1&b"
            )
        if e.method == "GET":
            typed = [
                p for p in e.params if p.location == "query" and p.type in ("integer", "number")
            ]
            if any(p.location == "path" and p.type in ("integer", "number") for p in e.params):
                yield Attempt("a path parameter of the wrong type", "GET", e.concrete(bad=True), {})
            queried = [p for p in e.params if p.location == "query"]
            if typed:
                query = "&".join(f"{p.name}=not-a-number" for p in typed)
                yield Attempt(
                    "query parameters of the wrong type", "GET", f"{e.concrete()}?{query}", {}
                )
            if queried:
                query = "&".join(
                    f"{p.name}={'1e999' if i % 2 else '99999999999999999999999'}"
                    for i, p in enumerate(queried)
                )
                yield Attempt(
                    "huge numbers in query parameters", "GET", f"{e.concrete()}?{query}", {}
                )
                yield Attempt(
                    "a lone surrogate in query parameters",
                    "GET",
                    f"{e.concrete()}?{queried[0].name}=%ED%A0%80",
                    {},
                )
            if not typed and not e.has_path_params:
                yield Attempt(
                    "odd query parameters",
                    "GET",
                    f"{e.concrete()}?limit=-1&page=%00&id[]=x&offset=99999999999999999999",
                    {},
                )


def _problem(resp: Response, attempt: Attempt) -> Finding | None:
    ev = Evidence(
        resp.describe() + (f"\n{excerpt(attempt.body, 80)}" if attempt.body else ""),
        resp.status,
        excerpt(resp.body),
    )
    shown = debug_output(resp.body)
    if shown is not None:
        return Finding(
            "input-handling.stack-trace",
            "input-handling",
            "blocker",
            f"{attempt.name} to {attempt.method} {attempt.path} shows a {shown} "
            f"(status {resp.status})",
            ev,
            "Turn debug off and answer bad input with a 4xx problem+json that says what is wrong.",
        )
    if resp.status >= 500:
        return Finding(
            "input-handling.server-error",
            "input-handling",
            "blocker",
            f"{attempt.name} to {attempt.method} {attempt.path} causes a {resp.status}",
            ev,
            "Validate input before using it and answer a client's mistake with a 4xx.",
        )
    return None


async def _oversize(ctx: ProbeContext, endpoint: Endpoint) -> None:
    body = b'{"readykit":"' + b"x" * OVERSIZE_BYTES + b'"}'
    attempt = Attempt(
        f"a {OVERSIZE_BYTES // 1024} KiB body", endpoint.method, endpoint.concrete(), JSON, body
    )
    try:
        resp = await ctx.budget.request(attempt.method, attempt.path, headers=JSON, data=body)
    except RequestFailed:
        return  # the server cut the upload short: that is a limit doing its job
    finding = _problem(resp, attempt)
    if finding is not None:
        ctx.add(finding)
    elif resp.status not in (413, 429):  # a 429 came before the body mattered: untested
        ctx.add(
            Finding(
                "input-handling.no-body-limit",
                "input-handling",
                "warning",
                f"{attempt.method} {attempt.path} read a {OVERSIZE_BYTES // 1024} KiB body "
                f"(answered {resp.status}, not 413)",
                Evidence(resp.describe(), resp.status, excerpt(resp.body, 200)),
                "Refuse bodies above what the API needs with 413 before reading them "
                "(ReadyKit: max_body_bytes).",
            )
        )


async def _trace(ctx: ProbeContext, path: str) -> None:
    marker = "readykit-check-trace"
    resp = await ctx.budget.try_request("TRACE", path, headers={"X-Readykit-Trace": marker})
    if resp is None:
        return
    finding = _problem(resp, Attempt("TRACE", "TRACE", path, {}))
    if finding is not None:
        ctx.add(finding)
    elif 200 <= resp.status < 300 and marker in resp.text:
        ctx.add(
            Finding(
                "input-handling.trace-enabled",
                "input-handling",
                "warning",
                f"TRACE {path} echoes the request back",
                Evidence(resp.describe(), resp.status, excerpt(resp.body, 200)),
                "Disable TRACE: answer it with 405.",
            )
        )


async def run(ctx: ProbeContext) -> None:
    """Send each malformed request once; report server errors and leaked internals."""
    endpoints = [e for e in ctx.target.endpoints if e.method in ("GET", "POST", "PUT", "PATCH")]
    endpoints = endpoints[:MAX_ENDPOINTS]
    sent = 0
    # one finding per kind of bad input; the other endpoints it broke are counted in the title
    found: dict[tuple[str, str], tuple[Finding, list[str]]] = {}
    for attempt in attempts(ctx, endpoints):
        if not ctx.budget.has():
            break
        resp = await ctx.budget.try_request(
            attempt.method, attempt.path, headers=attempt.headers, data=attempt.body
        )
        sent += 1
        finding = _problem(resp, attempt) if resp is not None else None
        if finding is not None:
            key = (finding.check, attempt.name)
            if key in found:
                found[key][1].append(f"{attempt.method} {attempt.path}")
            else:
                found[key] = (finding, [])
    for finding, others in found.values():
        if others:
            finding = replace(finding, title=f"{finding.title} (and {len(others)} more endpoints)")
        ctx.add(finding)
    for endpoint in [e for e in endpoints if _body_methods(ctx, e)][:OVERSIZE_ENDPOINTS]:
        if ctx.budget.has():
            await _oversize(ctx, endpoint)
            sent += 1
    trace_paths = dict.fromkeys([e.concrete() for e in endpoints] or ["/"])
    for path in list(trace_paths)[:TRACE_ENDPOINTS]:
        if ctx.budget.has():
            await _trace(ctx, path)
            sent += 1
    if not ctx.findings:
        ctx.add(
            Finding(
                "input-handling.ok",
                "input-handling",
                "info",
                f"{sent} malformed requests to {len(endpoints)} endpoints: no 5xx, nothing leaked",
                Evidence(f"x{sent}", None, ""),
            )
        )
