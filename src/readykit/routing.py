"""Route templates (`/quotes/{quote_id}`) for metrics, logs and records, from any ASGI app.

In order: the `route_template=` hook given to `ReadyKit`; what the framework left in the scope
after routing (Litestar's `path_template`, Starlette's and FastAPI's `route`); then the app's
own route table, matched without calling the app — for routes that leave nothing in the scope
(FastAPI's `/docs`, mounted static files) and for requests a guard refused before the app ran
(429, 413, 504), which keep the route they were aimed at. Django has no route in the scope:
`readykit.contrib.django.route_template` reads its resolver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from readykit._types import ASGIApp, Scope
from readykit.logging.redact import redact_path
from readykit.record import ROUTE_UNMATCHED

logger = logging.getLogger("readykit")

RouteTemplate = Callable[[Scope], str | None]
_MAX_DEPTH = 8  # mounts within mounts; deeper trees are not walked


def route_template(scope: Scope) -> str:
    """The matched route as the framework left it in the scope, or ROUTE_UNMATCHED.

    Starlette and FastAPI store the matched route object in `scope["route"]` (mounted sub-apps
    add their prefix to `root_path`); Litestar stores `scope["path_template"]`.
    """
    template = scope.get("path_template")
    if isinstance(template, str):
        return template
    route = scope.get("route")
    path_format = getattr(route, "path_format", None)
    if isinstance(path_format, str) and not hasattr(route, "routes"):  # a Mount is no endpoint
        app_root = scope.get("app_root_path")
        if app_root is None:  # set by Starlette only once a Mount matched
            return path_format
        return str(scope.get("root_path", ""))[len(app_root) :] + path_format
    return ROUTE_UNMATCHED


def _starlette_routes(app: Any) -> Sequence[Any] | None:
    routes = getattr(app, "routes", None)
    if isinstance(routes, list) and all(hasattr(r, "matches") for r in routes):
        return routes
    return None


def _match_starlette(routes: Sequence[Any], scope: Scope, prefix: str, depth: int) -> str | None:
    from starlette.routing import Match, Mount

    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates) and depth < _MAX_DEPTH:  # FastAPI's included routers
            found = _match_starlette(candidates(), scope, prefix, depth + 1)
            if found is not None:
                return found
            continue
        if isinstance(route, Mount):
            inner = _starlette_routes(route) if depth < _MAX_DEPTH else None
            if inner:
                found = _match_starlette(inner, {**scope, **child}, prefix + route.path, depth + 1)
                if found is not None:
                    return found
                continue
            return prefix + route.path + "/{path}"  # static files, or an app of another kind
        path_format = getattr(route, "path_format", None)
        if not isinstance(path_format, str):
            continue  # a route kind this walk does not know: name nothing rather than guess
        template = prefix + path_format
        if match is Match.FULL:
            return template
        partial = partial or template  # the path matched, the method did not (405)
    return partial


def _match_litestar(app: Any, scope: Scope) -> str | None:
    try:
        result = app.asgi_router.handle_routing(path=scope["path"], method=scope.get("method"))
    except Exception:  # NotFound, MethodNotAllowed: no route to name
        return None
    return str(result[4])


class RouteResolver:
    """Names the route of a finished request; built once per `wrap()` for the wrapped app.

    Args:
        app: the app the kit wraps; its route table is read for requests it left unnamed.
        hook: `route_template=` from `ReadyKit`: a template, or None to fall through.
    """

    def __init__(self, app: ASGIApp, hook: RouteTemplate | None = None) -> None:
        self.hook = hook
        self.starlette = _starlette_routes(app)
        self.litestar = app if hasattr(app, "asgi_router") else None

    def explicit(self, method: str, path: str) -> bool:
        """True if the app declares a route for exactly `path` (no parameters, no catch-all)."""
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        if self.starlette is not None:
            return _match_starlette(self.starlette, scope, "", 0) == path
        if self.litestar is not None:
            return _match_litestar(self.litestar, scope) == path
        return False

    def __call__(self, scope: Scope, root_path: str = "") -> str:
        """The template for `scope` after the app ran; `root_path` as it was before."""
        if self.hook is not None:
            try:
                named = self.hook(scope)
            except Exception:
                logger.exception("the route_template hook failed")
                named = None
            if named:
                return named
        template = route_template(scope)
        # under a Starlette Mount the scope's prefix is the path as sent (`/users/8a1f…` of
        # `Mount("/users/{uid}")`): a label per value, which any client could multiply; the
        # route table names the mount's template
        mounted = scope.get("app_root_path") is not None and self.starlette is not None
        if template != ROUTE_UNMATCHED and not mounted:
            return template
        found: str | None = None
        lookup = {**scope, "root_path": root_path}  # routing rewrote it: start from the top
        lookup.pop("app_root_path", None)
        if self.starlette is not None:
            found = _match_starlette(self.starlette, lookup, "", 0)
        elif self.litestar is not None:
            found = _match_litestar(self.litestar, lookup)
        return found or ROUTE_UNMATCHED

    def shown(self, scope: Scope, root_path: str = "", route: str | None = None) -> str:
        """The request's path as logs and records show it (`shown_path`)."""
        return shown_path(self, scope, root_path, route)


def shown_path(
    route_of: Callable[[Scope, str], str], scope: Scope, root_path: str, route: str | None = None
) -> str:
    """The request's path as logs and records show it: the segments its route (`route`, or
    `route_of`'s answer) names as secrets redacted (`redact_path`). A path no route matched is
    shown by the route of its other form (with or without a trailing `/`): the one the app
    redirects it to (`/reset/<token>` to `/reset/<token>/`)."""
    path: str = scope["path"]
    if route is None:
        route = route_of(scope, root_path)
    if route == ROUTE_UNMATCHED and len(path) > 1:
        toggled = path[:-1] if path.endswith("/") else path + "/"
        route = route_of({**scope, "path": toggled}, root_path)
    return redact_path(route, path)
