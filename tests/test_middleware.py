"""The one ASGI layer over raw ASGI: request ids, records, error shaping, pass-through."""

import logging
from typing import Any

import pytest

from readykit import ReadyKit, Settings, current_request_id
from readykit.record import ROUTE_UNMATCHED
from readykit.testing import RecordCollector, asgi_request
from support import IDS_ONLY

pytestmark = pytest.mark.anyio


async def echo_id_app(scope, receive, send):  # type: ignore[no-untyped-def]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"x-request-id", b"app-set-this")],
        }
    )
    await send({"type": "http.response.body", "body": (current_request_id() or "").encode()})


@pytest.fixture(params=["defaults", "ids only"])
def config(request: pytest.FixtureRequest) -> Settings:
    """Each test of the id and error handling runs on both of the layer's paths."""
    return Settings(**IDS_ONLY) if request.param == "ids only" else Settings()


def wrapped(app, collector: RecordCollector | None = None, config: Settings | None = None):  # type: ignore[no-untyped-def]
    kit = ReadyKit(config or Settings())
    if collector is not None:
        kit.add_recorder(collector)
    return kit.wrap(app)


async def test_well_formed_request_id_is_kept_bound_and_echoed(config: Settings) -> None:
    resp = await asgi_request(
        wrapped(echo_id_app, config=config), "GET", "/", headers=[("X-Request-ID", "abc.DEF:1-2_3")]
    )
    assert resp.header("x-request-id") == "abc.DEF:1-2_3"
    assert resp.body == b"abc.DEF:1-2_3"
    assert [k for k, _ in resp.headers].count(b"x-request-id") == 1


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon", "ünïcode"])
async def test_malformed_request_id_is_replaced(bad: str, config: Settings) -> None:
    resp = await asgi_request(
        wrapped(echo_id_app, config=config), "GET", "/", headers=[("X-Request-ID", bad)]
    )
    rid = resp.header("x-request-id")
    assert rid is not None
    assert rid != bad
    assert len(rid) == 32
    assert resp.body == rid.encode()


async def test_record_is_handed_to_every_recorder() -> None:
    collector = RecordCollector()
    resp = await asgi_request(
        wrapped(echo_id_app, collector),
        "POST",
        "/things/7",
        body=[b"ab", b"cde"],
        headers=[("User-Agent", "pytest")],
        client=("192.0.2.1", 4000),
    )
    [record] = collector.records
    assert record.request_id == resp.header("x-request-id")
    assert (record.method, record.path, record.status) == ("POST", "/things/7", 201)
    assert record.route == ROUTE_UNMATCHED
    assert record.request_bytes == 5
    assert record.response_bytes == len(resp.body)
    assert record.client == "192.0.2.1"
    assert record.user_agent == "pytest"
    assert record.duration_s >= 0
    assert record.exception is None


async def test_failing_recorder_does_not_break_the_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kit = ReadyKit(Settings())

    def broken(record: object) -> None:
        raise ValueError("recorder bug")

    collector = RecordCollector()
    kit.add_recorder(broken)
    kit.add_recorder(collector)
    resp = await asgi_request(kit.wrap(echo_id_app), "GET", "/")
    assert resp.status == 201
    assert len(collector.records) == 1
    assert "recorder" in caplog.text


async def raising_app(scope, receive, send):  # type: ignore[no-untyped-def]
    raise KeyError("secret-internal-detail")


async def test_unhandled_exception_becomes_500_problem_with_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = RecordCollector()
    with caplog.at_level(logging.ERROR, logger="readykit"):
        resp = await asgi_request(
            wrapped(raising_app, collector), "GET", "/x", headers=[("X-Request-ID", "req-1")]
        )
    assert resp.status == 500
    assert resp.header("content-type") == "application/problem+json"
    assert resp.header("x-request-id") == "req-1"
    body = resp.json()
    assert body["request_id"] == "req-1"
    assert body["status"] == 500
    assert b"secret-internal-detail" not in resp.body
    assert b"Traceback" not in resp.body
    assert "Traceback" in caplog.text  # the traceback goes to the log
    assert "secret-internal-detail" in caplog.text
    [record] = collector.records
    assert record.status == 500
    assert isinstance(record.exception, KeyError)


