"""Run a check: reach the target, learn its endpoints, run each probe within its budget, score."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from readykit.check.client import (
    BudgetExhausted,
    CheckToolError,
    Client,
    RequestFailed,
)
from readykit.check.discovery import Endpoint, Target, discover
from readykit.check.finding import Category, Evidence, Finding, scrub, secret_forms
from readykit.check.not_judged import budget_line, limit_line, set_aside
from readykit.check.probe import ProbeContext, ProbeOptions, ProbeSpec
from readykit.check.scoring import (
    EXIT_CODES,
    CategoryScore,
    Rules,
    Verdict,
    category_scores,
    overall,
    verdict,
)
from readykit.logging.redact import Redactor, redact_text

DEFAULT_DEADLINE_S = 50.0
GRACE_S = 2.0
DISCOVERY_REQUESTS = 45
DISCOVERY_S = 15.0


@dataclass(frozen=True)
class CheckOptions:
    """What to check and how."""

    url: str
    openapi: Path | None = None
    rules: Rules = field(default_factory=Rules)
    probe: ProbeOptions = field(default_factory=ProbeOptions)
    deadline_s: float = DEFAULT_DEADLINE_S
    only: tuple[Category, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()  # `--endpoint`, added to what discovery finds
    baseline: Path | None = None  # `--baseline`: a saved JSON report to compare with


@dataclass
class Report:
    """The outcome of a check: verdict, scores and every finding (overridden, ignored)."""

    target: str
    started_at: str
    duration_s: float
    verdict: Verdict
    score: int | None  # None when inconclusive
    categories: list[CategoryScore]
    findings: list[Finding]
    ignored: list[Finding]
    discovery: dict[str, Any]
    p95_budget_ms: float
    performance: dict[str, Any] = field(default_factory=dict)
    # the target's 429s to the checker, when they left a category (or discovery) not judged
    rate_limited: dict[str, Any] | None = None
    # forms of the secrets the user gave (`--ops-token`): never written to any report
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def as_dict(self) -> dict[str, Any]:
        """The JSON document (`--json`), redacted as a whole on the way out."""
        from importlib.metadata import version

        doc: dict[str, Any] = {
            "tool": f"readykit {version('readykit')}",
            "target": self.target,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 2),
            "verdict": self.verdict,
            "score": self.score,
            "categories": {
                c.category: {
                    "score": c.score,
                    "blockers": c.blockers,
                    "warnings": c.warnings,
                    "infos": c.infos,
                }
                for c in self.categories
            },
            "findings": [f.as_dict() for f in _ordered(self.findings)],
            "ignored": [f.as_dict() for f in self.ignored],
            "discovery": self.discovery,
            "p95_budget_ms": self.p95_budget_ms,
            "performance": dict(self.performance),
            "rate_limited": self.rate_limited,
        }
        # every renderer (JSON, Markdown, HTML, the terminal) reads this document: a target that
        # echoes the ops token (a health check's output) has it replaced here, once for all
        histograms = _take_histograms(doc["performance"])
        redacted: dict[str, Any] = Redactor().redact(scrub(doc, self.secrets))
        _put_histograms(redacted["performance"], histograms)
        return redacted


def _steps(performance: dict[str, Any]) -> list[dict[str, Any]]:
    """Every swept step of a report's `performance` section, in order."""
    return [s for entry in performance.get("endpoints", {}).values() for s in entry["steps"]]


def _take_histograms(performance: dict[str, Any]) -> list[str]:
    """The steps' latency histograms, taken out of a copy of the section before redaction: they
    are the check's own measurements, and their base64 can read like a `key=value` secret to
    the redactor (`...BiSIg=...`), which would corrupt a later `--baseline`."""
    if "endpoints" in performance:
        performance["endpoints"] = {
            name: {**entry, "steps": [dict(s) for s in entry["steps"]]}
            for name, entry in performance["endpoints"].items()
        }
    return [step.pop("histogram", "") for step in _steps(performance)]


