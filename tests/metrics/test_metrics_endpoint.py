"""GET /metrics over raw ASGI: OTel HTTP metrics, labels, access rule, negotiation."""

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from readykit import ReadyKit, Settings
from readykit.logging.redact import redact_text
from readykit.testing import asgi_request

pytestmark = pytest.mark.anyio


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    # pretend to be a framework that routed /items/<n> to the template /items/{item_id}
    if scope["path"].startswith("/items/"):
        scope["path_template"] = "/items/{item_id}"
    elif scope["path"].startswith("/r"):
        scope["path_template"] = scope["path"]  # a distinct route per path: cardinality test
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"x" * 10})


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(wrapped: Any, **kwargs: Any) -> str:
    resp = await asgi_request(wrapped, "GET", "/metrics", **kwargs)
    assert resp.status == 200, resp.body
    return resp.body.decode()


async def test_http_server_metrics_use_route_templates_and_otel_names() -> None:
    wrapped = ReadyKit(Settings(ops_trust_loopback=True)).wrap(app)
    for n in range(3):
        await asgi_request(wrapped, "POST", f"/items/{n}", body=b"12345")
    await asgi_request(wrapped, "GET", "/missing")
    await asgi_request(wrapped, "BREW", "/items/1")
    text = await scrape(wrapped)
    post = {
        "http_request_method": "POST",
        "http_route": "/items/{item_id}",
        "http_response_status_code": "200",
    }
    assert value(text, "http_server_request_duration_seconds_count", **post) == 3
    assert value(text, "http_server_request_body_size_bytes_sum", **post) == 15
    assert value(text, "http_server_response_body_size_bytes_sum", **post) == 30
    unmatched = {
        "http_request_method": "GET",
        "http_route": "UNMATCHED",
        "http_response_status_code": "404",
    }
    assert value(text, "http_server_request_duration_seconds_count", **unmatched) == 1
    other = {**post, "http_request_method": "_OTHER"}
    assert value(text, "http_server_request_duration_seconds_count", **other) == 1
    assert "/items/1" not in text  # never the raw path
    buckets = {
        dict(labels)["le"]
        for (name, labels) in samples(text)
        if name == "http_server_request_duration_seconds_bucket"
    }
    assert {"0.005", "0.075", "7.5", "10.0", "+Inf"} <= buckets
    assert value(text, "http_server_active_requests", http_request_method="GET") == 1  # scrape
    assert value(text, "process_resident_memory_bytes") > 0


async def test_route_cardinality_is_capped() -> None:
    wrapped = ReadyKit(Settings(metrics_max_routes=3, ops_trust_loopback=True)).wrap(app)
    for n in range(10):
        await asgi_request(wrapped, "GET", f"/r{n}")
    text = await scrape(wrapped)
    routes = {
        dict(labels)["http_route"]
        for (name, labels) in samples(text)
        if name == "http_server_request_duration_seconds_count"
    }
    assert len(routes) == 4  # 3 routes + OVERFLOW (+ /metrics itself counts only after)
    assert "OVERFLOW" in routes
    overflow = {
        "http_request_method": "GET",
        "http_route": "OVERFLOW",
        "http_response_status_code": "200",
    }
    assert value(text, "http_server_request_duration_seconds_count", **overflow) == 7


async def test_health_check_metrics() -> None:
    kit = ReadyKit(Settings(ops_trust_loopback=True))
    kit.add_check("database", lambda: False)
    kit.add_check("cache", lambda: None)
    wrapped = kit.wrap(app)
    await asgi_request(wrapped, "GET", "/health/ready")
    text = await scrape(wrapped)
    assert value(text, "readykit_health_check_status", check="database", kind="readiness") == 0
    assert value(text, "readykit_health_check_status", check="cache", kind="readiness") == 1
    assert (
        "readykit_health_check_duration_seconds",
        (("check", "cache"), ("kind", "readiness")),
    ) in samples(text)


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text"),
        ("text/plain", "text/plain"),
        ("application/x-unknown", "text/plain"),
        ("", "text/plain"),
    ],
)
async def test_content_negotiation_falls_back_to_text(accept: str, content_type: str) -> None:
    wrapped = ReadyKit(Settings(ops_trust_loopback=True)).wrap(app)
    headers = [("Accept", accept)] if accept else []
    resp = await asgi_request(wrapped, "GET", "/metrics", headers=headers)
    assert resp.status == 200
    assert (resp.header("content-type") or "").startswith(content_type)
    if content_type == "text/plain":
        assert "version=0.0.4" in (resp.header("content-type") or "")
    else:
        assert resp.body.rstrip().endswith(b"# EOF")


@pytest.mark.parametrize(
    ("client", "headers"),
    [
        (("203.0.113.9", 1), []),
        (("127.0.0.1", 1), [("X-Forwarded-For", "203.0.113.9")]),
        (("203.0.113.9", 1), [("Authorization", "Bearer wrong")]),
    ],
)
async def test_outsiders_get_401(client: tuple[str, int], headers: list[tuple[str, str]]) -> None:
    wrapped = ReadyKit(Settings(ops_token="tok", ops_trust_loopback=True)).wrap(app)
    resp = await asgi_request(wrapped, "GET", "/metrics", client=client, headers=headers)
    assert resp.status == 401
    assert resp.header("content-type") == "application/problem+json"
    assert (
        resp.header(
            "www-authenticate",
        )
        == 'Bearer realm="readykit"'
    )
    assert b"http_server" not in resp.body
    detail = resp.json()["detail"]
    # logged or quoted in a report, the hint survives redaction whole
    assert redact_text(detail) == detail
    assert "READYKIT_OPS_TOKEN" in detail


async def test_closed_to_loopback_by_default() -> None:
    for settings in (Settings(), Settings(ops_token="tok")):
        resp = await asgi_request(ReadyKit(settings).wrap(app), "GET", "/metrics")
        assert resp.status == 401
        assert b"http_server" not in resp.body


async def test_token_and_public_setting_open_it() -> None:
    outsider = ("203.0.113.9", 1)
    with_token = ReadyKit(Settings(ops_token="tok")).wrap(app)
    resp = await asgi_request(
        with_token, "GET", "/metrics", client=outsider, headers=[("Authorization", "Bearer tok")]
    )
    assert resp.status == 200
    public = ReadyKit(Settings(metrics_public=True)).wrap(app)
    assert (await asgi_request(public, "GET", "/metrics", client=outsider)).status == 200


async def test_post_is_405_and_metrics_can_be_switched_off() -> None:
    wrapped = ReadyKit(Settings(ops_trust_loopback=True)).wrap(app)
    assert (await asgi_request(wrapped, "POST", "/metrics")).status == 405
    off = ReadyKit(Settings(metrics=False)).wrap(app)
    resp = await asgi_request(off, "GET", "/metrics")
    assert resp.body == b"x" * 10  # the app's own /metrics, if it has one
