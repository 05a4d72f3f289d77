"""The logging pipeline end to end: request ids everywhere, access log, trace ids, bad values."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from io import StringIO
from typing import Any

import pytest
import structlog
import time_machine
from fastapi import BackgroundTasks, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.logging import AccessLog, configure_logging
from readykit.logging.setup import flush_access_log, json_lane
from readykit.record import RequestRecord
from readykit.testing import asgi_request

pytestmark = pytest.mark.anyio

RID = "req-abc.123"


class Boom(Exception):
    pass


def lines(buf: StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def events(buf: StringIO, name: str) -> list[dict[str, Any]]:
    return [e for e in lines(buf) if e.get("event") == name]


@pytest.fixture
def buf() -> StringIO:
    out = StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    return out


def build_app() -> Any:
    app = FastAPI()
    log = structlog.get_logger("app")
    std = logging.getLogger("app.std")

    def dependency() -> str:
        log.info("in dependency")
        return "dep"

    def background(item: str) -> None:
        std.info("in background task %s", item)

    @app.exception_handler(Boom)
    async def on_boom(request: Request, exc: Boom) -> JSONResponse:
        log.warning("in exception handler")
        return JSONResponse({"detail": "boom"}, status_code=409)

    @app.get("/async/{item}")
    async def async_endpoint(
        item: str, tasks: BackgroundTasks, dep: str = Depends(dependency)
    ) -> dict[str, str]:
        log.info("in async handler", item=item)
        std.info("stdlib in async handler")
        tasks.add_task(background, item)
        return {"item": item}

    @app.get("/sync")
    def sync_endpoint() -> dict[str, str]:
        log.info("in sync handler")
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise Boom

    kit = ReadyKit(Settings(configure_logging=False))
    return kit.wrap(app)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/async/7",
            [
                "in dependency",
                "in async handler",
                "stdlib in async handler",
                "in background task 7",
            ],
        ),
        ("/sync", ["in sync handler"]),
        ("/boom", ["in exception handler"]),
    ],
)
async def test_request_id_is_on_every_event_of_the_request(
    buf: StringIO, path: str, expected: list[str]
) -> None:
    app = build_app()
    response = await asgi_request(app, "GET", path, headers=[("X-Request-ID", RID)])
    assert response.status in (200, 409)
    seen = {e["event"]: e for e in lines(buf)}
    for name in expected:
        assert seen[name]["request_id"] == RID, seen[name]
    assert seen["request"]["request_id"] == RID


async def test_events_outside_a_request_have_no_request_id(buf: StringIO) -> None:
    app = build_app()
    await asgi_request(app, "GET", "/sync", headers=[("X-Request-ID", RID)])
    structlog.get_logger("app").info("after the request")
    (after,) = events(buf, "after the request")
    assert "request_id" not in after


async def test_access_log_has_one_event_per_request_with_all_fields(buf: StringIO) -> None:
    app = build_app()
    await asgi_request(
        app,
        "GET",
        "/async/42",
        headers=[("X-Request-ID", RID), ("User-Agent", "probe/1.0")],
        client=("127.0.0.1", 40000),
    )
    (access,) = events(buf, "request")
    assert access["method"] == "GET"
    assert access["route"] == "/async/{item}"
    assert access["path"] == "/async/42"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    assert access["bytes"] == len(b'{"item":"42"}')
    assert access["client"] == "127.0.0.1"
    assert access["user_agent"] == "probe/1.0"
    assert access["request_id"] == RID
    assert access["level"] == "info"
    assert access["logger"] == "readykit.access"


async def test_access_log_level_follows_status(buf: StringIO) -> None:
    app = build_app()
    await asgi_request(app, "GET", "/boom")
    await asgi_request(app, "GET", "/nowhere")
    levels = {e["path"]: e["level"] for e in events(buf, "request")}
    assert levels == {"/boom": "warning", "/nowhere": "warning"}


async def test_access_log_can_be_switched_off(buf: StringIO) -> None:
    app = ReadyKit(Settings(configure_logging=False, access_log=False)).wrap(FastAPI())
    await asgi_request(app, "GET", "/nowhere")
    assert events(buf, "request") == []


async def test_probes_and_scrapes_can_be_left_out(buf: StringIO) -> None:
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            records=False,
            ops_token="t",
            exclude_paths=["^/health", "^/metrics$"],
        )
    )
    app = kit.wrap(FastAPI())
    for path in ("/health/live", "/health/ready", "/health", "/metrics", "/nowhere"):
        await asgi_request(app, "GET", path, headers=[("authorization", "Bearer t")])
    assert [e["path"] for e in events(buf, "request")] == ["/nowhere"]
    scraped = await asgi_request(app, "GET", "/metrics", headers=[("authorization", "Bearer t")])
    routes = set(re.findall(r'http_route="([^"]*)"', scraped.body.decode()))
    assert routes == {"UNMATCHED"}


def test_a_bad_exclude_pattern_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings(configure_logging=False, records=False, exclude_paths=["(unclosed"])
    assert str(refused.value).startswith(
        "READYKIT_EXCLUDE_PATHS: '(unclosed' is not a regular expression"
    )


async def test_trace_and_span_ids_of_the_active_span(buf: StringIO) -> None:
    tracer = TracerProvider().get_tracer("test")
    app = build_app()
    with tracer.start_as_current_span("server") as span:
        await asgi_request(app, "GET", "/sync")
    ctx = span.get_span_context()
    for event in (*events(buf, "in sync handler"), *events(buf, "request")):
        assert event["trace_id"] == format(ctx.trace_id, "032x")
        assert event["span_id"] == format(ctx.span_id, "016x")


async def test_no_trace_ids_without_a_span(buf: StringIO) -> None:
    await asgi_request(build_app(), "GET", "/sync")
    assert all("trace_id" not in e for e in lines(buf))


class Unserialisable:
    def __repr__(self) -> str:
        return "<Unserialisable password=hunter2hunter2>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_values_that_are_not_json_are_rendered_with_repr_and_redacted(buf: StringIO) -> None:
    log = structlog.get_logger("app")
    log.info("odd values", thing=Unserialisable(), broken=BrokenRepr(), raw=b"\xff token=abcdefgh")
    logging.getLogger("app.std").info("stdlib %s", Unserialisable())
    (event,) = events(buf, "odd values")
    assert event["thing"] == "<Unserialisable password=[REDACTED]>"
    assert event["broken"].startswith("<unrepresentable BrokenRepr")
    assert "abcdefgh" not in event["raw"]
    assert "hunter2" not in buf.getvalue()


def test_exceptions_are_formatted_then_redacted(buf: StringIO) -> None:
    try:
        raise ValueError("connect failed for postgresql://app:s3cr3tpw@db/prod")
    except ValueError:
        logging.getLogger("app.std").exception("query failed")
    (event,) = events(buf, "query failed")
    assert "ValueError" in event["exception"]
    assert "s3cr3tpw" not in buf.getvalue()


@pytest.mark.parametrize("name", ["uvicorn.error", "sqlalchemy.engine.Engine", "my.app"])
def test_stdlib_loggers_go_through_the_same_pipeline(buf: StringIO, name: str) -> None:
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    try:
        logger.info("hello from %s", name)
    finally:
        logger.setLevel(logging.NOTSET)
    (event,) = events(buf, f"hello from {name}")
    assert event["logger"] == name
    assert event["level"] == "info"
    assert "timestamp" in event


def test_console_renderer_when_asked() -> None:
    out = StringIO()
    configure_logging(Settings(log_format="console"), stream=out)
    structlog.get_logger("app").info("console please", key="value")
    text = out.getvalue()
    assert "console please" in text
    assert "key" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_configuring_twice_does_not_duplicate_lines() -> None:
    out = StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    configure_logging(Settings(log_format="json"), stream=out)
    logging.getLogger("app").warning("once")
    assert len(events(out, "once")) == 1


def test_console_handlers_others_installed_are_replaced_and_the_rest_kept(tmp_path: Any) -> None:
    """A console handler someone else put on the root logger (`logging.basicConfig`,
    Litestar's `LoggingConfig`, Litestar's queue handler as Python 3.12's dictConfig builds
    it) or on Django's loggers (its default LOGGING) would print every line a second time,
    unredacted: replaced. A file handler, and Django's mail to ADMINS, stay."""
    import copy
    import logging.config
    import logging.handlers
    import queue
    import sys

    from django.utils.log import DEFAULT_LOGGING

    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    to_file = logging.FileHandler(tmp_path / "app.log")
    lines_queue: queue.Queue[logging.LogRecord] = queue.Queue()
    queued = logging.handlers.QueueHandler(lines_queue)
    queued.listener = logging.handlers.QueueListener(  # type: ignore[attr-defined]
        lines_queue, logging.StreamHandler(sys.stdout)
    )
    django_loggers = [logging.getLogger(name) for name in ("django", "django.server")]
    saved = [(lg.handlers[:], lg.propagate) for lg in django_loggers]
    config = copy.deepcopy(DEFAULT_LOGGING)  # its mail handler, without Django's settings:
    config["handlers"]["mail_admins"] = {"class": "logging.NullHandler"}  # stands for any other
    logging.config.dictConfig(config)
    for handler in (console, to_file, queued):
        root.addHandler(handler)
    try:
        out = StringIO()
        configure_logging(Settings(log_format="json"), stream=out)
        assert console not in root.handlers
        assert queued not in root.handlers
        assert to_file in root.handlers
        django, server = django_loggers
        assert [type(h).__name__ for h in django.handlers] == ["NullHandler"]
        assert (server.handlers, server.propagate) == ([], True)
        logging.getLogger("app").warning("token=ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8")
        assert len(out.getvalue().splitlines()) == 1
        assert "[REDACTED]" in out.getvalue()
    finally:
        root.removeHandler(to_file)
        to_file.close()
        for lg, (handlers, propagate) in zip(django_loggers, saved, strict=True):
            lg.handlers[:], lg.propagate = handlers, propagate