def _put_histograms(performance: dict[str, Any], histograms: list[str]) -> None:
    for step, histogram in zip(_steps(performance), histograms, strict=True):
        step["histogram"] = histogram


_RANK = {"blocker": 0, "warning": 1, "info": 2}


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: _RANK[f.severity])


async def _run_probe(
    spec: ProbeSpec, client: Client, target: Target, options: CheckOptions, left_s: float
) -> ProbeContext:
    time_s = max(0.5, min(spec.time_s, left_s))
    ctx = ProbeContext(client.budget(spec.max_requests, time_s), target, options.probe)
    try:
        await asyncio.wait_for(spec.run(ctx), time_s + GRACE_S)
    except BudgetExhausted as exc:
        ctx.add(_incomplete(spec, f"stopped at its budget ({exc})"))
    except TimeoutError:
        ctx.add(_incomplete(spec, f"did not finish within {time_s:.0f}s"))
    except RequestFailed as exc:
        ctx.add(_incomplete(spec, str(exc)))
    except Exception as exc:
        # whatever a target's answer sets off in a probe costs that probe, never the whole
        # check and its reports
        ctx.add(_incomplete(spec, f"stopped on an answer it could not handle ({_named(exc)})"))
    if ctx.not_judged is None and not ctx.judges_limits and ctx.budget.mostly_limited:
        ctx.cannot_judge(budget_line(ctx.budget), limited=True)
    if ctx.not_judged is not None:
        # a "nothing wrong" read off 429s (or unusable answers) would be the limit's, not the
        # service's: the category is not judged, and says why
        ctx.findings = set_aside(spec.category, ctx.not_judged, ctx.findings, limited=ctx.limited)
        ctx.applicable = False
        ctx.score = None
    return ctx


