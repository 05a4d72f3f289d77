"""Audited means durable: the last body message of a mutating request is sent only once its
audit event is committed, and concurrent requests share the commits (group commit)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit._types import ASGIApp, Message
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


def make(tmp_path: Path, endpoint: Any = create, **settings: Any) -> tuple[ReadyKit, ASGIApp]:
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            store_url=f"sqlite:///{tmp_path}/records.db",
            spill_path=str(tmp_path / "spill.jsonl"),
            records_flush_s=3600,  # the timer never flushes: only the commit path writes
            **settings,
        )
    )
    return kit, kit.wrap(Starlette(routes=[Route("/quotes/{id}", endpoint, methods=["POST"])]))


def stored_status(db: Path, request_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:  # another connection: sees only what is committed
        return conn.execute(
            "SELECT action, resource, status FROM rk_audit WHERE request_id = ?", (request_id,)
        ).fetchall()


async def test_the_last_body_message_waits_for_the_audit_commit(tmp_path: Path) -> None:
    _, app = make(tmp_path)
    db = tmp_path / "records.db"
    seen_at_last_body: list[list[tuple[Any, ...]]] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            seen_at_last_body.append(stored_status(db, "req-1"))

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/quotes/7", "raw_path": b"/quotes/7",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "headers": [(b"x-request-id", b"req-1")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "asgi": {"version": "3.0"}}  # fmt: skip
    async with lifespan(app):
        await app(scope, receive, send)
    assert seen_at_last_body == [[("POST /quotes/{id}", "/quotes/7", 201)]]


async def test_concurrent_requests_share_commits(tmp_path: Path) -> None:
    kit, app = make(tmp_path)
    async with lifespan(app):
        responses = await asyncio.gather(
            *(asgi_request(app, "POST", f"/quotes/{n}") for n in range(50))
        )
        assert {r.status for r in responses} == {201}
        writes = kit.metrics.registry.get_sample_value("readykit_records_flush_seconds_count")
        assert writes is not None
        assert writes < 50  # group commit: fewer writes than requests
    with sqlite3.connect(tmp_path / "records.db") as conn:
        assert conn.execute("SELECT count(*) FROM rk_audit").fetchone() == (50,)


async def test_async_durability_answers_before_the_write(tmp_path: Path) -> None:
    kit, app = make(tmp_path, audit_durability="async")
    assert kit.records is not None
    async with lifespan(app):
        response = await asgi_request(app, "POST", "/quotes/1", headers=[("X-Request-Id", "a-1")])
        assert response.status == 201
        assert stored_status(tmp_path / "records.db", "a-1") == []  # queued, not yet written
        assert len(kit.records.writer) == 1
    assert stored_status(tmp_path / "records.db", "a-1") == [
        ("POST /quotes/{id}", "/quotes/1", 201)
    ]


def post_scope(path: str = "/quotes/7", request_id: bytes = b"req-1") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
            "headers": [(b"x-request-id", request_id)], "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80), "asgi": {"version": "3.0"}}  # fmt: skip


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_no_part_of_a_single_body_answer_is_sent_before_the_commit(tmp_path: Path) -> None:
    _, app = make(tmp_path)
    db = tmp_path / "records.db"
    seen: list[tuple[str, list[tuple[Any, ...]]]] = []

    async def send(message: Message) -> None:
        seen.append((message["type"], stored_status(db, "req-1")))

    async with lifespan(app):
        await app(post_scope(), no_body, send)
    row = [("POST /quotes/{id}", "/quotes/7", 201)]
    assert seen == [("http.response.start", row), ("http.response.body", row)]


async def test_a_streamed_answer_waits_only_at_its_last_chunk(tmp_path: Path) -> None:
    kit = ReadyKit(
        Settings(configure_logging=False, access_log=False, records_flush_s=3600,
                 store_url=f"sqlite:///{tmp_path}/records.db",
                 spill_path=str(tmp_path / "spill.jsonl"))
    )  # fmt: skip
    db = tmp_path / "records.db"

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b", "more_body": False})

    seen: list[tuple[bytes, int]] = []

    async def send(message: Message) -> None:
        seen.append((message.get("body", b"start"), len(stored_status(db, "req-1"))))

    app = kit.wrap(streaming)
    async with lifespan(app):
        await app(post_scope(), no_body, send)
    assert seen == [(b"start", 0), (b"a", 0), (b"b", 1)]


async def test_work_after_the_answer_does_not_hold_the_answer_back(tmp_path: Path) -> None:
    answered = asyncio.Event()

    async def after_the_answer() -> None:
        await answered.wait()  # would never end if the answer waited for the app to return

    async def create_then_work(request: Request) -> JSONResponse:
        later = BackgroundTask(after_the_answer)
        return JSONResponse({"ok": True}, status_code=201, background=later)

    _, app = make(tmp_path, create_then_work)

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    async with lifespan(app):
        await asyncio.wait_for(app(post_scope(), no_body, send), 30)  # a hang fails, not slows
    assert answered.is_set()
    assert stored_status(tmp_path / "records.db", "req-1") == [
        ("POST /quotes/{id}", "/quotes/7", 201)
    ]


async def test_an_event_that_cannot_be_made_durable_cuts_the_answer_short(
    tmp_path: Path,
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    kit = ReadyKit(
        Settings(configure_logging=False, access_log=False, records_flush_s=3600,
                 store_url=f"sqlite:///{not_a_dir}/records.db",  # cannot be opened
                 spill_path=str(tmp_path / "spill.jsonl"), audit_key="k" * 32,
                 store_required=False)
    )  # fmt: skip
    app = kit.wrap(Starlette(routes=[Route("/quotes/{id}", create, methods=["POST"])]))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async with lifespan(app):
        assert kit.records is not None
        kit.records.writer.spill_path = not_a_dir / "spill.jsonl"  # nor can the spill file
        await app(post_scope(), no_body, send)
    # the app's 201 never went out, not even its status line: the kit answered 500 instead
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [500]
    assert b'{"ok":true}' not in b"".join(m.get("body", b"") for m in sent)


async def test_a_server_that_makes_sends_wait_still_gets_each_answer_whole_after_its_commit(
    tmp_path: Path,
) -> None:
    # the held answer goes out from the writer as the commit lands; a send that suspends (a
    # server applying back-pressure) finishes in a task, and the request ends only after it
    _, app = make(tmp_path)
    db = tmp_path / "records.db"

    async def one(n: int) -> list[tuple[str, int]]:
        seen: list[tuple[str, int]] = []

        async def send(message: Message) -> None:
            await asyncio.sleep(0)  # a bare yield
            drained = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(drained.set_result, None)
            await drained  # and a future
            seen.append((message["type"], len(stored_status(db, f"req-{n}"))))

        await app(post_scope(f"/quotes/{n}", f"req-{n}".encode()), no_body, send)
        assert seen == [("http.response.start", 1), ("http.response.body", 1)]
        return seen

    async with lifespan(app):
        await asyncio.gather(*(one(n) for n in range(20)))


async def test_a_send_that_fails_after_the_commit_fails_the_request(tmp_path: Path) -> None:
    _, app = make(tmp_path)

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("the client is gone")

    async with lifespan(app):
        with pytest.raises(OSError, match="the client is gone"):
            await app(post_scope(), no_body, send)
    assert stored_status(tmp_path / "records.db", "req-1") == [
        ("POST /quotes/{id}", "/quotes/7", 201)
    ]


async def never_done() -> None:
    await asyncio.Event().wait()


async def create_then_keep_working(request: Request) -> JSONResponse:
    """Answers, then works on (a background task) until the request is cancelled."""
    return JSONResponse({"ok": True}, status_code=201, background=BackgroundTask(never_done))


@pytest.mark.parametrize(
    "endpoint",
    [create, create_then_keep_working],
    ids=["waiting-for-its-commit", "app-still-working-after-its-answer"],
)
async def test_a_request_abandoned_while_it_waits_for_its_commit_is_not_answered_later(
    tmp_path: Path, endpoint: Any
) -> None:
    kit, app = make(tmp_path, endpoint)
    sent: list[str] = []

    async def send(message: Message) -> None:
        sent.append(message["type"])

    async with lifespan(app):
        assert kit.records is not None
        writer = kit.records.writer
        async with writer._lock:  # holds the next commit back
            request = asyncio.ensure_future(app(post_scope(), no_body, send))
            for _ in range(100):  # a few turns of the loop: the app runs and queues its event
                if len(writer):
                    break
                await asyncio.sleep(0)
            assert len(writer) == 1  # the request now waits for its commit
            request.cancel()  # as a server does when the client goes away
            with pytest.raises(asyncio.CancelledError):
                await request
        await writer.flush()  # the event is still committed (it was queued)
    assert sent == []  # ... but nothing is sent to the abandoned request
    assert stored_status(tmp_path / "records.db", "req-1") == [
        ("POST /quotes/{id}", "/quotes/7", 201)
    ]