async def test_access_fast_lane_writes_what_structlog_would(buf: StringIO) -> None:
    await asgi_request(build_app(), "GET", "/sync", headers=[("X-Request-ID", RID)])
    (lane,) = events(buf, "request")
    fields = {k: v for k, v in lane.items() if k not in ("event", "timestamp")}
    structlog.get_logger("readykit.access").info("via structlog", **fields)
    (slow,) = events(buf, "via structlog")
    assert set(slow) == set(lane)
    assert {k: v for k, v in slow.items() if k not in ("event", "timestamp")} == fields


async def test_access_log_redacts_and_carries_bound_context(buf: StringIO) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4"
    structlog.contextvars.bind_contextvars(tenant="t-1", api_key="k-12345678")
    try:
        await asgi_request(build_app(), "GET", f"/async/{jwt}", headers=[("User-Agent", "x")])
    finally:
        structlog.contextvars.clear_contextvars()
    (access,) = events(buf, "request")
    assert access["tenant"] == "t-1"
    assert access["api_key"] == "[REDACTED]"
    assert access["path"] == "/async/[REDACTED]"
    assert jwt not in buf.getvalue()


def test_a_method_a_client_made_up_is_redacted_like_its_path() -> None:
    """h11 passes any token as the method (`ghp_... /x HTTP/1.1`); it is what a client sent."""
    out = StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    AccessLog()(request_record("/x")._replace(method=token))
    (access,) = [e for e in lines(out) if e["event"] == "request"]
    assert access["method"] == "[REDACTED]"
    assert token not in out.getvalue()