def _named(exc: BaseException) -> str:
    """`ValueError: ...`, short (the message may quote the target)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 160 else text[:160] + "…"


def _incomplete(spec: ProbeSpec, why: str) -> Finding:
    return Finding(
        f"{spec.category}.incomplete",
        spec.category,
        "warning",
        f"the {spec.category} probe {why}",
        Evidence(f"{spec.max_requests} requests, {spec.time_s:.0f}s budget", None, why),
        "A slow or failing service makes probes run out of time; check its logs.",
    )


async def check(options: CheckOptions, *, clock: Callable[[], float] = time.monotonic) -> Report:
    """Run every probe against `options.url` and score the findings.

    `clock` times the check, its probes and their load steps (tests pass a virtual-time loop's).
    """
    from readykit.check.probes import all_probes

    probe = replace(options.probe, started_at=time.time())
    baseline = None
    if options.baseline is not None:
        from readykit.check.gate import baseline_paths, read_baseline

        baseline = read_baseline(options.baseline)
        probe = replace(probe, sweep_first=baseline_paths(baseline))
    options = replace(options, probe=probe)
    started = clock()
    started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    deadline = started + options.deadline_s
    ssl_context: Any = True
    if options.probe.ca_file:
        import ssl

        ssl_context = ssl.create_default_context(cafile=options.probe.ca_file)
    async with Client(
        options.url, allow_writes=options.probe.allow_writes, ssl_context=ssl_context, clock=clock
    ) as client:
        try:
            await client.send("GET", "/", timeout_s=10.0, read_limit=1024)
        except RequestFailed as exc:
            # a password in the URL (user:pw@) stays out of the terminal and CI logs
            raise CheckToolError(redact_text(f"cannot reach {options.url}: {exc}")) from exc
        budgets = [client.budget(DISCOVERY_REQUESTS, DISCOVERY_S)]
        target = await discover(budgets[0], options.openapi, options.endpoints)
        findings: list[Finding] = []
        performance: dict[str, Any] = {}
        probe_scores: dict[Category, int | None] = {}
        applicable: dict[Category, bool] = {}
        limited: list[str] = []  # categories not judged because of 429s
        for spec in all_probes():
            if options.only and spec.category not in options.only:
                continue
            left = deadline - clock()
            if left <= 0:
                findings.append(_incomplete(spec, "was skipped: the check's time ran out"))
                applicable[spec.category] = True
                continue
            ctx = await _run_probe(spec, client, target, options, left)
            budgets.append(ctx.budget)
            if ctx.limited:
                limited.append(spec.category)
            findings += ctx.findings
            if spec.category == "performance":
                performance = ctx.data
            probe_scores[spec.category] = ctx.score
            applicable[spec.category] = ctx.applicable
    if baseline is not None and options.baseline is not None:
        from readykit.check.gate import findings as gate_findings

        findings += gate_findings(baseline, performance, options.baseline.name)
    kept, ignored = options.rules.apply(findings)
    scores = category_scores(kept, probe_scores, applicable)
    outcome = verdict(kept)
    if target.rate_limited is not None and outcome != "not-ready":
        outcome = "inconclusive"  # endpoints unknown: what the probes missed cannot be known
    rate_limited = None
    if limited or target.rate_limited is not None:
        retry_after = next((b.retry_after for b in reversed(budgets) if b.retry_after), None)
        answered = sum(b.answered for b in budgets)
        rate_limited = {
            "summary": limit_line(sum(b.limited for b in budgets), answered, retry_after),
            "retry_after": retry_after,
            "discovery": target.rate_limited,
            "not_judged": limited,
        }
    return Report(
        target=options.url,
        started_at=started_at,
        duration_s=clock() - started,
        verdict=outcome,
        score=overall(scores, outcome),
        categories=scores,
        findings=kept,
        ignored=ignored,
        discovery={
            "source": target.source,
            "endpoints": [f"{e.method} {e.path}" for e in target.endpoints],
            "sources": {f"{e.method} {e.path}": e.source for e in target.endpoints},
            "catch_all": target.catch_all,
            "rate_limited": target.rate_limited,
        },
        p95_budget_ms=options.probe.p95_budget_ms,
        performance=performance,
        rate_limited=rate_limited,
        secrets=secret_forms(options.probe.ops_token or ""),
    )


def run_check(options: CheckOptions) -> Report:
    """Synchronous entry point."""
    return asyncio.run(check(options))


@contextmanager
def bundled_demo() -> Iterator[tuple[str, str]]:
    """Start the bundled demo on a free loopback port (temporary SQLite dir) with a fresh ops
    token; yield its URL and the token (for the inside view)."""
    import secrets

    import readykit
    from readykit.serve import ServerStartError, serve

    token = secrets.token_urlsafe(24)
    # the demo of this very readykit, even when it was found through a relative PYTHONPATH
    home = str(Path(readykit.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH", "")) if p)
    code = "import sys; from readykit.cli import main; main(sys.argv[1:])"
    with tempfile.TemporaryDirectory(prefix="readykit-check-demo-") as tmp:
        env = {
            "READYKIT_DEMO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/demo.db",
            "READYKIT_STORE_URL": f"sqlite:///{tmp}/readykit.db",
            "READYKIT_OPS_TOKEN": token,
            "PYTHONPATH": path,
            # no READYKIT_RATE_LIMITS: the demo's own limits admit a check (readykit.demo.app)
        }
        argv = [sys.executable, "-c", code, "demo", "--host", "{host}", "--port", "{port}"]
        try:
            # a busy shared machine can take long to import and migrate: a generous start
            with serve(argv, env=env, cwd=tmp, start_timeout=90.0) as server:
                yield server.url, token
        except ServerStartError as exc:
            # one line: the child's own last words (e.g. the extra it needs), else ours
            said = [line.strip() for line in exc.output.splitlines() if line.strip()]
            reason = said[-1] if said else str(exc).splitlines()[0]
            raise CheckToolError(f"the bundled demo did not start: {reason}") from exc
