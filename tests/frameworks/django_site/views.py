"""Views a typical Django app has: per-user pages with a session, public JSON, an item route."""

import warnings

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt


@cache_control(private=True)
def me(request: HttpRequest) -> HttpResponse:
    """Who is logged in: private to the session (Django sends `Cache-Control: private`)."""
    name = request.user.get_username() if request.user.is_authenticated else "anonymous"
    response = HttpResponse(f"hello {name}", content_type="text/plain")
    request.session["seen"] = request.session.get("seen", 0) + 1  # Django sends Set-Cookie
    return response


def greeting(request: HttpRequest) -> HttpResponse:
    """The same for everyone (and cacheable), unless the app says otherwise."""
    return JsonResponse({"hello": "world"})


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return JsonResponse({"id": item_id})


@csrf_exempt
def api_login(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    if user is None:
        return HttpResponse(status=401)
    login(request, user)
    return HttpResponse("ok")


def create(request: HttpRequest) -> HttpResponse:
    """A mutation behind Django's CSRF protection."""
    return JsonResponse({"created": True}, status=201)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a planted failure")


def warn(request: HttpRequest) -> HttpResponse:
    """A library warning that quotes a secret (as settings checks do)."""
    planted = request.headers["X-Planted"]
    warnings.warn(f"falling back: SECRET_KEY={planted} is insecure", stacklevel=1)
    return HttpResponse("warned")
