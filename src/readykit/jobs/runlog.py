"""Where job runs and leases live: the records store (shared by instances), or memory.

Runs are documents of kind `job_run` (key: the job's name, ts: the start); the newest
`KEEP_RUNS` of each job are kept. A job's lease is one `job_lease` document whose `ts` is the
end of the lease: an instance takes tick T only when the stored lease ends at or before T.
"""

from __future__ import annotations

from typing import Any, Protocol

from readykit.records.store import Store

RUN = "job_run"
LEASE = "job_lease"
KEEP_RUNS = 100


class RunLog(Protocol):
    """What the jobs runner needs from a store."""

    async def put(self, run: dict[str, Any]) -> None:
        """Create or replace a run (by its id)."""

    async def runs(self, job: str) -> list[dict[str, Any]]:
        """The job's kept runs, oldest first."""

    async def claim(self, job: str, body: dict[str, Any], *, until: float, at: float) -> bool:
        """Take the job's lease for the tick at `at`, until `until`; True if taken."""

    async def lease(self, job: str) -> dict[str, Any] | None:
        """The job's lease as last written, or None."""

    async def renew(self, job: str, body: dict[str, Any], *, until: float) -> bool:
        """Move the end of the lease this instance holds (`body`, as claimed) to `until`: on
        (a run still going) or back (the next tick, once the run is over); False, changing
        nothing, if another instance has taken it since."""

    async def trim(self, job: str, runs: list[dict[str, Any]]) -> None:
        """Drop the job's runs older than the newest KEEP_RUNS of `runs`."""


class StoreRunLog:
    """Runs and leases in the records store's documents."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def put(self, run: dict[str, Any]) -> None:
        await self.store.put_doc(RUN, run["id"], run, key=run["job"], ts=run["started"])

    async def runs(self, job: str) -> list[dict[str, Any]]:
        return await self.store.docs(RUN, key=job)

    async def claim(self, job: str, body: dict[str, Any], *, until: float, at: float) -> bool:
        return await self.store.claim_doc(LEASE, job, body, until=until, at=at)

    async def lease(self, job: str) -> dict[str, Any] | None:
        return await self.store.get_doc(LEASE, job)

    async def renew(self, job: str, body: dict[str, Any], *, until: float) -> bool:
        return await self.store.renew_doc(LEASE, job, body, until=until)

    async def trim(self, job: str, runs: list[dict[str, Any]]) -> None:
        if len(runs) > KEEP_RUNS:
            await self.store.delete_docs(RUN, key=job, before=runs[-KEEP_RUNS]["started"])


class MemoryRunLog:
    """Runs and leases in this process only (records switched off): one instance, no history
    across restarts."""

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, dict[str, Any]]] = {}
        self._leases: dict[str, tuple[float, dict[str, Any]]] = {}

    async def put(self, run: dict[str, Any]) -> None:
        self._runs.setdefault(run["job"], {})[run["id"]] = dict(run)

    async def runs(self, job: str) -> list[dict[str, Any]]:
        kept = self._runs.get(job, {}).values()
        return sorted((dict(r) for r in kept), key=lambda r: (r["started"], r["id"]))

    async def claim(self, job: str, body: dict[str, Any], *, until: float, at: float) -> bool:
        held = self._leases.get(job)
        if held is not None and held[0] > at:
            return False
        self._leases[job] = (until, dict(body))
        return True

    async def lease(self, job: str) -> dict[str, Any] | None:
        held = self._leases.get(job)
        return dict(held[1]) if held is not None else None

    async def renew(self, job: str, body: dict[str, Any], *, until: float) -> bool:
        held = self._leases.get(job)
        if held is None or held[1] != body:
            return False
        self._leases[job] = (until, dict(body))
        return True

    async def trim(self, job: str, runs: list[dict[str, Any]]) -> None:
        if len(runs) > KEEP_RUNS:
            oldest_kept = runs[-KEEP_RUNS]["started"]
            kept = self._runs.get(job, {})
            for run_id in [k for k, r in kept.items() if r["started"] < oldest_kept]:
                del kept[run_id]
