"""cors: an arbitrary Origin echoed back together with credentials is a blocker."""

from __future__ import annotations

from readykit.check.client import Response
from readykit.check.finding import Evidence, Finding, excerpt
from readykit.check.probe import ProbeContext

EVIL_ORIGIN = "https://evil.readykit-check.example"
MAX_PATHS = 3


def _judge(ctx: ProbeContext, resp: Response, origin: str) -> bool:
    """Add a finding for a dangerous answer; True if one was added."""
    allowed = (resp.header("access-control-allow-origin") or "").strip()
    credentials = (resp.header("access-control-allow-credentials") or "").strip().lower() == "true"
    ev = Evidence(
        resp.describe(),
        resp.status,
        "\n".join(
            f"{h}: {resp.header(h)}"
            for h in ("access-control-allow-origin", "access-control-allow-credentials")
            if resp.header(h) is not None
        ),
    )
    if allowed == origin and credentials:
        ctx.add(
            Finding(
                "cors.reflected-origin-with-credentials",
                "cors",
                "blocker",
                f"any Origin ({origin}) is echoed with Allow-Credentials on {resp.path}: any site "
                "can read a logged-in user's data",
                ev,
                "Allow only a fixed list of trusted origins when credentials are allowed.",
            )
        )
        return True
    if allowed == origin:
        ctx.add(
            Finding(
                "cors.reflected-origin",
                "cors",
                "warning",
                f"any Origin ({origin}) is echoed in Access-Control-Allow-Origin on {resp.path}",
                ev,
                "Use a fixed allow-list of origins (or `*` for truly public, cookie-less data).",
            )
        )
        return True
    if allowed == "*" and credentials:
        ctx.add(
            Finding(
                "cors.wildcard-with-credentials",
                "cors",
                "warning",
                f"`*` together with Allow-Credentials on {resp.path} (browsers refuse it)",
                ev,
                "Drop Allow-Credentials or name the trusted origins.",
            )
        )
        return True
    return False


async def run(ctx: ProbeContext) -> None:
    """Send a foreign (and a `null`) Origin on simple and preflight requests."""
    paths = [e.concrete() for e in ctx.target.gets(MAX_PATHS)] or ["/"]
    for path in paths:
        for origin in (EVIL_ORIGIN, "null"):
            if not ctx.budget.has():
                return
            resp = await ctx.budget.try_request("GET", path, headers={"Origin": origin})
            if resp is not None and _judge(ctx, resp, origin):
                return
    posts = [e.concrete() for e in ctx.target.endpoints if e.method == "POST"][:1] or paths[:1]
    if ctx.budget.has():
        resp = await ctx.budget.try_request(
            "OPTIONS",
            posts[0],
            headers={
                "Origin": EVIL_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        if resp is not None and _judge(ctx, resp, EVIL_ORIGIN):
            return
    last = f"GET {paths[0]} with Origin: {EVIL_ORIGIN}"
    ctx.add(
        Finding(
            "cors.ok",
            "cors",
            "info",
            "foreign origins are not granted access",
            Evidence(last, None, excerpt("no Access-Control-Allow-Origin for a foreign origin")),
        )
    )