async def test_unhandled_exception_becomes_500_problem_with_ids_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same answer when nothing records the request (the layer's lean path)."""
    with caplog.at_level(logging.ERROR, logger="readykit"):
        resp = await asgi_request(
            wrapped(raising_app, config=Settings(**IDS_ONLY)),
            "GET",
            "/x",
            headers=[("X-Request-ID", "req-2")],
        )
    assert resp.status == 500
    assert resp.header("content-type") == "application/problem+json"
    assert resp.json()["request_id"] == resp.header("x-request-id") == "req-2"
    assert b"secret-internal-detail" not in resp.body
    assert "secret-internal-detail" in caplog.text


async def plain_500_then_raise(scope, receive, send):  # type: ignore[no-untyped-def]
    """What Starlette's ServerErrorMiddleware does: send a 500 page, then re-raise."""
    await send(
        {"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/html")]}
    )
    await send({"type": "http.response.body", "body": b"<pre>Traceback ...</pre>"})
    raise RuntimeError("boom")


async def test_framework_500_page_is_replaced_by_problem(config: Settings) -> None:
    resp = await asgi_request(wrapped(plain_500_then_raise, config=config), "GET", "/")
    assert resp.status == 500
    assert resp.header("content-type") == "application/problem+json"
    assert b"Traceback" not in resp.body
    assert len([m for m in resp.messages if m["type"] == "http.response.start"]) == 1


async def json_500_then_raise(scope, receive, send):  # type: ignore[no-untyped-def]
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"error":"custom"}'})
    raise RuntimeError("boom")


async def test_apps_own_json_error_handler_is_kept(config: Settings) -> None:
    resp = await asgi_request(wrapped(json_500_then_raise, config=config), "GET", "/")
    assert resp.json() == {"error": "custom"}
    assert resp.header("x-request-id") is not None


def deliberate_500(content_type: bytes) -> Any:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"chosen"', "more_body": True})
        await send({"type": "http.response.body", "body": b': "by the app"}'})

    return app


async def test_a_json_500_sent_without_exception_passes_through(config: Settings) -> None:
    app = wrapped(deliberate_500(b"application/json"), config=config)
    resp = await asgi_request(app, "GET", "/")
    assert (resp.status, resp.body) == (500, b'{"chosen": "by the app"}')


async def test_any_other_500_sent_without_exception_is_the_kits_problem(config: Settings) -> None:
    """Django and Litestar answer an exception with their own page (a debug page, with the
    request's secrets, when DEBUG is on) without raising to the kit."""
    app = wrapped(deliberate_500(b"text/html; charset=utf-8"), config=config)
    resp = await asgi_request(app, "GET", "/", headers=[("X-Request-ID", "rid-page")])
    assert resp.status == 500
    assert resp.header("content-type") == "application/problem+json"
    assert resp.json()["request_id"] == "rid-page"
    assert b"chosen" not in resp.body


async def json_500_cut_off(scope, receive, send):  # type: ignore[no-untyped-def]
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"error": "par', "more_body": True})
    raise RuntimeError("mid-body")


async def test_a_json_500_cut_off_by_an_exception_is_the_kits_problem(config: Settings) -> None:
    resp = await asgi_request(wrapped(json_500_cut_off, config=config), "GET", "/")
    assert resp.status == 500
    assert resp.header("content-type") == "application/problem+json"
    assert resp.json()["status"] == 500


async def stream_then_raise(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("mid-stream")


async def test_error_after_response_started_is_reraised_for_the_server(config: Settings) -> None:
    with pytest.raises(RuntimeError, match="mid-stream"):
        await asgi_request(wrapped(stream_then_raise, config=config), "GET", "/")


async def test_non_http_scopes_pass_through(config: Settings) -> None:
    seen: list[str] = []

    async def ws_app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["type"])

    await wrapped(ws_app, config=config)(
        {"type": "websocket", "path": "/ws", "headers": []}, None, None
    )
    assert seen == ["websocket"]


