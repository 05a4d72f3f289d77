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
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from django_site_fixtures import TOKEN, USERS, prepare_site
from prometheus_client.parser import text_string_to_metric_families

from readykit.serve import ServerProcess


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


def test_one_users_private_page_never_reaches_another(django_site: ServerProcess) -> None:
    alice, bob = session_of(django_site, "alice"), session_of(django_site, "bob")
    for _ in range(2):  # a second round would be served from the cache if anything were stored
        mine = call(django_site, "GET", "/me/", headers={"Cookie": alice})
        theirs = call(django_site, "GET", "/me/", headers={"Cookie": bob})
        assert mine.body == b"hello alice"
        assert theirs.body == b"hello bob"
        assert theirs.header("x-cache") is None  # private + Set-Cookie: never stored
        assert alice.split("=", 1)[1] not in " ".join(theirs.all("set-cookie"))
        assert not any("public" in v for v in theirs.all("cache-control"))
    anonymous = call(django_site, "GET", "/me/")
    assert anonymous.body == b"hello anonymous"


def test_a_shared_page_is_cached_but_kept_apart_per_session(django_site: ServerProcess) -> None:
    alice = session_of(django_site, "alice")
    first = call(django_site, "GET", "/greeting/", headers={"Cookie": alice})
    again = call(django_site, "GET", "/greeting/", headers={"Cookie": alice})
    stranger = call(django_site, "GET", "/greeting/")
    assert (first.header("x-cache"), again.header("x-cache")) == ("MISS", "HIT")
    assert stranger.header("x-cache") == "MISS"  # Alice's entry is hers alone
    assert again.header("cache-control") == "private, max-age=60"


def test_security_headers_are_never_duplicated_and_djangos_win(django_site: ServerProcess) -> None:
    for path in ("/greeting/", "/admin/login/", "/me/", "/no/such/page/"):
        reply = call(django_site, "GET", path)
        counts = Counter(k.lower() for k, _ in reply.headers if k.lower() != "set-cookie")
        assert [k for k, n in counts.items() if n > 1] == [], (path, reply.headers)
        assert reply.header("referrer-policy") == "same-origin"  # Django's own value
        assert reply.header("x-frame-options") == "DENY"
        assert reply.header("content-security-policy")
        assert reply.header("x-request-id")


