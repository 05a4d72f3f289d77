"""Where the CPU went during a load step: the generator's and, on loopback, the service's own.

Flat throughput under growing load has two causes that look the same from outside: the service
handles one request at a time (a blocking call on the event loop, a one-connection pool, a global
lock), or the machine ran out of CPU. When the service listens on this host, Linux says which: a
service that was running or waiting for a CPU (`/proc/PID/task/*/schedstat`) most of the step was
short of CPU; one that was neither was waiting on something that admits one request at a time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A: LISTEN
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def listening_pids(port: int) -> list[int]:
    """The processes (readable by this user) holding a socket listening on `port`, or []."""
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids: list[int] = []
    me = os.getpid()
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    pids.append(int(entry.name))
                    break
            except OSError:
                continue
    return sorted(pids)


@dataclass(frozen=True)
class Usage:
    """Cumulative seconds a set of processes spent on a CPU and waiting for one."""

    cpu_s: float
    waiting_s: float


def usage(pids: list[int]) -> Usage | None:
    """The summed schedstat of every thread of `pids`, or None when it cannot be read."""
    cpu = waiting = 0.0
    read = False
    for pid in pids:
        try:
            tasks = list((PROC / str(pid) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                fields = (task / "schedstat").read_text().split()
            except OSError:
                continue
            if len(fields) >= 2:
                cpu += int(fields[0]) / 1e9
                waiting += int(fields[1]) / 1e9
                read = True
    return Usage(cpu, waiting) if read else None


@dataclass(frozen=True)
class StepCpu:
    """CPU during one step: the generator's share of a core, and the service's if known."""

    generator: float
    service_cpu: float | None = None  # share of one core the service ran
    service_waiting: float | None = None  # share of one core it waited for a CPU

    @property
    def service_demand(self) -> float | None:
        """Running or runnable, as a share of one core: near 1+ means it wanted more CPU."""
        if self.service_cpu is None or self.service_waiting is None:
            return None
        return self.service_cpu + self.service_waiting


class CpuWatch:
    """Measures a step: `start()` before it, `stop()` after it gives a `StepCpu`."""

    def __init__(self, host: str, port: int) -> None:
        self.pids = listening_pids(port) if host in LOOPBACK else []
        self._t0 = self._p0 = 0.0
        self._u0: Usage | None = None

    def start(self) -> None:
        self._t0, self._p0 = time.monotonic(), time.process_time()
        self._u0 = usage(self.pids) if self.pids else None

    def stop(self) -> StepCpu:
        wall = max(time.monotonic() - self._t0, 1e-6)
        generator = (time.process_time() - self._p0) / wall
        u1 = usage(self.pids) if self._u0 is not None else None
        if self._u0 is None or u1 is None:
            return StepCpu(generator)
        return StepCpu(
            generator,
            max(0.0, u1.cpu_s - self._u0.cpu_s) / wall,
            max(0.0, u1.waiting_s - self._u0.waiting_s) / wall,
        )
