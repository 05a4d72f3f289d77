"""Django: route templates from its URL resolver, and the logged-in user as the principal.

```python
# asgi.py
from django.core.asgi import get_asgi_application
from readykit import ReadyKit
from readykit.contrib.django import principal, route_template

kit = ReadyKit(route_template=route_template, principal=principal)
application = kit.wrap(get_asgi_application())

# settings.py: after django.contrib.auth.middleware.AuthenticationMiddleware
MIDDLEWARE = [..., "readykit.contrib.django.PrincipalMiddleware"]
```

Django routes inside its own handler and leaves nothing in the scope, so without this every
Django request is labelled `UNMATCHED`; and its user lives on the request, not in the ASGI
scope, so the middleware copies who it is into the scope for the kit (audit actor, per-user
rate limits, privacy subject). The template is the pattern Django matched, with its converters
(`/admin/auth/user/<path:object_id>/change/`); paths that match nothing stay `UNMATCHED`,
which keeps the number of labels bounded by the URLconf.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from readykit._types import Scope

SCOPE_KEY = "readykit.principal"


def route_template(scope: Scope) -> str | None:
    """The URL pattern Django resolves the request's path to, with a leading `/`; or None."""
    from django.urls import Resolver404, resolve

    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):  # Django's own handler strips the script name too
        path = path[len(root) :]
    try:
        match = resolve(path or "/")
    except Resolver404:
        return None
    return "/" + match.route if match.route else None


def principal(scope: Scope) -> str | None:
    """The principal PrincipalMiddleware left in the scope (`user:<username>`), or None."""
    value = scope.get(SCOPE_KEY)
    return value if isinstance(value, str) else None


class PrincipalMiddleware:
    """Django middleware: names the authenticated user in the ASGI scope for readykit.

    Sync and async capable; in async mode the user is loaded with `request.auser()`, so no
    database call runs on the event loop.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = inspect.iscoroutinefunction(get_response)
        if self.is_async:
            from asgiref.sync import markcoroutinefunction

            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        _note_user(request, getattr(request, "user", None))
        return self.get_response(request)

    async def _acall(self, request: Any) -> Any:
        user = await request.auser() if hasattr(request, "auser") else None
        _note_user(request, user)
        response: Awaitable[Any] = self.get_response(request)
        return await response


def _note_user(request: Any, user: Any) -> None:
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and user is not None and user.is_authenticated:
        scope[SCOPE_KEY] = f"user:{user.get_username()}"
