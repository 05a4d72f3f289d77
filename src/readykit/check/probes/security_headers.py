"""security-headers: graded with the MDN HTTP Observatory's published modifiers and grade table.

API-appropriate: the best CSP for an API is `default-src 'none'; frame-ancestors 'none'`.
Tests that only apply to HTML (subresource integrity) are left out; HSTS and the http→https
redirection are graded only for https targets (the tls probe checks the redirect).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from readykit.check.client import Response
from readykit.check.finding import Evidence, Finding
from readykit.check.probe import ProbeContext

# MDN HTTP Observatory grade table: (lowest score, grade)
GRADES = (
    (100, "A+"),
    (90, "A"),
    (85, "A-"),
    (80, "B+"),
    (70, "B"),
    (65, "B-"),
    (60, "C+"),
    (50, "C"),
    (45, "C-"),
    (40, "D+"),
    (30, "D"),
    (25, "D-"),
    (0, "F"),
)
BLOCKER_BELOW = 50  # a D or F grade blocks; C and better only warn per header
SIX_MONTHS = 15_768_000
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_SAFE_REFERRER = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
_UNSAFE_REFERRER = {"origin", "origin-when-cross-origin", "unsafe-url"}
_SESSION_COOKIE = re.compile(r"(?i)sess|auth|token|sid|login|jwt|remember")


def grade(score: int) -> str:
    """The Observatory letter for a score."""
    return next(letter for low, letter in GRADES if score >= low)


@dataclass(frozen=True)
class Modifier:
    """One Observatory test result: its id, score modifier and the header it judged."""

    test: str
    result: str
    modifier: int
    header: str
    advice: str = ""


def _csp(value: str | None) -> Modifier:
    name = "content-security-policy"
    advice = f"Send `Content-Security-Policy: {API_CSP}` on API responses."
    if value is None:
        return Modifier(name, "csp-not-implemented", -25, "", advice)
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.strip().split()
        if words:
            directives.setdefault(words[0].lower(), [w.lower() for w in words[1:]])
    if not directives:
        return Modifier(name, "csp-header-invalid", -25, value, advice)
    default = directives.get("default-src")
    script = directives.get("script-src", default) or []
    style = directives.get("style-src", default) or []
    if "'unsafe-inline'" in script:
        return Modifier(name, "csp-implemented-with-unsafe-inline", -20, value, advice)
    if any(s in ("http:", "http://*") or s.startswith("http://") for s in script):
        return Modifier(name, "csp-implemented-with-insecure-scheme", -20, value, advice)
    if "'unsafe-eval'" in script:
        return Modifier(name, "csp-implemented-with-unsafe-eval", -10, value, advice)
    if "'unsafe-inline'" in style:
        return Modifier(name, "csp-implemented-with-unsafe-inline-in-style-src-only", 0, value)
    if default == ["'none'"]:
        return Modifier(name, "csp-implemented-with-no-unsafe-default-src-none", 10, value)
    return Modifier(name, "csp-implemented-with-no-unsafe", 5, value, advice)


def _xfo(value: str | None, csp: str | None) -> Modifier:
    name = "x-frame-options"
    if csp and re.search(r"(?i)(^|;)\s*frame-ancestors\s", csp):
        return Modifier(name, "x-frame-options-implemented-via-csp", 5, csp)
    advice = "Add `frame-ancestors 'none'` to the CSP (or `X-Frame-Options: DENY`)."
    if value is None:
        return Modifier(name, "x-frame-options-not-implemented", -20, "", advice)
    if value.strip().upper() in ("DENY", "SAMEORIGIN"):
        return Modifier(name, "x-frame-options-sameorigin-or-deny", 0, value)
    if value.strip().upper().startswith("ALLOW-FROM"):
        return Modifier(name, "x-frame-options-allow-from-origin", 0, value)
    return Modifier(name, "x-frame-options-header-invalid", -20, value, advice)


def _nosniff(value: str | None) -> Modifier:
    name = "x-content-type-options"
    advice = "Send `X-Content-Type-Options: nosniff`."
    if value is None:
        return Modifier(name, "x-content-type-options-not-implemented", -5, "", advice)
    if value.strip().lower() == "nosniff":
        return Modifier(name, "x-content-type-options-nosniff", 0, value)
    return Modifier(name, "x-content-type-options-header-invalid", -5, value, advice)


def _referrer(value: str | None) -> Modifier:
    name = "referrer-policy"
    advice = "Send `Referrer-Policy: no-referrer`."
    if value is None:
        return Modifier(name, "referrer-policy-not-implemented", 0, "")
    policies = [p.strip().lower() for p in value.split(",") if p.strip()]
    last = policies[-1] if policies else ""
    if last in _SAFE_REFERRER:
        return Modifier(name, "referrer-policy-private", 5, value)
    if last == "no-referrer-when-downgrade":
        return Modifier(name, "referrer-policy-no-referrer-when-downgrade", 0, value)
    if last in _UNSAFE_REFERRER:
        return Modifier(name, "referrer-policy-unsafe", -5, value, advice)
    return Modifier(name, "referrer-policy-header-invalid", -5, value, advice)


def _hsts(value: str | None) -> Modifier:
    name = "strict-transport-security"
    advice = "Send `Strict-Transport-Security: max-age=63072000; includeSubDomains` over https."
    if value is None:
        return Modifier(name, "hsts-not-implemented", -20, "", advice)
    match = re.search(r"(?i)max-age\s*=\s*\"?(\d+)", value)
    if match is None:
        return Modifier(name, "hsts-header-invalid", -20, value, advice)
    if int(match.group(1)) < SIX_MONTHS:
        return Modifier(name, "hsts-implemented-max-age-less-than-six-months", -10, value, advice)
    return Modifier(name, "hsts-implemented-max-age-at-least-six-months", 0, value)


def _cookies(set_cookie: str | None, https: bool, hsts: bool) -> Modifier:
    name = "cookies"
    if not set_cookie:
        return Modifier(name, "cookies-not-found", 0, "")
    advice = "Mark cookies Secure, session cookies HttpOnly, and set SameSite."
    # aiohttp joined several Set-Cookie fields with ", "; a cookie starts with name=
    cookies = re.split(r",\s*(?=[^;=\s]+=)", set_cookie)
    worst = Modifier(name, "cookies-secure-with-httponly-sessions", 0, set_cookie)
    for cookie in cookies:
        flags = cookie.lower()
        session = bool(_SESSION_COOKIE.search(cookie.split("=", 1)[0]))
        secure = "secure" in flags and https
        if session and "httponly" not in flags:
            candidate = Modifier(name, "cookies-session-without-httponly-flag", -30, cookie, advice)
        elif session and not secure:
            if hsts:
                candidate = Modifier(
                    name,
                    "cookies-session-without-secure-flag-but-protected-by-hsts",
                    -10,
                    cookie,
                    advice,
                )
            else:
                candidate = Modifier(
                    name, "cookies-session-without-secure-flag", -40, cookie, advice
                )
        elif not secure:
            candidate = Modifier(name, "cookies-without-secure-flag", -20, cookie, advice)
        else:
            continue
        if candidate.modifier < worst.modifier:
            worst = candidate
    return worst


def evaluate(resp: Response, https: bool) -> tuple[int, list[Modifier]]:
    """The Observatory score of one response and the modifiers behind it."""
    csp = resp.header("content-security-policy")
    hsts_value = resp.header("strict-transport-security") if https else None
    mods = [
        _csp(csp),
        _xfo(resp.header("x-frame-options"), csp),
        _nosniff(resp.header("x-content-type-options")),
        _referrer(resp.header("referrer-policy")),
        _cookies(resp.header("set-cookie"), https, hsts_value is not None),
    ]
    if https:
        mods.append(_hsts(hsts_value))
    penalties = sum(m.modifier for m in mods if m.modifier < 0)
    bonuses = sum(m.modifier for m in mods if m.modifier > 0)
    score = max(0, 100 + penalties)
    if score >= 90:  # the Observatory only awards bonus points to an A without them
        score += bonuses
    return score, mods


def _gradable(resp: Response) -> bool:
    """A 429 is the rate limiter's answer and a 5xx an error page's, often from another layer
    with other headers: neither stands for the service's API responses."""
    return resp.status != 429 and resp.status < 500


