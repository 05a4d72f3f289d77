"""The jobs' section of the settings (see readykit.section)."""

from __future__ import annotations

from pydantic import Field

from readykit.section import Section


class JobsConfig(Section):
    """readykit.jobs."""

    jobs_scheduler: bool = Field(
        default=True,
        description="Run @kit.job functions on schedule in this process; false only watches "
        "them (e.g. web replicas while one worker runs them).",
    )
