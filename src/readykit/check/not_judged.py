"""A category the check could not judge: its answers were the target's rate limit (429), or
nothing usable, so a "nothing wrong" from them would describe the limit and not the service.

Such a category scores `null` and carries one `<category>.not-judged` warning; with no blocker
elsewhere the verdict is `inconclusive` (never `ready`).
"""

from __future__ import annotations

from readykit.check.client import Budget
from readykit.check.finding import Category, Evidence, Finding

KIND = "not-judged"
ADVICE = (
    "Run the check again after the Retry-After, or exempt the checker's address from the "
    "target's rate limit (readykit: `READYKIT_RATE_LIMITS`) while it runs."
)


def is_not_judged(finding: Finding) -> bool:
    """True for a `<category>.not-judged` finding (what makes a verdict inconclusive)."""
    return finding.check == f"{finding.category}.{KIND}"


def limit_line(limited: int, answered: int, retry_after: str | None) -> str:
    """`the target rate-limited the checker: 429 on 12 of 14 answers (Retry-After: 41)`."""
    after = f" (Retry-After: {retry_after})" if retry_after else " (no Retry-After)"
    return f"the target rate-limited the checker: 429 on {limited} of {answered} answers{after}"


def budget_line(budget: Budget) -> str:
    """`limit_line` of what one budget's requests got."""
    return limit_line(budget.limited, budget.answered, budget.retry_after)


def set_aside(
    category: Category, why: str, findings: list[Finding], *, limited: bool
) -> list[Finding]:
    """A not-judged category's findings: its blockers (confirmed by content, whatever else was
    limited) kept, the rest set aside and named in the one `not-judged` warning."""
    kept = [f for f in findings if f.severity == "blocker"]
    dropped = [f.check for f in findings if f.severity != "blocker"]
    shown = "set aside: " + ", ".join(dropped) if dropped else ""
    return [
        *kept,
        Finding(
            f"{category}.{KIND}",
            category,
            "warning",
            f"{category} not judged: {why}",
            Evidence(f"the {category} probe", 429 if limited else None, shown),
            ADVICE if limited else "Make the target answer the check's requests normally.",
        ),
    ]
