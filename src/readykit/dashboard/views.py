"""The dashboard's data (`/ops/api/*`, JSON) and pages (`/ops`, server-rendered with Jinja2).

Every read is bounded: traffic documents of the last hour, APM entries of the last hour (at most
a thousand), one page of audit events. Bad filters are 400 problem+json; a panel whose store
is down says so instead of failing the page.
"""

from __future__ import annotations

import functools
import io
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode

from readykit._types import Receive, Scope, Send
from readykit.access import MAX_TOKEN_BYTES
from readykit.body import BodyTooLarge, read_body
from readykit.dashboard.auth import OpsAuth, same_origin
from readykit.dashboard.traffic import TRAFFIC, Traffic, summarise
from readykit.errors import ConfigurationError, require_extra
from readykit.problem import send_bytes, send_problem
from readykit.records.apm import summarise as group_entries
from readykit.records.spreadsheet import write_csv
from readykit.records.store import KINDS, StoreUnavailable

if TYPE_CHECKING:
    from jinja2 import Environment

    from readykit.cache import Cache
    from readykit.feature import Setup
    from readykit.records.store import Store

PAGE_SIZE = 50
FORM_BYTES = 4096
HOUR_S = 3600.0
ENTRY_LIMIT = 1000
AUDIT_FILTERS = ("actor", "action", "resource", "since", "until", "page", "format")
STATIC = {
    "app.js": b"text/javascript; charset=utf-8",
    "ops.css": b"text/css; charset=utf-8",
    "uplot.min.js": b"text/javascript; charset=utf-8",
    "uplot.min.css": b"text/css; charset=utf-8",
}
TITLES = {
    "slow_request": "Slow requests",
    "slow_query": "Slow queries",
    "exception": "Exceptions",
    "stall": "Event-loop stalls",
}


def ops_base(scope: Scope) -> str:
    """Where the dashboard is, as the browser sees it: `/ops` behind the server's root path
    (`uvicorn --root-path /api`: `/api/ops`); every link, redirect and the cookie's path. The
    scope holds the root path decoded; the browser sends it percent-encoded (`/my%20app`)."""
    return quote(str(scope.get("root_path", "")), safe="/") + "/ops"


async def _redirect(send: Send, location: bytes, cookie: bytes | None = None) -> None:
    """303 See Other to `location`, optionally setting a cookie."""
    headers = [(b"location", location), (b"content-length", b"0")]
    if cookie is not None:
        headers.append((b"set-cookie", cookie))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


# the dashboard's own policy, stricter than the kit's default for HTML: no inline anything
OPS_CSP = (
    b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)


async def send_html(send: Send, status: int, html: str) -> None:
    """A dashboard page, under the dashboard's own CSP."""
    headers = [(b"content-security-policy", OPS_CSP)]
    await send_bytes(send, status, html.encode(), b"text/html; charset=utf-8", headers)


class BadRequest(Exception):
    """A filter the caller can fix: answered with 400 problem+json."""


def _query(scope: Scope, allowed: tuple[str, ...]) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown filter {unknown[0]!r}; use {', '.join(allowed)}")
    return {k: v[-1] for k, v in raw.items() if v[-1] != ""}


def _when(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}={value!r} is not a date or time (e.g. 2026-11-23)") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _page(value: str | None) -> int:
    if value is None:
        return 1
    if not (value.isascii() and value.isdigit() and len(value) <= 9) or int(value) < 1:
        raise BadRequest(f"page={value[:20]!r} is not a page number (1, 2, ...)")
    return int(value)


