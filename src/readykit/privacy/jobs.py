"""Export jobs and erasures: persisted in the store, run in the background, resumed at startup.

A job document (kind `privacy_export`) holds the subject's keyed hash and its sealed id, never
the raw id; archives are ZIPs (one JSON file per exporter and a readable `index.html`) written
atomically, and removed when their link expires.

Erasing a subject logs the erasure first (so a replay repeats it whatever happens next),
cancels its exports still being built in this process and marks every job of the subject
`erased`, its archive deleted: status says `erased`, a download answers 410. The erasure log
is the truth: a job whose subject had an erasure logged since the job was created reads
`erased` whatever its document says, and an instance that saved such a job `ready` (the
erasure landed between its check and its save) wipes it.
The export limit and the erase confirmations are leases in the store (`claim_doc`), so they
hold across instances, not only within one process.

An export being built is owned through a lease too (`privacy_export_owner`, renewed while it
runs): at startup an instance resumes only the exports whose owner's lease lapsed (the owner
died), each at most MAX_ATTEMPTS times in all (then it is `failed`: an export that crashes its
process is not retried all day).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import json
import logging
import os
import secrets
import tempfile
import time
import traceback
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from readykit.logging.redact import redact_text
from readykit.privacy.keys import Keys
from readykit.privacy.registry import ErasureReport, Privacy, failure
from readykit.records.audit import Audit
from readykit.records.store import Store, new_id

logger = logging.getLogger("readykit.privacy")

JOB = "privacy_export"
ERASURE = "privacy_erasure"
SLOT = "privacy_export_slot"  # one lease per allowed export per subject, a day long
CONFIRM = "privacy_erase_confirm"  # an erase confirmation used, until it would have expired
OWNER = "privacy_export_owner"  # the instance building an export, renewed while it runs
DAY_S = 86_400.0
OWNER_LEASE_S = 60.0  # an owner that stops renewing for this long is taken for dead
MAX_ATTEMPTS = 3  # starts of one export (the first, then resumes) before it is failed
GAVE_UP = (
    "the export was interrupted {n} times (the server building it stopped); ask for a new "
    "export, and quote this id if it fails again: {id}"
)
FAILED = "the export failed; ask for a new export, and quote this id if it fails again: {id}"
TOO_LARGE = (
    "your data is too large to export here; ask the service's operators for it, quoting "
    "this id: {id}"
)
MAX_EXPORT_BYTES = 2 * 1024**3  # JSON in one archive: beyond it, the export fails (disk bound)
CHUNK_BYTES = 64 * 1024  # records are written to the archive in chunks of about this size
T = TypeVar("T")


class ExportTooLarge(Exception):
    """The exporters' records passed the archive's cap (`Jobs.max_export_bytes`)."""


async def _blocking(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a thread; cancelled, it still waits for the thread (which cannot be
    stopped) so the file it writes is closed and removed only after it."""
    call = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        await asyncio.wait([call])
        raise


def _entry(item: Any) -> str:
    """One record as `json.dumps(records, indent=2)` writes it inside the list."""
    return "  " + json.dumps(item, ensure_ascii=False, indent=2, default=repr).replace("\n", "\n  ")


