"""Metrics for node-exporter's textfile collector, written atomically from the repository state."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from readykit.backup.atomic import write_atomic
from readykit.backup.repo import Repository

METRICS: tuple[tuple[str, str], ...] = (
    ("last_success_timestamp_seconds", "Unix time of the newest complete backup."),
    ("last_size_bytes", "Size in bytes of the newest complete backup's data file."),
    ("last_verify_success_timestamp_seconds", "Unix time of the newest passed verify."),
    ("backups", "Number of complete backups in the repository."),
    ("repository_size_bytes", "Bytes of all backup data files in the repository."),
)
"""Each gauge `render` writes: its name after `readykit_backup_`, and its help text."""


def render(repo: Repository) -> str:
    """The Prometheus text exposition of `repo`'s state."""
    manifests = repo.manifests()
    newest = manifests[-1] if manifests else None
    verified = [
        m.verification.at for m in manifests if m.verification and m.verification.status == "passed"
    ]
    values = {
        "last_success_timestamp_seconds": newest.created.timestamp() if newest else 0.0,
        "last_size_bytes": float(newest.size) if newest else 0.0,
        "last_verify_success_timestamp_seconds": max(
            (datetime.fromisoformat(at).timestamp() for at in verified), default=0.0
        ),
        "backups": float(len(manifests)),
        "repository_size_bytes": float(sum(m.size for m in manifests)),
    }
    label = str(repo.root).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    lines: list[str] = []
    for name, help_text in METRICS:
        metric = f"readykit_backup_{name}"
        lines += [
            f"# HELP {metric} {help_text}",
            f"# TYPE {metric} gauge",
            f'{metric}{{repo="{label}"}} {values[name]!r}',
        ]
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, repo: Repository) -> None:
    """Write `render(repo)` to `path` atomically (mode 0644, for node-exporter to read)."""
    write_atomic(path, render(repo).encode(), mode=0o644)
