"""A bounded same-origin crawl for services without OpenAPI: links, forms, robots.txt, sitemap.

Bounds: `MAX_PAGES` pages fetched, `MAX_DEPTH` links deep from `/`, `MAX_FOUND` endpoints, one
path per shape (`/items/1` and `/items/2` are one endpoint). Only the target's origin; links
that sound destructive (delete, logout, …) are never followed, assets are skipped, and a page
that answers like an unknown path (a catch-all SPA) is not an endpoint.
"""

from __future__ import annotations

import contextlib
import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

from readykit.check.client import Budget
from readykit.check.discovery import Endpoint, Param, Target

MAX_PAGES = 15
MAX_DEPTH = 2
MAX_FOUND = 40
_ASSET = re.compile(
    r"(?i)\.(css|js|mjs|map|png|jpe?g|gif|svg|ico|webp|avif|woff2?|ttf|eot|pdf|zip|gz|mp4|webm)$"
)
_DESTRUCTIVE = re.compile(
    r"(?i)(delete|remove|destroy|logout|log-out|signout|sign-out|unsubscribe)"
)
_SITEMAP_LOC = re.compile(r"(?i)<loc>\s*([^<\s]+)\s*</loc>")
_ROBOTS_LINE = re.compile(r"(?im)^\s*(allow|disallow|sitemap)\s*:\s*(\S+)")


class _Page(HTMLParser):
    """Collects `href`s and forms (method, action, field names) of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.forms: list[tuple[str, str, list[str]]] = []
        self._form: tuple[str, str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("a", "link", "area") and a.get("href"):
            if tag != "link" or a.get("rel", "").lower() in ("alternate", "next", "prev"):
                self.links.append(a["href"])
        elif tag == "form":
            self._form = (a.get("method", "get").upper() or "GET", a.get("action", ""), [])
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea") and self._form is not None and a.get("name"):
            self._form[2].append(a["name"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def shape(path: str) -> str:
    """`/items/42/notes` → `/items/{n}/notes`: one endpoint per shape."""
    return re.sub(r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27,}|[0-9a-f]{24,})(?=/|$)", "/{n}", path)


class _Crawl:
    def __init__(self, budget: Budget, target: Target) -> None:
        self.budget = budget
        self.target = target
        origin = urlsplit(budget.client.base_url)
        self.origin = (origin.scheme, origin.netloc.lower())
        self.found: dict[tuple[str, str], Endpoint] = {}
        self.queued: set[str] = set()
        self.queue: list[tuple[str, int, str]] = []

    def local(self, base: str, ref: str) -> str | None:
        """The same-origin path (with query) of `ref` found on page `base`, or None."""
        ref = ref.strip()
        if not ref or ref.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
            return None
        url = urlsplit(urljoin(self.budget.client.base_url + base, ref))
        if (url.scheme, url.netloc.lower()) != self.origin:
            return None
        path = url.path or "/"
        if path.startswith("//"):
            return None  # `//host/x` names another host once it is a reference again
        if _ASSET.search(path) or _DESTRUCTIVE.search(path + "?" + url.query):
            return None
        return path + (f"?{url.query}" if url.query else "")

    def add(self, method: str, ref: str, source: str, names: list[str] | None = None) -> None:
        path, _, query = ref.partition("?")
        key = (method, shape(path))
        if key in self.found or len(self.found) >= MAX_FOUND:
            return
        fields = [k for k, _ in parse_qsl(query, keep_blank_values=True)]
        params = tuple(Param(n, "query") for n in dict.fromkeys(fields))
        if method == "GET":
            params += tuple(
                Param(n, "query") for n in dict.fromkeys(names or []) if n not in fields
            )
        else:  # a form posts its fields form-encoded: that is the body it accepts
            params += tuple(Param(n, "form") for n in dict.fromkeys(names or []))
        self.found[key] = Endpoint(method, path, params, False, source=source)

    def enqueue(self, ref: str, depth: int, source: str) -> None:
        path = ref.partition("?")[0]
        if shape(path) not in self.queued and depth <= MAX_DEPTH:
            self.queued.add(shape(path))
            self.queue.append((ref, depth, source))

    async def visit(self, ref: str, depth: int, source: str) -> None:
        resp = await self.budget.try_request("GET", ref)
        if resp is None or not 200 <= resp.status < 300 or self.target.like_unknown(resp):
            return
        self.add("GET", ref, source)
        if "html" not in resp.content_type:
            return
        page = _Page()
        with contextlib.suppress(ValueError, AssertionError):  # broken markup: keep what was read
            page.feed(resp.text)
        base = ref.partition("?")[0]
        for href in page.links:
            local = self.local(base, href)
            if local is not None:
                self.enqueue(local, depth + 1, "crawl (link)")
        for method, action, names in page.forms:
            local = self.local(base, action or base)
            if local is None:
                continue
            if method == "POST":
                self.add("POST", local, "crawl (form)", names)
            else:
                self.add("GET", local, "crawl (form)", names)

    async def robots_and_sitemap(self) -> None:
        sitemaps = ["/sitemap.xml"]
        robots = await self.budget.try_request("GET", "/robots.txt")
        if robots is not None and robots.status == 200 and not self.target.like_unknown(robots):
            for kind, value in _ROBOTS_LINE.findall(robots.text):
                if kind.lower() == "sitemap":
                    local = self.local("/", value)
                    if local is not None:
                        sitemaps.insert(0, local)
                elif "*" not in value and "$" not in value and value != "/":
                    local = self.local("/", value)
                    if local is not None:
                        self.enqueue(local, MAX_DEPTH, "robots.txt")
        for path in dict.fromkeys(sitemaps[:2]):
            if not self.budget.has():
                return
            resp = await self.budget.try_request("GET", path)
            if resp is None or resp.status != 200 or self.target.like_unknown(resp):
                continue
            for loc in _SITEMAP_LOC.findall(resp.text)[:MAX_FOUND]:
                local = self.local("/", loc)
                if local is not None:
                    self.enqueue(local, MAX_DEPTH, "sitemap.xml")


async def crawl(budget: Budget, target: Target) -> list[Endpoint]:
    """The endpoints a bounded crawl from `/` finds, each with its source."""
    walk = _Crawl(budget, target)
    walk.enqueue("/", 0, "crawl (/)")
    pages = 0
    while walk.queue and pages < MAX_PAGES and budget.has(2):
        ref, depth, source = walk.queue.pop(0)
        await walk.visit(ref, depth, source)
        pages += 1
        if pages == 1:
            await walk.robots_and_sitemap()
    return list(walk.found.values())
