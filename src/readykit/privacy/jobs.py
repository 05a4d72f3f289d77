"""Export jobs and erasures: persisted in the store, run in the background, resumed at startup.

A job document (kind `privacy_export`) holds the subject's keyed hash and its sealed id, never
the raw id; archives are ZIPs (one JSON file per exporter and a readable `index.html`) written
atomically, and removed when their link expires.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from readykit.privacy.keys import Keys
from readykit.privacy.registry import Privacy, failure
from readykit.records.audit import Audit
from readykit.records.store import Store, new_id

logger = logging.getLogger("readykit.privacy")

JOB = "privacy_export"
ERASURE = "privacy_erasure"
DAY_S = 86_400.0


def write_archive(path: Path, subject_hash: str, data: dict[str, list[Any]]) -> int:
    """Write the ZIP atomically (temporary name, fsync, rename, mode 0600); its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
            rows = []
            for name, records in data.items():
                z.writestr(f"{name}.json", json.dumps(records, ensure_ascii=False, indent=2,
                                                      default=repr))  # fmt: skip
                rows.append(
                    f"<tr><td><a href='{html.escape(name)}.json'>{html.escape(name)}</a></td>"
                    f"<td>{len(records)}</td></tr>"
                )
            z.writestr("index.html", _INDEX.format(rows="\n".join(rows)))
        os.chmod(tmp, 0o600)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


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
    ) -> None:
        self.store = store
        self.privacy = privacy
        self.keys = keys
        self.audit = audit
        self.archive_dir = archive_dir
        self.link_ttl_s = link_ttl_s
        self.exports_per_day = exports_per_day
        self._tasks: set[asyncio.Task[None]] = set()

    async def recent(self, subject_hash: str, now: float) -> int:
        """Exports this subject asked for in the last day."""
        return len(await self.store.docs(JOB, key=subject_hash, since=now - DAY_S))

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
        self.start(job)
        return job

    async def save(self, job: dict[str, Any]) -> None:
        """Write `job` to the store as it is (a job left `running` is resumed at startup)."""
        await self.store.put_doc(JOB, job["id"], job, key=job["subject_hash"], ts=job["created"])

    async def get(self, job_id: str) -> dict[str, Any] | None:
        """The job document, or None."""
        return await self.store.get_doc(JOB, job_id)

    def start(self, job: dict[str, Any]) -> None:
        """Run `job` in a background task."""
        task = asyncio.create_task(self._run(job), name=f"readykit-privacy-export-{job['id']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: dict[str, Any]) -> None:
        job["status"] = "running"
        await self.save(job)
        try:
            subject = self.keys.unseal(job["subject"])
            data = await self.privacy.export(subject)
            path = self.archive_dir / f"{job['id']}.zip"
            job["size"] = await asyncio.to_thread(write_archive, path, job["subject_hash"], data)
            job.update(status="ready", finished=time.time(), file=path.name)
            job["expires"] = job["finished"] + self.link_ttl_s
            job["counts"] = {name: len(records) for name, records in data.items()}
        except Exception as exc:  # one exporter failing fails this job only, readably
            logger.exception("privacy export %s failed", job["id"])
            job.update(status="failed", finished=time.time(), error=failure(exc))
        await self.save(job)

    async def resume(self) -> int:
        """Restart jobs a previous process left queued or running; the number restarted."""
        pending = [
            j for j in await self.store.docs(JOB, since=time.time() - DAY_S)
            if j["status"] in ("queued", "running")
        ]  # fmt: skip
        for job in pending:
            self.start(job)
        return len(pending)

    async def expire(self, now: float | None = None) -> int:
        """Delete archives whose link has expired; the number removed."""
        now = time.time() if now is None else now
        removed = 0
        for job in await self.store.docs(JOB):
            if job["status"] == "ready" and job.get("expires", now) <= now:
                (self.archive_dir / job["file"]).unlink(missing_ok=True)
                job["status"] = "expired"
                await self.save(job)
                removed += 1
        return removed

    async def wait(self) -> None:
        """Wait for running jobs (tests; shutdown leaves them to be resumed)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def erase(self, subject: str) -> dict[str, Any]:
        """Run every eraser for `subject`, log it (keyed hash, sealed id), return the report."""
        reports = await self.privacy.erase(subject)
        now = time.time()
        subject_hash = self.keys.subject_hash(subject)
        report = {name: vars(r) for name, r in reports.items()}
        body = {
            "ts": now,
            "subject_hash": subject_hash,
            "subject": self.keys.seal(subject),
            "report": report,
        }
        await self.store.put_doc(ERASURE, new_id(), body, key=subject_hash, ts=now)
        return report

    async def erasures_since(self, since: float) -> list[dict[str, Any]]:
        """Erasure log entries newer than `since` (e.g. a backup's time)."""
        return await self.store.docs(ERASURE, since=since)

    async def replay(self, since: float | None = None) -> int:
        """Run the erasers again for every logged erasure (after a restore); how many."""
        entries = await self.store.docs(ERASURE, since=since)
        for entry in entries:
            await self.privacy.erase(self.keys.unseal(entry["subject"]))
        return len(entries)