async def test_principal_resolver_feeds_the_record() -> None:
    class User:
        identity = "user:7"

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        scope["user"] = User()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    collector = RecordCollector()
    kit = ReadyKit(Settings())
    kit.add_recorder(collector)
    await asgi_request(kit.wrap(app), "GET", "/")
    custom = ReadyKit(Settings(), principal=lambda scope: "api-key:9")
    custom.add_recorder(collector)
    await asgi_request(custom.wrap(app), "GET", "/")
    assert [r.principal for r in collector.records] == ["user:7", "api-key:9"]


async def test_guards_wrap_in_order_lowest_outermost() -> None:
    seen: list[str] = []

    def guard(name: str):  # type: ignore[no-untyped-def]
        def factory(inner):  # type: ignore[no-untyped-def]
            async def layer(scope, receive, send):  # type: ignore[no-untyped-def]
                seen.append(name)
                await inner(scope, receive, send)

            return layer

        return factory

    kit = ReadyKit(Settings())
    kit.add_guard(50, guard("cache"))
    kit.add_guard(10, guard("headers"))
    kit.add_guard(20, guard("ratelimit"))
    await asgi_request(kit.wrap(echo_id_app), "GET", "/")
    assert seen == ["headers", "ratelimit", "cache"]


def test_a_guard_added_after_wrap_raises_instead_of_being_ignored() -> None:
    from readykit import ConfigurationError, ReadyKit, Settings

    kit = ReadyKit(Settings(records=False, configure_logging=False))

    async def app(scope: object, receive: object, send: object) -> None: ...

    kit.wrap(app)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="add_guard after wrap"):
        kit.add_guard(1, lambda inner: inner)


async def test_the_principal_is_resolved_once_per_request_and_shared(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Rate limit (by principal), audit and the record all ask; the resolver runs once."""
    calls: list[str] = []

    def principal(scope):  # type: ignore[no-untyped-def]
        calls.append(scope["path"])
        return "user:42"

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    settings = Settings(
        configure_logging=False,
        store_url=f"sqlite:///{tmp_path}/r.db",
        rate_limits={"default": "100/minute"},
        rate_limit_by="principal",
    )
    collector = RecordCollector()
    kit = ReadyKit(settings, principal=principal)
    kit.add_recorder(collector)
    wrapped_app = kit.wrap(app)
    from readykit.testing import lifespan

    async with lifespan(wrapped_app):
        await asgi_request(wrapped_app, "POST", "/orders")
        assert kit.records is not None
        await kit.records.writer.flush()
        events = await kit.records.store.audit()
    assert calls == ["/orders"]
    assert [e["actor"] for e in events] == ["user:42"]
    assert [r.principal for r in collector.records] == ["user:42"]


async def test_a_guard_runs_only_for_the_requests_its_when_accepts() -> None:
    seen: list[str] = []

    def factory(inner):  # type: ignore[no-untyped-def]
        async def layer(scope, receive, send):  # type: ignore[no-untyped-def]
            seen.append(f"{scope['method']} {scope['path']}")
            await inner(scope, receive, send)

        return layer

    kit = ReadyKit(Settings(records=False, configure_logging=False))
    kit.add_guard(60, factory, when=lambda scope: scope["method"] == "POST")
    app = kit.wrap(echo_id_app)
    for method in ("GET", "POST", "GET", "POST"):
        await asgi_request(app, method, "/x")
    assert seen == ["POST /x", "POST /x"]


async def test_a_refusal_by_a_stage_is_dressed_by_the_stages_before_it_only() -> None:
    """A 429 gets the security headers (an outer stage) and its own rate-limit headers; a 413
    from a later stage carries the rate-limit headers too; the app never runs."""
    ran: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        ran.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    kit = ReadyKit(
        Settings(
            records=False,
            configure_logging=False,
            rate_limits={"default": "1/minute"},
            max_body_bytes=10,
        )
    )
    wrapped_app = kit.wrap(app)
    too_big = await asgi_request(
        wrapped_app, "POST", "/x", body=b"x" * 11, headers=[("Content-Length", "11")]
    )
    refused = await asgi_request(wrapped_app, "GET", "/x")
    assert (too_big.status, refused.status) == (413, 429)
    for response in (too_big, refused):
        names = [k.lower() for k, _ in response.headers]  # bytes
        assert names.count(b"x-content-type-options") == 1
        assert names.count(b"ratelimit") == 1
        assert names.count(b"x-request-id") == 1
    assert ran == []
