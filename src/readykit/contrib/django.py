"""Django: route templates from its URL resolver, for metrics, logs and records.

```python
from django.core.asgi import get_asgi_application
from readykit import ReadyKit
from readykit.contrib.django import route_template

kit = ReadyKit(route_template=route_template)
application = kit.wrap(get_asgi_application())
```

Django routes inside its own handler and leaves nothing in the scope, so without this every
Django request is labelled `UNMATCHED`. The template is the pattern Django matched, with its
converters: `/admin/auth/user/<path:object_id>/change/`; paths that match nothing stay
`UNMATCHED`, which keeps the number of labels bounded by the URLconf.
"""

from __future__ import annotations

from readykit._types import Scope


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