class Dashboard:
    """Builds every /ops response from the kit's store, health registry and metrics."""

    def __init__(
        self,
        setup: Setup,
        store: Store,
        cache: Cache,
        auth: OpsAuth,
        traffic: Traffic | None = None,
    ) -> None:
        self.setup = setup
        self._store = store
        self.cache = cache
        self.auth = auth
        self.traffic = traffic
        self.pages_missing = pages_missing()

    @functools.cached_property
    def env(self) -> Environment:
        """The templates, loaded at the first page (jinja2 costs ~50 ms to import)."""
        from jinja2 import Environment, PackageLoader, select_autoescape

        env = Environment(
            loader=PackageLoader("readykit.dashboard", "templates"),
            autoescape=select_autoescape(["html", "j2"]),
        )
        env.filters["when"] = lambda ts: (
            datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else ""
        )
        return env

    @property
    def store(self) -> Any:
        return self._store

    # data

    async def overview(self) -> dict[str, Any]:
        """Health checks, and traffic of the last hour: totals, per route, per minute."""
        now = time.time()
        results = await self.setup.health.run(("readiness", "liveness"))
        health = [
            {"name": r.name, "kind": r.kind, "status": r.status, "duration_ms": r.duration_ms,
             "output": r.output}
            for r in results
        ]  # fmt: skip
        try:
            if self.traffic is not None:  # this process's latest minutes, not 5 s old ones
                await self.traffic.flush()
            traffic = summarise(await self.store.docs(TRAFFIC, since=now - HOUR_S), now)
            unavailable = None
        except StoreUnavailable as exc:
            traffic, unavailable = summarise([], now), str(exc)
        return {"health": health, "traffic": traffic, "unavailable": unavailable}

    async def entries(self, scope: Scope) -> dict[str, Any]:
        """APM entries of the last hour, grouped (count, max, p95, last seen), and the newest."""
        q = _query(scope, ("kind",))
        kind = q.get("kind", "slow_request")
        if kind not in KINDS:
            raise BadRequest(f"kind={kind!r} is not one of {', '.join(KINDS)}")
        rows = await self.store.entries(kind, since=time.time() - HOUR_S, limit=ENTRY_LIMIT)
        return {"kind": kind, "groups": group_entries(rows), "latest": rows[:20]}

    async def audit(self, scope: Scope) -> dict[str, Any]:
        """One page of audit events, filtered; `format=csv` is handled by the caller."""
        q = _query(scope, AUDIT_FILTERS)
        page = _page(q.get("page"))
        filters = {
            "actor": q.get("actor"),
            "action": q.get("action"),
            "resource": q.get("resource"),
            "since": _when(q.get("since"), "since"),
            "until": _when(q.get("until"), "until"),
        }
        rows = await self.store.audit(**filters, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        shown = {k: v for k, v in q.items() if k not in ("page", "format")}
        return {
            "events": rows[:PAGE_SIZE],
            "page": page,
            "next": urlencode({**shown, "page": page + 1}) if len(rows) > PAGE_SIZE else None,
            "prev": urlencode({**shown, "page": page - 1}) if page > 1 else None,
            "filters": shown,
            "csv": urlencode({**shown, "format": "csv"}),
        }

    async def audit_csv(self, scope: Scope) -> bytes:
        """Every matching audit event as CSV (the export of the audit page)."""
        q = _query(scope, AUDIT_FILTERS)
        rows = await self.store.audit(
            actor=q.get("actor"), action=q.get("action"), resource=q.get("resource"),
            since=_when(q.get("since"), "since"), until=_when(q.get("until"), "until"),
        )  # fmt: skip
        out = io.StringIO()
        columns = ["seq", "ts", "actor", "action", "resource", "status", "request_id"]
        lines = ([*(e[c] for c in columns), json.dumps(e["details"])] for e in rows)
        write_csv(out, [*columns, "details"], lines)
        return out.getvalue().encode()

    def guards(self) -> dict[str, Any]:
        """Cache hit rates and rate-limit rejections, from the kit's own counters."""
        rejections = []
        for metric in self.setup.metrics.registry.collect():
            if metric.name == "readykit_rate_limit_rejections":
                rejections = [
                    {"route": s.labels["route"], "policy": s.labels["policy"], "count": s.value}
                    for s in metric.samples
                    if s.name.endswith("_total")
                ]
        return {"cache": self.cache.metrics.snapshot(), "rate_limit_rejections": rejections}

    # HTTP

    def routes(self) -> dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]]:
        """Exact paths -> handlers, for the kit's ops routes."""
        pages = {"/ops": "overview", "/ops/apm": "apm", "/ops/audit": "audit"}
        out: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
            path: self._page_handler(name) for path, name in pages.items()
        }
        out["/ops/"] = self.slash
        out["/ops/login"] = self.login
        out["/ops/logout"] = self.logout
        for api in ("overview", "entries", "audit", "guards"):
            out[f"/ops/api/{api}"] = self._api_handler(api)
        for name in STATIC:
            out[f"/ops/static/{name}"] = self._static_handler(name)
        return out

    def _static_handler(self, name: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        body = resources.files("readykit.dashboard").joinpath("static", name).read_bytes()

        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            await send_bytes(send, 200, body, STATIC[name], [(b"cache-control", b"max-age=3600")])

        return handler

    def _api_handler(self, api: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["method"] not in ("GET", "HEAD"):
                await send_problem(send, 405, "Only GET is allowed here.")
                return
            if not await self.auth.allowed(scope):
                await send_problem(send, 401, "The ops token is required.",
                                   headers=[(b"www-authenticate", b"Bearer")])  # fmt: skip
                return
            try:
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                if api == "audit" and query.get("format", [""])[-1] == "csv":
                    body = await self.audit_csv(scope)
                    disposition = (b"content-disposition", b'attachment; filename="audit.csv"')
                    await send_bytes(send, 200, body, b"text/csv; charset=utf-8", [disposition])
                    return
                data = await self._data(api, scope)
            except BadRequest as exc:
                await send_problem(send, 400, str(exc))
                return
            except StoreUnavailable as exc:
                await send_problem(send, 503, f"The records store is unavailable: {exc}")
                return
            await send_bytes(send, 200, json.dumps(data, default=str).encode(),
                             b"application/json")  # fmt: skip

        return handler

    async def _data(self, api: str, scope: Scope) -> dict[str, Any]:
        if api == "overview":
            _query(scope, ())
            return await self.overview()
        if api == "entries":
            return await self.entries(scope)
        if api == "audit":
            return await self.audit(scope)
        _query(scope, ())
        return self.guards()

    def _page_handler(self, name: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["method"] not in ("GET", "HEAD"):
                await send_problem(send, 405, "Only GET is allowed here.")
                return
            if not await self.auth.allowed(scope):
                await self._refuse_page(scope, send)
                return
            # what a panel shows when its store is down: empty, with the reason above it
            context: dict[str, Any] = {
                "page": name, "kinds": TITLES, "filters": {}, "events": [], "groups": [],
                "latest": [], "csv": "", "kind": "slow_request", "title": "",
            }  # fmt: skip
            try:
                if name == "overview":
                    context.update(await self.overview(), guards=self.guards())
                elif name == "apm":
                    context.update(await self.entries(scope))
                    context["title"] = TITLES[context["kind"]]
                else:
                    context.update(await self.audit(scope))
            except BadRequest as exc:
                await send_problem(send, 400, str(exc))
                return
            except StoreUnavailable as exc:
                context["unavailable"] = str(exc)
            await self._send_page(scope, send, 200, f"{name}.html.j2", context)

        return handler

    async def _send_page(
        self, scope: Scope, send: Send, status: int, template: str, context: dict[str, Any]
    ) -> None:
        if self.pages_missing is not None:  # the JSON API works without the pages' extra
            await send_problem(send, 501, self.pages_missing)
            return
        page = self.env.get_template(template).render(**context, ops=ops_base(scope))
        await send_html(send, status, page)

    async def _refuse_page(self, scope: Scope, send: Send) -> None:
        if not self.auth.has_token:
            await send_problem(send, 403, "The dashboard needs READYKIT_OPS_TOKEN (or, for "
                               "development, READYKIT_OPS_TRUST_LOOPBACK=true).")  # fmt: skip
            return
        await _redirect(send, f"{ops_base(scope)}/login".encode("latin-1"))

    async def slash(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/ops/` is `/ops`."""
        await _redirect(send, ops_base(scope).encode("latin-1"))

    async def _login_page(
        self, scope: Scope, send: Send, error: str | None, status: int = 200
    ) -> None:
        context = {"page": "login", "error": error}
        await self._send_page(scope, send, status, "login.html.j2", context)

    async def login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET: the form (or, with `?token=`, the link a demo prints). POST: the token in, a
        session cookie out (303 to /ops). Attempts are limited; other sites are refused."""
        if scope["method"] not in ("GET", "HEAD", "POST"):
            await send_problem(send, 405, "Use GET or POST.", headers=[(b"allow", b"GET, POST")])
            return
        if not self.auth.has_token:
            await self._refuse_page(scope, send)
            return
        token: bytes | None = None
        if scope["method"] == "POST":
            if not same_origin(scope, self.setup.proxies):
                await send_problem(send, 403, "Cross-site requests to /ops are refused.")
                return
            try:
                form = await _read_form(receive)
            except BadRequest as exc:
                await send_problem(send, 413, str(exc))
                return
            token = form.get("token", "").encode("latin-1", "replace")
        else:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if "token" not in query:
                await self._login_page(scope, send, None)
                return
            token = query["token"][-1].encode("latin-1", "replace")
        client = self.auth.access.client_of(scope)  # as wrong bearer tokens are counted
        if not self.auth.limiter.allow(client):
            retry = str(self.auth.limiter.retry_after(client)).encode()
            await send_problem(send, 429, "Too many login attempts; wait and try again.",
                               headers=[(b"retry-after", retry)])  # fmt: skip
            return
        if len(token) > MAX_TOKEN_BYTES:
            await send_problem(send, 400, f"The token is longer than {MAX_TOKEN_BYTES} bytes.")
            return
        if not self.auth.token_ok(token):
            # the form again, with the error (a 4xx would only add noise to the browser's console)
            await self._login_page(scope, send, "That is not the ops token.")
            return
        secure = self.setup.proxies.is_https(scope)
        base = ops_base(scope)
        await _redirect(send, base.encode("latin-1"), self.auth.cookie_header(base, secure=secure))

    async def logout(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST: end the session on the server and clear its cookie."""
        if scope["method"] != "POST":
            await send_problem(send, 405, "Use POST to log out.", headers=[(b"allow", b"POST")])
            return
        if not same_origin(scope, self.setup.proxies):
            await send_problem(send, 403, "Cross-site requests to /ops are refused.")
            return
        await self.auth.revoke(scope)
        secure = self.setup.proxies.is_https(scope)
        base = ops_base(scope)
        cookie = self.auth.cookie_header(base, secure=secure, clear=True)
        await _redirect(send, f"{base}/login".encode("latin-1"), cookie)


def pages_missing() -> str | None:
    """Why the HTML pages cannot be served (their extra is not installed), or None."""
    try:
        require_extra("jinja2", None, "the /ops pages")
    except ConfigurationError as exc:
        return f"{exc}; /ops/api/* serves the same data as JSON"
    return None


async def _read_form(receive: Receive) -> dict[str, str]:
    """A small urlencoded form body; larger than FORM_BYTES is refused."""
    try:
        body = await read_body(receive, FORM_BYTES)
    except BodyTooLarge:
        raise BadRequest(f"The form is larger than {FORM_BYTES} bytes.") from None
    return {k: v[-1] for k, v in parse_qs(body.decode("latin-1")).items()}