def test_routes_are_labelled_with_djangos_patterns(django_site: ServerProcess) -> None:
    for _ in range(5):  # three allowed, then 429s that keep their route
        call(django_site, "GET", "/items/7/")
    call(django_site, "GET", "/admin/login/")
    call(django_site, "GET", "/no/such/page/")
    metrics = call(django_site, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
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


def test_djangos_csrf_protection_still_holds(django_site: ServerProcess) -> None:
    alice = session_of(django_site, "alice")
    forged = call(django_site, "POST", "/create/", headers={"Cookie": alice}, body=b"")
    assert forged.status == 403  # Django refused it; the kit did not get in the way
    assert forged.header("x-request-id")


def test_the_readme_django_wiring_runs_as_written(tmp_path: Path) -> None:
    """The README's `# Django` block, executed in a fresh process against the test project."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (block,) = re.findall(r"```python\n(# Django \(asgi.py\)\n.*?)```", readme, re.S)
    probe = (
        block + "\nimport asyncio\nfrom readykit.testing import RecordCollector, asgi_request\n"
        "seen = RecordCollector()\nkit.add_recorder(seen)\n"
        "response = asyncio.run(asgi_request(application, 'GET', '/items/3/'))\n"
        "print(response.status, seen.records[-1].route)\n"
    )
    env = {**os.environ, **prepare_site(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "200 /items/<int:item_id>/"


def test_mutations_are_audited_with_the_django_user_and_pattern(
    django_site: ServerProcess,
) -> None:
    alice = session_of(django_site, "alice")
    call(django_site, "POST", "/create/", headers={"Cookie": alice, "X-Request-ID": "dj-audit-1"})
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    events = json.loads(call(django_site, "GET", "/ops/api/audit", headers=bearer).body)["events"]
    [event] = [e for e in events if e["request_id"] == "dj-audit-1"]
    assert (event["actor"], event["action"], event["status"]) == (
        "user:alice",
        "POST /create/",
        403,  # Django's CSRF refused it: still a mutation attempt, audited with its actor
    )


def test_djangos_500_page_becomes_the_kits_problem(django_site: ServerProcess) -> None:
    """Django answers an exception with its own page without raising to the kit."""
    for accept in ("text/html", "*/*"):
        reply = call(
            django_site, "GET", "/boom/", headers={"Accept": accept, "X-Request-ID": "dj-500"}
        )
        assert reply.status == 500
        assert reply.header("content-type") == "application/problem+json"
        assert json.loads(reply.body)["request_id"] == "dj-500"


def test_djangos_debug_page_never_reaches_the_client(tmp_path: Path) -> None:
    """With DEBUG on, Django's technical 500 page shows the request's headers, cookies and
    local variables (as HTML to a browser, as text to anything else)."""
    from readykit.serve import serve

    env = {**prepare_site(tmp_path), "DJANGO_DEBUG": "1"}
    argv = [sys.executable, "-m", "uvicorn", "--port", "{port}", "django_site.asgi:application"]
    with serve(argv, env=env, cwd=Path(__file__).parent) as server:
        for accept in ("text/html", "*/*"):
            headers = {"Accept": accept, "Cookie": "sessionid=s3cr3t-session-value"}
            reply = call(server, "GET", "/boom/", headers=headers)
            assert reply.status == 500
            assert reply.header("content-type") == "application/problem+json"
            assert b"a planted failure" not in reply.body
            assert b"s3cr3t-session-value" not in reply.body


def test_a_lower_case_method_under_h11_is_audited(tmp_path: Path) -> None:
    """h11 passes `post` through and Django serves it as POST: the mutation must be audited
    (auto-audit compared the method as sent with `POST`)."""
    import socket

    from readykit.serve import serve

    env = prepare_site(tmp_path)
    argv = [sys.executable, "-m", "uvicorn", "--http", "h11", "--port", "{port}",
            "django_site.asgi:application"]  # fmt: skip
    with serve(argv, env=env, cwd=Path(__file__).parent) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as conn:
            request = "post /create/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: dj-lower-1\r\n"
            conn.sendall((request + "Content-Length: 0\r\nConnection: close\r\n\r\n").encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 403")  # Django's CSRF: an audited attempt
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        events = json.loads(call(server, "GET", "/ops/api/audit", headers=bearer).body)["events"]
    [event] = [e for e in events if e["request_id"] == "dj-lower-1"]
    assert (event["action"], event["status"]) == ("POST /create/", 403)


def test_secrets_in_djangos_paths_and_warnings_reach_no_log_or_record(tmp_path: Path) -> None:
    """Django's password reset link carries its token in the path (`reset/<uidb64>/<token>/`):
    the access line, the slow-request entry and the audit resource show the route's `token`
    segment redacted; a warning quoting a secret goes through the redacting log pipeline."""
    from readykit.serve import serve

    token = "c1k2pt-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    planted = "Pl4nted0Warn0Secret"
    env = {
        **prepare_site(tmp_path),
        "READYKIT_LOG_LEVEL": "info",  # the access lines too
        "READYKIT_SLOW_REQUEST_MS": "0.001",  # every request is a stored slow request
    }
    argv = [sys.executable, "-m", "uvicorn", "--port", "{port}", "django_site.asgi:application"]
    with serve(argv, env=env, cwd=Path(__file__).parent) as server:
        assert call(server, "GET", f"/reset/MQ/{token}/").status == 200  # "invalid link" page
        assert call(server, "POST", f"/reset/MQ/{token}/").status == 403  # CSRF: audited
        assert call(server, "GET", "/warn/", headers={"X-Planted": planted}).status == 200
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        audit = call(server, "GET", "/ops/api/audit", headers=bearer).body.decode()
        entries = call(server, "GET", "/ops/api/entries?kind=slow_request", headers=bearer)
        server.stop()
        output = server.output()
    assert '"route": "/reset/<uidb64>/<token>/", "path": "/reset/MQ/[REDACTED]/"' in output
    assert "SECRET_KEY=[REDACTED] is insecure" in output  # the warning, through the pipeline
    assert "/reset/MQ/[REDACTED]/" in audit
    assert "/reset/MQ/[REDACTED]/" in entries.body.decode()
    assert planted not in output
    # Django's own message quotes the path: `Forbidden (CSRF cookie not set.): /reset/MQ/...`
    assert "Forbidden (CSRF cookie not set.): /reset/MQ/[REDACTED]/" in output
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("records.db*"))
    sinks = {"log": output, "audit": audit, "entries": entries.body.decode()}
    sinks["store"] = stored.decode("latin-1")
    for where, text in sinks.items():
        assert token not in text, where