async def write_archive(
    path: Path, privacy: Privacy, subject: str, *, max_bytes: int = MAX_EXPORT_BYTES
) -> tuple[int, dict[str, int]]:
    """Stream every exporter's records into a ZIP written atomically (temporary name, fsync,
    rename, mode 0600): its size, and the number of records of each exporter.

    One exporter's file at a time, a record at a time: only a chunk of the archive is in
    memory, whatever the subject's data. ExportTooLarge once the JSON passes `max_bytes`
    (uncompressed): the archive is not kept. The directory is created private (0700): the
    archives are people's personal data.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".zip")
    counts: dict[str, int] = {}
    written = 0
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
            for name in privacy.exporters:
                entry = await _blocking(
                    functools.partial(z.open, f"{name}.json", "w", force_zip64=True)
                )
                with entry:
                    chunks: list[bytes] = [b"["]
                    size, count = 1, 0
                    async for item in privacy.records(name, subject):
                        chunk = ("\n" if not count else ",\n").encode() + _entry(item).encode()
                        count += 1
                        written += len(chunk)
                        if written > max_bytes:
                            raise ExportTooLarge(
                                f"the export passed its cap of {max_bytes} bytes of JSON at "
                                f"record {count} of exporter {name!r}; raise "
                                "Jobs.max_export_bytes or have the exporter return less"
                            )
                        chunks.append(chunk)
                        size += len(chunk)
                        if size >= CHUNK_BYTES:
                            await _blocking(entry.write, b"".join(chunks))
                            chunks, size = [], 0
                    chunks.append(b"\n]" if count else b"]")
                    await _blocking(entry.write, b"".join(chunks))
                counts[name] = count
            rows = "\n".join(
                f"<tr><td><a href='{html.escape(name)}.json'>{html.escape(name)}</a></td>"
                f"<td>{count}</td></tr>"
                for name, count in counts.items()
            )
            await _blocking(z.writestr, "index.html", _INDEX.format(rows=rows))
        return await _blocking(_publish, tmp, path), counts
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _publish(tmp: str, path: Path) -> int:
    """Make the archive at `tmp` private and durable, rename it to `path`; its size."""
    os.chmod(tmp, 0o600)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path.stat().st_size


def _erased(job: dict[str, Any], now: float) -> dict[str, Any]:
    """What is kept of an erased job: only that it existed, no sealed id, counts or archive."""
    return {k: job[k] for k in ("id", "subject_hash", "created")} | {"status": "erased",
                                                                      "erased": now}  # fmt: skip


_INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>Your data</title></head>
<body><h1>Your data</h1><p>One JSON file per kind of record we keep about you.</p>
<table><thead><tr><th>file</th><th>records</th></tr></thead><tbody>
{rows}
</tbody></table></body></html>
"""


