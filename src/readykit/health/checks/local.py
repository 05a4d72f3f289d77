"""Checks of local resources: disk space, a writable directory, memory."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from readykit.errors import ConfigurationError
from readykit.health.observation import Observation, Status

if TYPE_CHECKING:
    pass

from readykit.health.checks._common import (
    Check,
    _bytes,
    _is_int,
    _require_path,
    hinted,
)


def disk_free(
    path: str | os.PathLike[str] = ".",
    *,
    warn_below_bytes: int = 1 << 30,
    fail_below_bytes: int = 100 << 20,
) -> Check:
    """Check the free space of the file system holding `path`; the value is free bytes."""
    path = _require_path(path, "disk_free")
    if not (_is_int(warn_below_bytes) and _is_int(fail_below_bytes)) or not (
        warn_below_bytes >= fail_below_bytes >= 0
    ):
        raise ConfigurationError(
            "disk_free() needs int thresholds with warn_below_bytes >= fail_below_bytes >= 0, "
            f"got warn_below_bytes={warn_below_bytes!r}, fail_below_bytes={fail_below_bytes!r}"
        )

    async def check() -> Observation:
        # In a thread: statvfs on a hung network mount blocks.
        free = (await asyncio.to_thread(shutil.disk_usage, path)).free
        status: Status
        if free < fail_below_bytes:
            status, limit = "fail", fail_below_bytes
        elif free < warn_below_bytes:
            status, limit = "warn", warn_below_bytes
        else:
            return Observation(value=free, unit="bytes")
        output = f"{_bytes(free)} free on {path}, {status} below {_bytes(limit)}"
        return Observation(value=free, unit="bytes", status=status, output=output)

    return hinted(check, measurement="free", component_type="system")


def writable_dir(path: str | os.PathLike[str]) -> Check:
    """Check that a file can be created (and removed) in the directory `path`."""
    path = _require_path(path, "writable_dir")

    def touch() -> None:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".readykit-health-"):
            pass

    async def check() -> Observation | None:
        try:
            await asyncio.to_thread(touch)
        except OSError as exc:
            return Observation(
                status="fail", output=f"cannot create a file in {path}: {exc.strerror or exc}"
            )
        return None

    return hinted(check, measurement="writable", component_type="system")


def memory(
    *,
    warn_above_percent: float = 90.0,
    fail_above_percent: float = 98.0,
    proc_root: str | os.PathLike[str] = "/proc",
    cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup",
) -> Check:
    """Check this process's resident memory against its cgroup limit, else the machine's RAM.

    The value is the percent used. Linux only: elsewhere it passes with no value.
    `proc_root` and `cgroup_root` exist so tests can point them at fixture files.
    """
    if not all(
        isinstance(p, int | float) and not isinstance(p, bool)
        for p in (warn_above_percent, fail_above_percent)
    ) or not (0 < warn_above_percent <= fail_above_percent <= 100):
        raise ConfigurationError(
            "memory() needs 0 < warn_above_percent <= fail_above_percent <= 100, got "
            f"warn_above_percent={warn_above_percent!r}, fail_above_percent={fail_above_percent!r}"
        )
    proc, cgroup = Path(proc_root), Path(cgroup_root)

    async def check() -> Observation:
        # /proc and /sys are in memory: reading them does not block.
        return _memory_observation(proc, cgroup, warn_above_percent, fail_above_percent)

    return hinted(check, measurement="utilization", component_type="system")


def _memory_observation(proc: Path, cgroup: Path, warn: float, fail: float) -> Observation:
    rss = _kib_field(proc / "self" / "status", "VmRSS")
    total = _kib_field(proc / "meminfo", "MemTotal")
    if rss is None or total is None:
        return _memory_without_proc()
    limit = _cgroup_limit(proc, cgroup)
    if limit is not None and limit < total:
        capacity, of = limit, "cgroup limit"
    else:
        capacity, of = total, "system memory"
    percent = round(rss * 100 / capacity, 1)
    status: Status = "fail" if percent > fail else "warn" if percent > warn else "pass"
    output = None
    if status != "pass":
        output = f"RSS {_bytes(rss)} is {percent}% of the {_bytes(capacity)} {of}"
    return Observation(value=percent, unit="percent", status=status, output=output)


def _memory_without_proc() -> Observation:
    try:
        import resource
    except ImportError:  # Windows
        return Observation(unit="percent", output="memory use is not readable on this platform")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return Observation(
        unit="percent", output=f"peak RSS {peak} (ru_maxrss); no memory limit known here"
    )


def _kib_field(path: Path, field: str) -> int | None:
    """Read `Field:   123 kB` from a /proc file, in bytes."""
    try:
        text = path.read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _cgroup_limit(proc: Path, cgroup: Path) -> int | None:
    """The memory limit of this process's cgroup (v2, then v1), or None when unlimited."""
    v2_path, v1_path = "/", "/"
    try:
        for line in (proc / "self" / "cgroup").read_text().splitlines():
            _, controllers, group = line.split(":", 2)
            if controllers == "":
                v2_path = group
            elif "memory" in controllers.split(","):
                v1_path = group
    except (OSError, ValueError):
        pass
    # Own group first; the mount root is what a container with a cgroup namespace sees.
    candidates = [
        cgroup / v2_path.lstrip("/") / "memory.max",
        cgroup / "memory.max",
        cgroup / "memory" / v1_path.lstrip("/") / "memory.limit_in_bytes",
        cgroup / "memory" / "memory.limit_in_bytes",
    ]
    for candidate in candidates:
        try:
            raw = candidate.read_text().strip()
        except OSError:
            continue
        # v2 writes "max"; v1 writes a huge number, which the caller ignores as > RAM.
        return int(raw) if raw.isdigit() else None
    return None
