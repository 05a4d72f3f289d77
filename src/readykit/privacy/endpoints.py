"""The subject's endpoints, served by the kit in front of the app:

- `POST /privacy/export` → 202 with the job's id and status URL (one a day per subject);
- `GET /privacy/export/{id}` → the job's status and, when ready, a signed, expiring
  `download_url`;
- `GET /privacy/export/{id}/download?expires=...&sig=...` → the ZIP;
- `POST /privacy/erase` → a confirmation token; `POST /privacy/erase` with
  `{"confirm": token}` → the erasers run, their report. A token works once (a replay is
  refused 403, like an expired one); erasing deletes the subject's exports (their status
  becomes `erased`, their download links answer 410).

Served only once the app registered an exporter or an eraser. Only the authenticated subject
sees its jobs: another subject's id or a forged or expired link is refused (404/403
problem+json) and audited; a request with no login (or an empty subject id) is refused (401)
and counted in `readykit_privacy_refusals_total`, not audited, so strangers cannot grow the
audit log; so is a subject id that is not valid Unicode (400: it cannot be hashed).
Every audit event names the subject by `Keys.actor` (a keyed hash), never the raw id, so the
audit trail does not name a person once they are erased.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import Counter

from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.body import BodyTooLarge, read_body
from readykit.privacy.jobs import Jobs
from readykit.privacy.keys import InvalidSubject, Keys, utf8
from readykit.problem import send_bytes, send_problem
from readykit.records.audit import Audit
from readykit.records.store import StoreUnavailable
from readykit.route_table import route_path

logger = logging.getLogger("readykit.privacy")

PREFIX = "/privacy/"
CONFIRM_TTL_S = 600
MAX_BODY = 4096
CHUNK = 64 * 1024
BAD_SUBJECT = (
    "Your user id (the request's subject) is not valid Unicode text (it holds a lone "
    "surrogate), so it cannot be used for your data; ask the service's operators."
)
STORE_DOWN = (
    "The service's storage is unavailable; nothing was done. Try again in a minute (an erase "
    "confirm token stays valid for it)."
)
ERASED_UNRECORDED = (
    "Your data was erased, but the service's storage failed before the erasure was fully "
    "recorded. Ask to erase again in a minute (repeating it is safe) to complete it."
)
RETRY_AFTER = b"60"
MISSING_ARCHIVE = (
    "This export's archive is not available on this server (it was built on another one). "
    "Try the link again later, or ask for a new export; quote the export id if it persists."
)


def privacy_own_path(path: str) -> bool:
    """Whether these endpoints answer `path` (a route path) when they are served: `/privacy/
    export` or `/privacy/erase` and up to two segments under them, every method (a wrong one
    is their 405). They audit each answer themselves; other paths under /privacy/ are the
    app's."""
    if not path.startswith(PREFIX):
        return False
    parts = path[len(PREFIX) :].split("/")
    return parts[0] in ("export", "erase") and len(parts) <= 3


def _ascii_digits(text: str) -> bool:
    """Only 0-9 ("²".isdigit() is True, and int() refuses it)."""
    return text.isascii() and text.isdigit()


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    # send_bytes says `cache-control: no-store`: no cache keeps links or erase tokens
    await send_bytes(send, status, json.dumps(body).encode(), b"application/json")


