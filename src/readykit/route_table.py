"""Per-route settings keyed `METHOD /route/{param}`, matched against a request before the app runs.

Guards act before the framework has routed, so they cannot read the route the app will pick;
they match the configured templates themselves. Keys: `"GET /rates/{code}"` (one method),
`"/rates/{code}"` (any method); `{name}` matches one path segment, `{name:path}` the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from readykit._types import Scope
from readykit.errors import ConfigurationError

V = TypeVar("V")
D = TypeVar("D")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?\}")
_SLASHES = re.compile(r"//+")


def route_path(scope: Scope) -> str:
    """The request's path as the app routes it: without the `root_path` the server put in front.

    Servers started behind a prefix (`uvicorn --root-path /api`) send `path="/api/items"` with
    `root_path="/api"`; the app, like Starlette's router, matches `/items`. Ops routes and
    per-route settings are keyed the way the app routes, so they are matched on this.
    """
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root):
        rest = path[len(root) :]
        if not rest or rest[0] == "/":
            return rest or "/"
    return path


def canonical(path: str) -> str:
    """`path` with a leading `/`, runs of `/` folded and no trailing `/`: how a router that
    ignores them sees it.

    Litestar serves `POST /login/`, `POST //login` and (under h11, which passes a request
    target without its `/` through) `POST login` with the `/login` handler, so a limit on
    `POST /login` must match them too; keys are folded the same way (`"POST /login/"`, as a
    Django route is written, matches `/login`).
    """
    if path[:1] != "/":
        path = "/" + path
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if len(path) > 1 and path[-1] == "/":
        path = path.rstrip("/") or "/"
    return path


@dataclass(frozen=True, slots=True)
class RouteMatch(Generic[V]):
    """The configured key that matched, and its value."""

    key: str
    value: V


def _compile(template: str, setting: str, key: str) -> re.Pattern[str]:
    pattern, pos = "", 0
    for m in _PARAM.finditer(template):
        pattern += re.escape(template[pos : m.start()])
        converter = m.group(2) or "str"
        if converter == "path" and pattern.endswith("/"):
            # `/files/{rest:path}` also takes `/files/` and `/files//` (an empty rest), which
            # fold to `/files`
            pattern = pattern[:-1] + "(?:/.*)?"
        elif converter == "path":
            pattern += ".*"
        elif converter in ("str", "int", "float", "uuid", "slug"):
            pattern += "[^/]+"
        else:
            raise ConfigurationError(
                f"{setting}: key {key!r} uses unknown converter {converter!r}; "
                "use {name}, {name:int} or {name:path}"
            )
        pos = m.end()
    pattern += re.escape(template[pos:])
    return re.compile(pattern)


class RouteTable(Generic[V]):
    """Values per `METHOD /template` key; `match()` finds the first key that fits a request.

    Args:
        entries: the setting's mapping; the key `"default"` is not a route and is ignored here.
        setting: the setting's name, for error messages.
    """

    def __init__(self, entries: Mapping[str, V], *, setting: str) -> None:
        self._static: dict[tuple[str | None, str], RouteMatch[V]] = {}
        self._patterns: list[tuple[str | None, re.Pattern[str], RouteMatch[V]]] = []
        for key, value in entries.items():
            if key == "default":
                continue
            method, template = self._parse(key, setting)
            template = canonical(template)
            entry = RouteMatch(key, value)
            if _PARAM.search(template):
                self._patterns.append((method, _compile(template, setting, key), entry))
            else:
                self._static[(method, template)] = entry

    @staticmethod
    def _parse(key: str, setting: str) -> tuple[str | None, str]:
        parts = key.split()
        if len(parts) == 1 and parts[0].startswith("/"):
            return None, parts[0]
        if len(parts) == 2 and parts[0].upper() in _METHODS and parts[1].startswith("/"):
            return parts[0].upper(), parts[1]
        raise ConfigurationError(
            f"{setting}: key {key!r} is not a route; write 'METHOD /path/{{param}}' "
            "(e.g. 'POST /login'), '/path' for any method, or 'default'"
        )

    def __bool__(self) -> bool:
        return bool(self._static or self._patterns)

    def value_for(self, method: str, path: str, default: D) -> V | D:
        """The value configured for this request's route (`path` from `route_path`), else
        `default`."""
        if not self:
            return default
        found = self.match(method, path)
        return default if found is None else found.value

    def match(self, method: str, path: str) -> RouteMatch[V] | None:
        """The entry for this request, method-specific keys before any-method keys.

        The method is compared in upper case (a server like h11 passes `post` through, and
        Django serves it as POST: a lower-case method must not escape a `POST /login` limit),
        and a HEAD request takes a GET key when there is no HEAD key of its own (frameworks
        answer HEAD with the GET handler: `HEAD /export` must not escape `GET /export`'s limit).
        The path is compared `canonical`: `/login/` and `//login` take the `/login` key.
        """
        path = canonical(path)
        if not method.isupper():
            method = method.upper()
        methods = ("HEAD", "GET") if method == "HEAD" else (method,)
        static = self._static
        for candidate in methods:
            found = static.get((candidate, path))
            if found is not None:
                return found
        found = static.get((None, path))
        if found is not None:
            return found
        fallback = None
        for key_method, pattern, entry in self._patterns:
            if pattern.fullmatch(path):
                if key_method in methods:
                    return entry
                if key_method is None and fallback is None:
                    fallback = entry
        return fallback