async def _graded_response(ctx: ProbeContext) -> tuple[Response | None, list[str]]:
    """The first 2xx of a few GETs, else the first gradable one; and each status seen."""
    candidates = [e.concrete() for e in ctx.target.gets(3)] + ["/"]
    first: Response | None = None
    seen: list[str] = []
    for path in dict.fromkeys(candidates):
        if not ctx.budget.has():
            break
        resp = await ctx.budget.try_request("GET", path)
        if resp is None:
            seen.append(f"GET {path} → no answer")
            continue
        seen.append(f"GET {path} → {resp.status}")
        if not _gradable(resp):
            continue
        first = first or resp
        if 200 <= resp.status < 300:
            return resp, seen
    return first, seen


async def run(ctx: ProbeContext) -> None:
    """Grade the headers of a representative API response (never a 429 or a 5xx)."""
    ctx.judges_limits = True  # one gradable answer is enough, whatever else was limited
    resp, seen = await _graded_response(ctx)
    if resp is None:
        if seen:
            after = ctx.budget.retry_after
            ctx.cannot_judge(
                "no response to grade (a 429 or 5xx is not graded): "
                + "; ".join(seen)
                + (f" (Retry-After: {after})" if after else ""),
                limited=ctx.budget.limited > 0,
            )
        return
    score, mods = evaluate(resp, ctx.https)
    letter = grade(score)
    ctx.score = min(100, score)
    for m in mods:
        if m.modifier >= 0:
            continue
        shown = f"{m.test}: {m.header}" if m.header else f"{m.test}: (not sent)"
        ctx.add(
            Finding(
                f"security-headers.{m.test}",
                "security-headers",
                "warning",
                f"{m.result} ({m.modifier:+d})",
                Evidence(f"GET {resp.path}", resp.status, shown),
                m.advice,
            )
        )
    summary = "; ".join(f"{m.result} {m.modifier:+d}" for m in mods)
    ctx.add(
        Finding(
            "security-headers.grade",
            "security-headers",
            "blocker" if score < BLOCKER_BELOW else "info",
            f"HTTP Observatory grade {letter} (score {score})",
            Evidence(f"GET {resp.path}", resp.status, summary),
            f"Aim for A+: `Content-Security-Policy: {API_CSP}`, `X-Content-Type-Options: "
            "nosniff`, `Referrer-Policy: no-referrer`"
            + (", HSTS of at least six months." if ctx.https else "."),
        )
    )