class CountingStream(StringIO):
    """A stream that counts its flushes (each a write system call on a real file or pipe)."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


async def test_access_lines_of_a_loop_turn_share_one_flush() -> None:
    """Each line is in the stream's buffer when its request ends; the stream is flushed once
    per turn of the event loop, not once per line, and by the end of that turn."""
    out = CountingStream()
    configure_logging(Settings(log_format="json"), stream=out)
    access = AccessLog()
    for i in range(5):
        access(request_record(f"/items/{i}"))
    assert [e["path"] for e in lines(out) if e["event"] == "request"] == [
        f"/items/{i}" for i in range(5)
    ]
    assert out.flushes == 0  # nothing forced to the OS on the request path
    await asyncio.sleep(0)  # one turn of the loop, not a wait for time to pass
    assert out.flushes == 1


def test_without_a_running_loop_each_line_is_flushed_at_once() -> None:
    out = CountingStream()
    configure_logging(Settings(log_format="json"), stream=out)
    AccessLog()(request_record("/items/1"))
    assert out.flushes == 1


def request_record(path: str) -> RequestRecord:
    return RequestRecord(
        request_id="r1",
        method="GET",
        route="/items/{id}",
        path=path,
        status=200,
        started_at=0.0,
        duration_s=0.001,
        request_bytes=0,
        response_bytes=2,
        client="127.0.0.1",
        user_agent="ua",
        scheme="http",
        principal=None,
    )


_MICROSECONDS = re.compile(r"\.\d{6}(?=Z\")")
_TIMESTAMP = re.compile(r'"timestamp": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z)"')
_secrets = st.sampled_from(
    [
        "",
        "?token=ghp_1234567890abcdefghijklmnopqrstuvwx12",
        "/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.sig1",
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    path=st.builds(lambda a, b: a + b, st.text(max_size=20), _secrets),
    user_agent=st.one_of(st.none(), st.text(max_size=30), _secrets),
    request_id=st.one_of(st.text(min_size=1, max_size=20), _secrets.filter(bool)),
    method=st.sampled_from(["GET", "POST", "M-SEARCH"]),
    route=st.sampled_from(["/items/{id}", '/q/"x"', "/ünï"]),
    status=st.sampled_from([200, 302, 404, 429, 500]),
    duration_s=st.floats(0, 100, allow_nan=False),
    client=st.one_of(st.none(), st.just("::1"), st.just("10.0.0.7")),
    # the clock, frozen: sometimes on a whole second (isoformat writes no fraction then)
    now=st.one_of(st.just(1_800_000_000.0), st.floats(1_700_000_000, 1_900_000_000)),
)
def test_the_assembled_access_line_is_the_one_the_pipeline_renders(
    now: float, **fields: Any
) -> None:
    """The fast line, assembled from escaped parts, equals byte for byte the line the lane
    renders from the event as a dict: same keys, order, escaping, redaction, timestamp."""
    with time_machine.travel(now, tick=False):
        _assembled_and_rendered(fields)


def _assembled_and_rendered(fields: dict[str, Any]) -> None:
    record = RequestRecord(
        scheme="http", principal=None, started_at=0.0, request_bytes=3, response_bytes=7,
        **fields,
    )  # fmt: skip
    fast, general = StringIO(), StringIO()
    configure_logging(Settings(log_format="json"), stream=fast)
    AccessLog()(record)
    configure_logging(Settings(log_format="json"), stream=general)
    lane = json_lane()
    assert lane is not None
    event = {
        "method": record.method, "route": record.route, "path": record.path,
        "status": record.status, "duration_ms": round(record.duration_s * 1000, 3),
        "bytes": 7, "request_bytes": 3, "client": record.client,
        "user_agent": record.user_agent, "request_id": record.request_id, "event": "request",
    }  # fmt: skip
    lane.emit(
        logging.ERROR if record.status >= 500 else logging.WARNING if record.status >= 400
        else logging.INFO,
        "readykit.access", event, scan=("path", "user_agent", "request_id"),
    )  # fmt: skip
    flush_access_log()
    assert _TIMESTAMP.search(fast.getvalue()), fast.getvalue()
    # the microseconds aside (two reads of the clock round its last digit each their own way):
    # the same second, and a fraction on both lines or on neither
    assert _MICROSECONDS.sub(".u", fast.getvalue()) == _MICROSECONDS.sub(".u", general.getvalue())
    assert "ghp_1234567890" not in fast.getvalue()
    assert "eyJzdWIiOjF9" not in fast.getvalue()
