"""rate-limiting: a bounded burst against auth-like routes and a sample of others.

Is a 429 ever returned, and does it say when to come back (`Retry-After`) and what the policy is
(`RateLimit` / `RateLimit-Policy`, draft-ietf-httpapi-ratelimit-headers)?
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from readykit.check.client import Budget, Response
from readykit.check.discovery import Endpoint, Param
from readykit.check.finding import Evidence, Finding, excerpt
from readykit.check.probe import ProbeContext

AUTH_BURST = 30
OTHER_BURST = 40
WAVE = 8
MAX_AUTH_ROUTES = 2
MAX_OTHER_ROUTES = 2
POLICY_HEADERS = ("ratelimit", "ratelimit-policy", "x-ratelimit-limit", "x-ratelimit-remaining")
AUTH_BODY = json.dumps(
    {
        "username": "readykit-check",
        "email": "readykit-check@example.invalid",
        "password": "readykit-check-wrong-password",
    }
).encode()


@dataclass
class Burst:
    """What a burst saw: how many were sent, the first 429, any response with policy headers."""

    method: str
    path: str
    sent: int = 0
    limited: Response | None = None
    advertised: Response | None = None
    server_errors: list[Response] = field(default_factory=list)
    refused: int = 0  # 404/405/415: the route does not take this request at all
    rejected: int = 0  # 400/422: the request was refused as invalid before any attempt
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def untested(self) -> bool:
        """Every answer said the request was not taken (not this route, method or content type,
        or a body the route refused as invalid): no attempt was made, nothing was measured."""
        return self.sent > 0 and self.refused + self.rejected >= self.sent and self.limited is None

    def seen(self) -> str:
        """The statuses answered, most frequent first: `422 x30`."""
        return ", ".join(f"{status} x{n}" for status, n in self.statuses.most_common())


# OAuth 2 (RFC 6749 §5.2) answers wrong client credentials or a wrong grant with 400 and one of
# these: that is an attempt that was made, not a request refused as invalid
_OAUTH_ATTEMPTED = (b'"invalid_grant"', b'"invalid_client"', b'"unauthorized_client"')


def _not_attempted(resp: Response) -> bool:
    """A 400/422 that refused the request itself (validation), not the credentials in it."""
    if resp.status == 422:
        return True
    return resp.status == 400 and not any(code in resp.body for code in _OAUTH_ATTEMPTED)


def _wrong_value(param: Param) -> str | int | float | bool:
    """A made-up credential for a body field: a wrong password for secrets, a made-up address
    for e-mails, the document's own example (a `grant_type` enum) else a placeholder."""
    name = param.name.lower()
    if param.type == "boolean":
        return False
    if param.type in ("integer", "number"):
        # isdecimal, not isdigit: "²" is a digit that int() refuses
        return int(param.example) if param.example and param.example.isdecimal() else 1
    if "pass" in name or "secret" in name:
        return "readykit-check-wrong-password"
    if "mail" in name:
        return "readykit-check@example.invalid"
    return param.example if param.example is not None else "readykit-check"


def auth_request(endpoint: Endpoint) -> tuple[dict[str, str], bytes]:
    """Headers and a wrong-credentials body in the form the endpoint accepts: its form fields
    form-encoded when it is an HTML form (or its OpenAPI body is a form), the required properties
    of its OpenAPI JSON body, else a JSON username/email/password."""
    fields = [p for p in endpoint.params if p.location == "form"]
    if fields:
        values = {p.name: str(_wrong_value(p)) for p in fields}
        body = urlencode(values).encode()
        return {"Content-Type": "application/x-www-form-urlencoded"}, body
    required = [p for p in endpoint.params if p.location == "body"]
    if required:
        doc = {p.name: _wrong_value(p) for p in required}
        return {"Content-Type": "application/json"}, json.dumps(doc).encode()
    return {"Content-Type": "application/json"}, AUTH_BODY


def policy(resp: Response) -> str:
    """The rate-limit headers of a response, one per line."""
    return "\n".join(
        f"{h}: {resp.header(h)}" for h in ("retry-after", *POLICY_HEADERS) if resp.header(h)
    )


async def burst(
    budget: Budget,
    method: str,
    path: str,
    count: int,
    request: tuple[dict[str, str], bytes] | None = None,
) -> Burst:
    """Send up to `count` requests in waves of `WAVE`; stop at the first 429."""
    seen = Burst(method, path)
    headers, raw = request or (
        ({"Content-Type": "application/json"}, AUTH_BODY) if method == "POST" else ({}, b"")
    )
    body = raw or None
    while seen.sent < count and seen.limited is None:
        size = min(WAVE, count - seen.sent, budget.remaining)
        if size <= 0 or budget.time_left() <= 0:
            break
        wave = await asyncio.gather(
            *(budget.try_request(method, path, headers=headers, data=body) for _ in range(size))
        )
        seen.sent += size
        for resp in wave:
            if resp is None:
                continue
            if resp.status == 429 and seen.limited is None:
                seen.limited = resp
            if seen.advertised is None and any(resp.header(h) for h in POLICY_HEADERS):
                seen.advertised = resp
            if resp.status >= 500:
                seen.server_errors.append(resp)
            seen.statuses[resp.status] += 1
            if resp.status in (404, 405, 415):
                seen.refused += 1
            elif _not_attempted(resp):
                seen.rejected += 1
    return seen


