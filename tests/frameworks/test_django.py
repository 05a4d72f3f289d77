"""A stock Django project under readykit, served by a real uvicorn: the contract holds.

Django sends its headers in mixed case (`Set-Cookie`, `Cache-Control`, `X-Frame-Options`,
`Referrer-Policy`), routes inside its own handler, and protects mutations with CSRF. The kit
must not leak one user's private page to another, duplicate a header, label every route
`UNMATCHED`, or get in the way of Django's own protections.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from readykit.serve import ServerProcess, serve

pytest.importorskip("django", reason="Django is not installed (pip install django)")

HERE = Path(__file__).parent
TOKEN = "django-ops-token"
USERS = {"alice": "alice-password-1", "bob": "bob-password-2"}


def django_env(tmp: Path) -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "DJANGO_SETTINGS_MODULE": "django_site.settings",
        "DJANGO_DB": str(tmp / "django.sqlite3"),
        "READYKIT_STORE_URL": f"sqlite:///{tmp}/records.db",
        "READYKIT_OPS_TOKEN": TOKEN,
        "READYKIT_CACHE_ROUTES": json.dumps({"GET /me/": 60, "GET /greeting/": 60}),
        "READYKIT_RATE_LIMITS": json.dumps({"GET /items/{item_id}/": "3/minute"}),
        "READYKIT_LOG_LEVEL": "warning",
    }


def prepare_site(tmp: Path) -> dict[str, str]:
    """Migrate the database and create the users, with Django's own commands."""
    env = {**os.environ, **django_env(tmp)}
    admin = [sys.executable, "-m", "django"]
    subprocess.run([*admin, "migrate", "--noinput", "-v", "0"], env=env, check=True, timeout=120)
    create = "; ".join(
        f"User.objects.create_superuser({name!r}, '{name}@example.com', {pw!r})"
        for name, pw in USERS.items()
    )
    code = f"from django.contrib.auth.models import User; {create}"
    subprocess.run([*admin, "shell", "-c", code], env=env, check=True, timeout=120)
    return django_env(tmp)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("django")
    env = prepare_site(tmp)
    argv = [sys.executable, "-m", "uvicorn", "--port", "{port}", "django_site.asgi:application"]
    with serve(argv, env=env, cwd=HERE) as server:
        yield server


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


def call(
    server: ServerProcess,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def session_of(server: ServerProcess, user: str) -> str:
    """Log `user` in through Django's own auth; the `sessionid=...` cookie it sets."""
    form = urlencode({"username": user, "password": USERS[user]}).encode()
    reply = call(
        server,
        "POST",
        "/api/login/",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 200, reply.body
    cookies = SimpleCookie()
    for value in reply.all("set-cookie"):
        cookies.load(value)
    return f"sessionid={cookies['sessionid'].value}"


def test_one_users_private_page_never_reaches_another(site: ServerProcess) -> None:
    alice, bob = session_of(site, "alice"), session_of(site, "bob")
    for _ in range(2):  # a second round would be served from the cache if anything were stored
        mine = call(site, "GET", "/me/", headers={"Cookie": alice})
        theirs = call(site, "GET", "/me/", headers={"Cookie": bob})
        assert mine.body == b"hello alice"
        assert theirs.body == b"hello bob"
        assert theirs.header("x-cache") is None  # private + Set-Cookie: never stored
        assert alice.split("=", 1)[1] not in " ".join(theirs.all("set-cookie"))
        assert not any("public" in v for v in theirs.all("cache-control"))
    anonymous = call(site, "GET", "/me/")
    assert anonymous.body == b"hello anonymous"


def test_a_shared_page_is_cached_but_kept_apart_per_session(site: ServerProcess) -> None:
    alice = session_of(site, "alice")
    first = call(site, "GET", "/greeting/", headers={"Cookie": alice})
    again = call(site, "GET", "/greeting/", headers={"Cookie": alice})
    stranger = call(site, "GET", "/greeting/")
    assert (first.header("x-cache"), again.header("x-cache")) == ("MISS", "HIT")
    assert stranger.header("x-cache") == "MISS"  # Alice's entry is hers alone
    assert again.header("cache-control") == "private, max-age=60"


def test_security_headers_are_never_duplicated_and_djangos_win(site: ServerProcess) -> None:
    for path in ("/greeting/", "/admin/login/", "/me/", "/no/such/page/"):
        reply = call(site, "GET", path)
        counts = Counter(k.lower() for k, _ in reply.headers if k.lower() != "set-cookie")
        assert [k for k, n in counts.items() if n > 1] == [], (path, reply.headers)
        assert reply.header("referrer-policy") == "same-origin"  # Django's own value
        assert reply.header("x-frame-options") == "DENY"
        assert reply.header("content-security-policy")
        assert reply.header("x-request-id")


def test_routes_are_labelled_with_djangos_patterns(site: ServerProcess) -> None:
    for _ in range(5):  # three allowed, then 429s that keep their route
        call(site, "GET", "/items/7/")
    call(site, "GET", "/admin/login/")
    call(site, "GET", "/no/such/page/")
    metrics = call(site, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    seen = {
        (sample.labels["http_route"], sample.labels["http_response_status_code"])
        for family in text_string_to_metric_families(metrics.body.decode())
        if family.name == "http_server_request_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    }
    assert ("/items/<int:item_id>/", "200") in seen
    assert ("/items/<int:item_id>/", "429") in seen  # refused before Django ran: same route
    assert ("/admin/login/", "200") in seen
    assert ("UNMATCHED", "404") in seen


def test_djangos_csrf_protection_still_holds(site: ServerProcess) -> None:
    alice = session_of(site, "alice")
    forged = call(site, "POST", "/create/", headers={"Cookie": alice}, body=b"")
    assert forged.status == 403  # Django refused it; the kit did not get in the way
    assert forged.header("x-request-id")