class Jobs:
    """Creates, runs, resumes and expires export jobs; runs and logs erasures."""

    def __init__(
        self,
        store: Store,
        privacy: Privacy,
        keys: Keys,
        audit: Audit,
        *,
        archive_dir: Path,
        link_ttl_s: float,
        exports_per_day: int,
        max_export_bytes: int = MAX_EXPORT_BYTES,
    ) -> None:
        self.store = store
        self.privacy = privacy
        self.keys = keys
        self.audit = audit
        self.archive_dir = archive_dir
        self.link_ttl_s = link_ttl_s
        self.exports_per_day = exports_per_day
        self.max_export_bytes = max_export_bytes
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[str, tuple[str, asyncio.Task[None]]] = {}  # job id -> (hash, task)
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # subject hash -> (lock, users)
        self._claim_lock = asyncio.Lock()  # for stores without claim_doc
        self.instance = secrets.token_hex(6)  # the owner named in the exports it builds

    @contextlib.asynccontextmanager
    async def _subject_lock(self, subject_hash: str) -> AsyncIterator[None]:
        """Serialise this process's requests and erasures for one subject."""
        lock, users = self._locks.setdefault(subject_hash, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[subject_hash]

    async def _claim(
        self, kind: str, id: str, *, until: float, at: float, body: dict[str, Any] | None = None
    ) -> bool:
        """Take the lease `kind`/`id` until `until` if absent or ended by `at` (atomic in the
        store; a store without claim_doc is only atomic within this process)."""
        body = (body or {}) | {"until": until}
        try:
            return await self.store.claim_doc(kind, id, body, until=until, at=at)
        except NotImplementedError:
            async with self._claim_lock:
                held = await self.store.get_doc(kind, id)
                if held is not None and held.get("until", 0) > at:
                    return False
                await self.store.put_doc(kind, id, body, ts=until)
                return True

    async def _own(self, job_id: str) -> bool:
        """Take the owner lease of an export whose owner is gone (or that never had one)."""
        now = time.time()
        return await self._claim(OWNER, job_id, until=now + OWNER_LEASE_S, at=now,
                                 body={"instance": self.instance})  # fmt: skip

    async def _keep_owning(self, job_id: str) -> None:
        """Renew this instance's owner lease on an export while it is built."""
        while True:
            await asyncio.sleep(OWNER_LEASE_S / 3)
            until = time.time() + OWNER_LEASE_S
            with contextlib.suppress(Exception):  # the next renewal tries again
                await self.store.put_doc(OWNER, job_id, {"instance": self.instance,
                                                         "until": until}, ts=until)  # fmt: skip

    async def _disown(self, job_id: str) -> None:
        """End this instance's owner lease now (its export stopped here)."""
        now = time.time()
        with contextlib.suppress(Exception):
            await self.store.put_doc(OWNER, job_id, {"instance": self.instance, "until": now},
                                     ts=now)  # fmt: skip

    async def recent(self, subject_hash: str, now: float) -> int:
        """Exports this subject asked for in the last day."""
        return len(await self.store.docs(JOB, key=subject_hash, since=now - DAY_S))

    async def request(self, subject: str) -> dict[str, Any] | None:
        """A new job for `subject`, or None when it had its exports for the day.

        Check and create are one step: within this process under the subject's lock, across
        instances by taking one of the subject's `exports_per_day` day-long leases in the store.
        """
        subject_hash = self.keys.subject_hash(subject)
        async with self._subject_lock(subject_hash):
            now = time.time()
            if await self.recent(subject_hash, now) >= self.exports_per_day:
                return None
            for slot in range(self.exports_per_day):
                if await self._claim(SLOT, f"{subject_hash}:{slot}", until=now + DAY_S, at=now):
                    return await self.create(subject)
            return None

    async def create(self, subject: str) -> dict[str, Any]:
        """A queued job for `subject`, persisted, and started in the background."""
        now = time.time()
        job = {
            "id": new_id() + os.urandom(8).hex(),  # unguessable: it is part of a URL
            "subject_hash": self.keys.subject_hash(subject),
            "subject": self.keys.seal(subject),
            "status": "queued",
            "created": now,
        }
        await self.save(job)
        self.start(job, owned=False)
        return job

    async def save(self, job: dict[str, Any]) -> None:
        """Write `job` to the store as it is (a job left `running` is resumed at startup)."""
        await self.store.put_doc(JOB, job["id"], job, key=job["subject_hash"], ts=job["created"])

    async def get(self, job_id: str) -> dict[str, Any] | None:
        """The job document, or None; `erased` if an erasure of its subject was logged since
        it was created, whatever the document says (an instance that finished building it
        may have saved it `ready` over the erasure's mark)."""
        job = await self.store.get_doc(JOB, job_id)
        if job is not None and job["status"] != "erased" and await self._erased_since(job):
            return _erased(job, time.time())
        return job

    async def _erased_since(self, job: dict[str, Any]) -> bool:
        """Whether an erasure of the job's subject was logged (begun, or finished) since the
        job was created: the erasure log, written before any eraser runs, is the truth."""
        return bool(await self.store.docs(ERASURE, key=job["subject_hash"], since=job["created"]))

    def start(self, job: dict[str, Any], *, owned: bool = False) -> None:
        """Run `job` in a background task (`owned`: this instance already holds its lease)."""
        job_id = job["id"]
        task = asyncio.create_task(self._run(job, owned=owned),
                                   name=f"readykit-privacy-export-{job_id}")  # fmt: skip
        self._tasks.add(task)
        self._running[job_id] = (job["subject_hash"], task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._running.get(job_id, (None, None))[1] is t:
                del self._running[job_id]

        task.add_done_callback(done)

    async def _run(self, job: dict[str, Any], *, owned: bool) -> None:
        if not owned and not await self._own(job["id"]):
            return  # another instance builds it
        keeper = asyncio.create_task(self._keep_owning(job["id"]),
                                     name=f"readykit-privacy-owner-{job['id']}")  # fmt: skip
        try:
            await self._build(job)
        except asyncio.CancelledError:  # erased, or shut down: another start may resume it
            await asyncio.shield(self._disown(job["id"]))
            raise
        finally:
            keeper.cancel()

    async def _build(self, job: dict[str, Any]) -> None:
        path = self.archive_dir / f"{job['id']}.zip"
        try:
            job["status"] = "running"
            job["attempts"] = job.get("attempts", 0) + 1
            await self.save(job)
            subject: str | None = None
            try:
                subject = self.keys.unseal(job["subject"])
                job["size"], job["counts"] = await write_archive(
                    path, self.privacy, subject, max_bytes=self.max_export_bytes
                )
                job.update(status="ready", finished=time.time(), file=path.name)
                job["expires"] = job["finished"] + self.link_ttl_s
            except Exception as exc:  # one exporter failing fails this job only
                self._failed(job, exc, subject)
            stored = await self.get(job["id"])
            if stored is not None and stored["status"] == "erased":  # erased meanwhile
                path.unlink(missing_ok=True)
                await self.save(stored)  # marked already, or to be: erased is final
                return
            await self.save(job)
            # an erasure on another instance may have marked the job between that read and
            # this write: the erasure log (written before its erasers ran) says so
            if await self._erased_since(job):
                path.unlink(missing_ok=True)
                await self.save(_erased(job, time.time()))
        except asyncio.CancelledError:  # erased (or shut down: the job is resumed, rebuilt)
            path.unlink(missing_ok=True)
            raise

    def _failed(self, job: dict[str, Any], exc: Exception, subject: str | None) -> None:
        """Mark `job` failed. The subject sees a generic message and the id; operators the
        detail and the traceback, redacted, with the subject's id replaced by its actor hash
        (an exporter's error often quotes the id it was given, and the job outlives an
        erasure)."""

        def scrub(text: str) -> str:
            return self.keys.scrub(text, subject) if subject else text

        trace = redact_text("".join(traceback.format_exception(exc)).rstrip())
        logger.error("privacy export %s failed\n%s", job["id"], scrub(trace))
        error = FAILED
        if isinstance(exc, ExportTooLarge):
            error = TOO_LARGE
        job.update(status="failed", finished=time.time(), error=error.format(id=job["id"]),
                   detail=scrub(failure(exc)))  # fmt: skip

    async def resume(self) -> int:
        """Restart jobs a stopped process left queued or running; the number restarted.

        Only jobs whose owner's lease lapsed (the owner died; a live owner renews it), and each
        at most MAX_ATTEMPTS times in all: then it is marked `failed`.
        """
        pending = [
            j for j in await self.store.docs(JOB, since=time.time() - DAY_S)
            if j["status"] in ("queued", "running") and j["id"] not in self._running
        ]  # fmt: skip
        restarted = 0
        for job in pending:
            if not await self._own(job["id"]):
                continue  # a live instance is building it
            attempts = job.get("attempts", 0)
            if attempts >= MAX_ATTEMPTS:
                logger.error("privacy export %s: interrupted %d times, not resumed again",
                             job["id"], attempts)  # fmt: skip
                stored = await self.get(job["id"])
                if stored is None or stored["status"] in ("queued", "running"):
                    job.update(status="failed", finished=time.time(),
                               error=GAVE_UP.format(n=attempts, id=job["id"]),
                               detail=f"interrupted {attempts} times")  # fmt: skip
                    await self.save(job)
                await self._disown(job["id"])
                continue
            self.start(job, owned=True)
            restarted += 1
        return restarted

    async def expire(self, now: float | None = None) -> int:
        """Delete archives whose link has expired; the number of jobs expired (or archives
        removed from this instance's disk).

        Jobs are shared by the instances, archives are on the disk of the instance that built
        them (unless the archive directory is shared): each instance removes from its own disk
        the archives of jobs expired or erased, whichever instance marked them.
        """
        now = time.time() if now is None else now
        removed = 0
        for job in await self.store.docs(JOB):
            if job["status"] == "ready" and job.get("expires", now) <= now:
                (self.archive_dir / Path(job["file"]).name).unlink(missing_ok=True)
                job["status"] = "expired"
                await self.save(job)
                removed += 1
            elif job["status"] in ("expired", "erased"):  # marked here or on another instance
                for name in {f"{job['id']}.zip", Path(job.get("file") or "").name} - {""}:
                    try:
                        (self.archive_dir / name).unlink()
                    except FileNotFoundError:
                        continue
                    removed += 1
        for kind in (SLOT, CONFIRM, OWNER):  # ended leases
            with contextlib.suppress(NotImplementedError):
                await self.store.delete_docs(kind, before=now)
        return removed

    async def wait(self) -> None:
        """Wait for running jobs (tests; shutdown leaves them to be resumed)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def use_confirmation(self, signature: str, expires: float) -> bool:
        """Mark an erase confirmation used; False when it already was (single use)."""
        return await self._claim(CONFIRM, signature, until=expires, at=time.time())

    async def release_confirmation(self, signature: str) -> None:
        """Make a used confirmation usable again (its erasure could not start); best effort:
        with the store down, the subject asks for a new token."""
        with contextlib.suppress(Exception):
            await self.store.put_doc(CONFIRM, signature, {"until": 0}, ts=0)

    async def _cancel_exports(self, subject_hash: str) -> None:
        """Cancel this process's exports of the subject still being built, and wait for them."""
        tasks = [t for h, t in list(self._running.values()) if h == subject_hash]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _drop_exports(self, subject_hash: str) -> int:
        """Mark every job of the subject `erased` and delete its archive; how many."""
        await self._cancel_exports(subject_hash)
        now = time.time()
        dropped = 0
        for job in await self.store.docs(JOB, key=subject_hash):
            (self.archive_dir / f"{job['id']}.zip").unlink(missing_ok=True)
            if job.get("file"):
                (self.archive_dir / Path(job["file"]).name).unlink(missing_ok=True)
            if job["status"] == "erased":
                continue
            await self.save(_erased(job, now))
            dropped += 1
        return dropped

    async def log_erasure(self, subject: str) -> dict[str, Any]:
        """Write the erasure log entry of an erasure about to run (its intent): a replay after a
        restore repeats it even if the process dies, or the store fails, while it runs.
        StoreUnavailable if it cannot be written: then nothing has run."""
        now = time.time()
        subject_hash = self.keys.subject_hash(subject)
        entry: dict[str, Any] = {"id": new_id(), "ts": now, "subject_hash": subject_hash,
                 "subject": self.keys.seal(subject), "status": "started"}  # fmt: skip
        await self.store.put_doc(ERASURE, entry["id"], entry, key=subject_hash, ts=now)
        return entry

    async def erase(self, subject: str, entry: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run every eraser for `subject` and complete its erasure log entry (`entry`, from
        `log_erasure`; written first when not given); the report.

        The subject's exports go too: those being built are cancelled, every archive is
        deleted and every job marked `erased` (after the erasers, so none built meanwhile
        survives). Texts the erasers return (errors, reasons) are stored and audited with the
        subject's id replaced by its actor hash. StoreUnavailable after the erasers ran leaves
        the entry as begun: a replay repeats the erasure.
        """
        if entry is None:
            entry = await self.log_erasure(subject)
        subject_hash = entry["subject_hash"]
        async with self._subject_lock(subject_hash):
            await self._cancel_exports(subject_hash)
            try:
                reports = await self.privacy.erase(subject)
            finally:
                await self._drop_exports(subject_hash)
        report = {name: vars(self._scrubbed(r, subject)) for name, r in reports.items()}
        now = time.time()
        done = entry | {"status": "done", "finished": now, "report": report}
        # its time becomes the end: exports asked for while it ran are erased too (see get)
        await self.store.put_doc(ERASURE, entry["id"], done, key=subject_hash, ts=now)
        return report

    def _scrubbed(self, report: ErasureReport, subject: str) -> ErasureReport:
        """The report with the subject's id replaced by its actor hash in its texts: they go
        into the erasure log and the audit trail, which outlive the erasure."""
        return ErasureReport(
            removed=report.removed,
            retained=report.retained,
            reasons=[self.keys.scrub(r, subject) for r in report.reasons],
            error=self.keys.scrub(report.error, subject) if report.error else report.error,
        )

    async def erasures_since(self, since: float) -> list[dict[str, Any]]:
        """Erasure log entries newer than `since` (e.g. a backup's time)."""
        return await self.store.docs(ERASURE, since=since)

    async def replay(self, since: float | None = None) -> int:
        """Run the erasers again for every logged erasure (after a restore); how many."""
        entries = await self.store.docs(ERASURE, since=since)
        for entry in entries:
            await self.privacy.erase(self.keys.unseal(entry["subject"]))
        return len(entries)