class PrivacyEndpoints:
    """Pure-ASGI layer answering `/privacy/...`; everything else goes to the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        jobs: Jobs,
        keys: Keys,
        audit: Audit,
        principal: Callable[[Scope], str | None],
        refusals: Counter | None = None,
    ) -> None:
        self.app = app
        self.jobs = jobs
        self.keys = keys
        self.audit = audit
        self.principal = principal
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        registry = self.jobs.privacy
        if not (registry.exporters or registry.erasers):  # nothing to serve: the app's path
            await self.app(scope, receive, send)
            return
        if not privacy_own_path(path):
            await self.app(scope, receive, send)
            return
        subject = self.principal(scope)
        if not subject:  # "" too: an anonymous user's empty id names nobody (or everybody)
            await self._refuse(send, 401, "Log in to see or download your data.", path, None)
            return
        try:
            utf8(subject)
        except InvalidSubject:  # unhashable, so unaudited: counted like the anonymous ones
            await self._refuse(send, 400, BAD_SUBJECT, path, None)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._dispatch(scope, receive, tracked, subject, path)
        except StoreUnavailable:
            if started:
                raise
            # a 503 the client can retry, not a 500: nothing was done (an erasure that ran
            # answers its own 503); the store's message may quote its DSN, so it is not logged
            logger.warning("privacy %s %s: the store is unavailable (503)", scope["method"], path)
            await send_problem(send, 503, STORE_DOWN, headers=[(b"retry-after", RETRY_AFTER)])

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, subject: str, path: str
    ) -> None:
        method = scope["method"]
        parts = path[len(PREFIX) :].split("/")
        root = scope.get("root_path", "")  # the links this answers are the client's URLs
        if parts == ["export"] and method == "POST":
            await self._create(send, subject, root)
        elif len(parts) == 2 and parts[0] == "export" and method == "GET":
            await self._status(send, subject, parts[1], path, root)
        elif len(parts) == 3 and parts[2] == "download" and method == "GET":
            await self._download(scope, send, subject, parts[1], path)
        elif parts == ["erase"] and method == "POST":
            await self._erase(receive, send, subject)
        else:  # audited here, by the keyed hash: auto-audit leaves these paths to this layer
            await self._refuse(send, 405, f"{method} is not allowed on {path}.", path, subject)

    async def _refuse(
        self, send: Send, status: int, detail: str, path: str, subject: str | None
    ) -> None:
        if subject is None:  # anyone can send these: counted, never a row each
            if self.refusals is not None:
                self.refusals.labels(str(status)).inc()
            await send_problem(send, status, detail)
            return
        await self.audit.record(
            "privacy.refused",
            resource=path,
            actor=self.keys.actor(subject),
            details={"status": status, "reason": detail},
        )
        await send_problem(send, status, detail)

    async def _create(self, send: Send, subject: str, root: str) -> None:
        job = await self.jobs.request(subject)
        if job is None:
            await self.audit.record("privacy.export.limited", actor=self.keys.actor(subject))
            await send_problem(
                send,
                429,
                "You asked for an export in the last day; check its status or try tomorrow.",
                headers=[(b"retry-after", b"86400")],
            )
            return
        await self.audit.record("privacy.export.request", resource=f"export:{job['id']}",
                                actor=self.keys.actor(subject), durable=True)  # fmt: skip
        await _send_json(
            send,
            202,
            {
                "id": job["id"],
                "status": job["status"],
                "status_url": f"{root}/privacy/export/{job['id']}",
            },
        )

    async def _own_job(self, subject: str, job_id: str) -> dict[str, Any] | None:
        job = await self.jobs.get(job_id)
        if job is None or job["subject_hash"] != self.keys.subject_hash(subject):
            return None  # another subject's job looks exactly like no job
        return job

    async def _status(self, send: Send, subject: str, job_id: str, path: str, root: str) -> None:
        job = await self._own_job(subject, job_id)
        if job is None:
            await self._refuse(send, 404, "No such export.", path, subject)
            return
        body: dict[str, Any] = {k: job[k] for k in ("id", "status", "created") if k in job}
        if job["status"] == "failed":
            body["error"] = job.get("error")
        if job["status"] == "ready":
            expires = str(int(job["expires"]))
            sig = self.keys.sign("download", job["id"], expires)
            link = f"{root}/privacy/export/{job['id']}/download?expires={expires}&sig={sig}"
            body.update(expires=job["expires"], counts=job.get("counts"), download_url=link)
        await _send_json(send, 200, body)

    async def _download(
        self, scope: Scope, send: Send, subject: str, job_id: str, path: str
    ) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        expires = (query.get("expires") or [""])[0]
        sig = (query.get("sig") or [""])[0]
        if not _ascii_digits(expires) or not sig.isascii() or not job_id.isascii():
            await self._refuse(send, 403, "This download link is not valid.", path, subject)
            return
        if not self.keys.verify(sig, "download", job_id, expires):
            await self._refuse(send, 403, "This download link is not valid.", path, subject)
            return
        if int(expires) < time.time():
            await self._refuse(send, 403, "This download link has expired.", path, subject)
            return
        job = await self._own_job(subject, job_id)
        if job is not None and job["status"] == "erased":
            await self._refuse(send, 410, "This export was deleted when you erased your data.",
                               path, subject)  # fmt: skip
            return
        if job is None or job["status"] != "ready":
            await self._refuse(send, 404, "No such export.", path, subject)
            return
        archive = self.jobs.archive_dir / Path(job["file"]).name
        try:
            f = archive.open("rb")  # opened first: an expiry deleting it now cannot cut it short
        except FileNotFoundError:
            # the job is in the shared store, the archive on the disk of the instance that
            # built it: several instances need one shared archive directory
            logger.warning(
                "privacy export %s: archive %s not on this instance's disk; instances must "
                "share READYKIT_PRIVACY_ARCHIVE_DIR",
                job_id,
                archive,
            )
            await self._refuse(send, 409, MISSING_ARCHIVE, path, subject)
            return
        with f:
            await self.audit.record("privacy.export.download", resource=f"export:{job_id}",
                                    actor=self.keys.actor(subject))  # fmt: skip
            headers = [
                (b"content-type", b"application/zip"),
                (b"content-length", str(os.fstat(f.fileno()).st_size).encode()),
                (b"content-disposition", b'attachment; filename="your-data.zip"'),
                (b"cache-control", b"no-store"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            while chunk := f.read(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    async def _erase(self, receive: Receive, send: Send, subject: str) -> None:
        path = f"{PREFIX}erase"
        try:
            body = await read_body(receive, MAX_BODY)
        except BodyTooLarge:
            await self._refuse(send, 413, "The request body is too large.", path, subject)
            return
        try:
            confirm = json.loads(body or b"{}").get("confirm")
        except (ValueError, AttributeError):
            await self._refuse(send, 400, 'Send JSON: {"confirm": "<token>"} or nothing.', path,
                               subject)  # fmt: skip
            return
        now = time.time()
        if not confirm:
            expires = str(int(now) + CONFIRM_TTL_S)
            token = f"{expires}.{self.keys.sign('erase', subject, expires)}"
            await _send_json(send, 200, {
                "confirm": token,
                "expires_in": CONFIRM_TTL_S,
                "detail": "Erasing cannot be undone. POST again with this confirm token.",
            })  # fmt: skip
            return
        expires, _, sig = str(confirm).partition(".")
        # the signature first (ASCII only: anything else cannot be ours), then the number; a
        # token is good until `expires`, not in the second after it (its used-mark ends then)
        if (
            not _ascii_digits(expires)
            or not sig.isascii()
            or not self.keys.verify(sig, "erase", subject, expires)
            or int(expires) <= now
            or not await self.jobs.use_confirmation(sig, int(expires))
        ):
            await self._refuse(send, 403, "The confirmation is not valid, used or expired.",
                               path, subject)  # fmt: skip
            return
        try:
            entry = await self.jobs.log_erasure(subject)  # before any eraser runs
        except StoreUnavailable:
            await self.jobs.release_confirmation(sig)
            await send_problem(send, 503, STORE_DOWN, headers=[(b"retry-after", RETRY_AFTER)])
            return
        try:
            report = await self.jobs.erase(subject, entry)
        except StoreUnavailable:  # the erasers ran; the logged entry lets a replay repeat them
            logger.warning("privacy erasure %s: the store failed after the erasers ran; the "
                           "erasure log keeps it as begun", entry["id"])  # fmt: skip
            await self.audit.record("privacy.erase", actor=self.keys.actor(subject),
                                    details={"incomplete": True}, durable=True)  # fmt: skip
            await send_problem(send, 503, ERASED_UNRECORDED,
                               headers=[(b"retry-after", RETRY_AFTER)])  # fmt: skip
            return
        # the audit trail keeps that an erasure happened, not whose: the keyed hash stands in
        await self.audit.record("privacy.erase", actor=self.keys.actor(subject),
                                details={"report": report}, durable=True)  # fmt: skip
        await _send_json(send, 200, {"erased": True, "report": report})
