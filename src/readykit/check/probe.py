"""What every probe gets and gives: a context in, findings (and maybe a score) out."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from readykit.check.client import Budget
from readykit.check.discovery import Target
from readykit.check.finding import Category, Finding


@dataclass(frozen=True)
class ProbeOptions:
    """User options that probes read."""

    p95_budget_ms: float = 300.0
    allow_writes: bool = False
    ca_file: str | None = None
    load_users: tuple[int, ...] = (1, 4, 16)
    load_step_s: float = 1.0
    sweep_first: tuple[str, ...] = ()  # paths to sweep before the slowest (a baseline's)
    ops_token: str | None = field(default=None, repr=False)  # `--ops-token`: the inside view
    started_at: float = 0.0  # wall-clock start of the check (set by the runner)


@dataclass
class ProbeContext:
    """A probe's view of the target: its request budget, the endpoints found, the options."""

    budget: Budget
    target: Target
    options: ProbeOptions
    findings: list[Finding] = field(default_factory=list)
    score: int | None = None
    applicable: bool = True
    data: dict[str, Any] = field(default_factory=dict)  # measurements for the report
    # why the probe could not judge (the runner turns it into `<category>.not-judged`)
    not_judged: str | None = None
    limited: bool = False  # ...because the target rate-limited the checker
    # the probe tells 429s apart itself (else one answered mostly with 429 is not judged)
    judges_limits: bool = False

    @property
    def base_url(self) -> str:
        return self.budget.client.base_url

    @property
    def https(self) -> bool:
        return self.budget.client.scheme == "https"

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying context (trusting `--ca-file` too, when given)."""
        return ssl.create_default_context(cafile=self.options.ca_file)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def cannot_judge(self, why: str, *, limited: bool = False) -> None:
        """Nothing this probe saw can be judged: its category becomes `not-judged`."""
        self.not_judged, self.limited = why, limited


ProbeFn = Callable[[ProbeContext], Awaitable[None]]


@dataclass(frozen=True)
class ProbeSpec:
    """A probe's entry: its category, the function, and its request and time budget."""

    category: Category
    run: ProbeFn
    max_requests: int
    time_s: float
