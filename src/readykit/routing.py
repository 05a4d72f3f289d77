"""Route templates, read from what the framework left in the scope after routing."""

from __future__ import annotations

from readykit._types import Scope
from readykit.record import ROUTE_UNMATCHED


def route_template(scope: Scope) -> str:
    """The matched route as a template (`/quotes/{quote_id}`), or one fixed label if none matched.

    Starlette and FastAPI store the matched route object in `scope["route"]` (mounted sub-apps
    add their prefix to `root_path`); Litestar stores `scope["path_template"]`.
    """
    template = scope.get("path_template")
    if isinstance(template, str):
        return template
    route = scope.get("route")
    path_format = getattr(route, "path_format", None)
    if isinstance(path_format, str):
        app_root = scope.get("app_root_path")
        if app_root is None:  # set by Starlette only once a Mount matched
            return path_format
        return str(scope.get("root_path", ""))[len(app_root) :] + path_format
    return ROUTE_UNMATCHED