def _report(ctx: ProbeContext, seen: Burst, auth: bool) -> None:
    where = f"{seen.method} {seen.path}"
    request = f"{where} x{seen.sent} (waves of {WAVE})"
    if seen.untested:
        if seen.rejected:
            title = (
                f"{where} refused every request as invalid ({seen.seen()}): no attempt was "
                "made, not judged"
            )
            fix = (
                "Describe the route's request body in the OpenAPI document (required "
                "properties) so the check can send a well-formed attempt."
            )
        else:
            title = f"{where} does not take this request ({seen.seen()}): not judged"
            fix = ""
        ctx.add(
            Finding(
                "rate-limiting.not-tested",
                "rate-limiting",
                "info",
                title,
                Evidence(request, None, f"statuses: {seen.seen()}"),
                fix,
            )
        )
        return
    if seen.limited is not None:
        resp = seen.limited
        ev = Evidence(request, 429, policy(resp) or excerpt(resp.body, 200))
        if resp.header("retry-after") is None:
            ctx.add(
                Finding(
                    "rate-limiting.no-retry-after",
                    "rate-limiting",
                    "warning",
                    f"{where} answers 429 without Retry-After",
                    ev,
                    "Send Retry-After with every 429 so clients back off for the right time.",
                )
            )
        elif not any(resp.header(h) for h in POLICY_HEADERS):
            ctx.add(
                Finding(
                    "rate-limiting.no-policy-headers",
                    "rate-limiting",
                    "info",
                    f"{where} answers 429 with Retry-After but no RateLimit headers",
                    ev,
                    "Send RateLimit and RateLimit-Policy so clients can pace themselves.",
                )
            )
        else:
            ctx.add(
                Finding(
                    "rate-limiting.limited",
                    "rate-limiting",
                    "info",
                    f"{where} is rate limited (429 within {seen.sent} requests)",
                    ev,
                )
            )
    elif auth:
        ctx.add(
            Finding(
                "rate-limiting.auth-unlimited",
                "rate-limiting",
                "blocker",
                f"{where} accepted {seen.sent} login attempts without a 429",
                Evidence(request, None, f"no 429 returned; statuses: {seen.seen()}"),
                "Limit auth routes tightly (e.g. 5/minute per client and per account) and "
                "answer 429 with Retry-After.",
            )
        )
    elif seen.advertised is not None:
        ctx.add(
            Finding(
                "rate-limiting.advertised",
                "rate-limiting",
                "info",
                f"{where} advertises a limit not reached by {seen.sent} requests",
                Evidence(request, seen.advertised.status, policy(seen.advertised)),
            )
        )
    else:
        ctx.add(
            Finding(
                "rate-limiting.unlimited",
                "rate-limiting",
                "warning",
                f"{where}: {seen.sent} requests, no 429 and no RateLimit headers",
                Evidence(request, None, f"no 429, no rate-limit headers; statuses: {seen.seen()}"),
                "Set a default per-client limit and advertise it with RateLimit headers.",
            )
        )
    if seen.server_errors:
        first = seen.server_errors[0]
        ctx.add(
            Finding(
                "rate-limiting.server-errors",
                "rate-limiting",
                "warning",
                f"{where}: {len(seen.server_errors)} of {seen.sent} burst requests got a 5xx",
                Evidence(request, first.status, excerpt(first.body, 200)),
                "A small burst should be answered or refused (429), not fail.",
            )
        )


def _auth_routes(endpoints: list[Endpoint]) -> list[Endpoint]:
    posts = [e for e in endpoints if e.auth_like and e.method == "POST"]
    return posts[:MAX_AUTH_ROUTES]


async def run(ctx: ProbeContext) -> None:
    """Burst the auth-like routes, then a sample of the others."""
    ctx.judges_limits = True  # 429s are what this probe looks for
    auth = _auth_routes(ctx.target.endpoints)
    for e in auth:
        seen = await burst(ctx.budget, "POST", e.concrete(), AUTH_BURST, auth_request(e))
        _report(ctx, seen, auth=True)
    if not auth:
        ctx.add(
            Finding(
                "rate-limiting.no-auth-routes",
                "rate-limiting",
                "info",
                "no auth-like routes found to test",
                Evidence(f"endpoints from {ctx.target.source}", None, ""),
            )
        )
    others = [e for e in ctx.target.gets(10) if not e.auth_like][:MAX_OTHER_ROUTES]
    for e in others or [Endpoint("GET", "/")]:
        if not ctx.budget.has():
            break
        _report(ctx, await burst(ctx.budget, "GET", e.concrete(), OTHER_BURST), auth=False)
