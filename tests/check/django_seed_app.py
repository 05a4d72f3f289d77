"""A real Django service with DEBUG=True and one planted defect (run as a child process).

`GET /` links a form that posts to `/items`; `/items` parses the raw body itself (no declared
schema, no OpenAPI), so malformed JSON raises and Django's technical 500 page answers. Unknown
paths get Django's technical 404 page.
"""

from __future__ import annotations

import argparse
import json

import django
import uvicorn
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse('<h1>shop</h1><form method="post" action="/items"><input name="n"></form>')


def items(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"items": []})
    data = json.loads(request.body)  # the defect: malformed input raises
    return JsonResponse({"created": data}, status=201)


urlpatterns = [path("", index), path("items", items)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings.configure(
        DEBUG=True,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="readykit-test-only",
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        TEMPLATES=[],
    )
    django.setup()
    from django.core.asgi import get_asgi_application

    uvicorn.run(get_asgi_application(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
