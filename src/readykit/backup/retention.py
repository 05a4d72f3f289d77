"""Grandfather-father-son retention, as restic's `forget --keep-*` computes it.

Backups are walked newest first, newest meaning highest in the manifest chain (`sequence`).
Each rule keeps the newest backup of each of its last N
distinct periods (UTC calendar days, ISO weeks, months, years) that hold a backup; `last`
keeps the N newest. A backup kept by any rule stays. The newest verified backup always stays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Policy:
    """How many backups to keep per rule; 0 switches a rule off."""

    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def is_empty(self) -> bool:
        """True when no rule keeps anything."""
        return not any((self.last, self.daily, self.weekly, self.monthly, self.yearly))


@dataclass(frozen=True)
class Item:
    """What retention needs to know about one backup."""

    id: str
    created: datetime
    verified: bool = False
    sequence: int = 0  # the manifest chain's order: what "newest" means, whatever the clocks said


@dataclass(frozen=True)
class Decision:
    """Keep or remove one backup, with the rules that kept it."""

    item: Item
    keep: bool
    reasons: tuple[str, ...]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


_BUCKETS: dict[str, Callable[[datetime], object]] = {
    "last": lambda t: t,  # every backup is its own bucket
    "daily": lambda t: _utc(t).date(),
    "weekly": lambda t: _utc(t).isocalendar()[:2],
    "monthly": lambda t: (_utc(t).year, _utc(t).month),
    "yearly": lambda t: _utc(t).year,
}


def plan(items: Sequence[Item], policy: Policy) -> list[Decision]:
    """Decide, newest first, which backups `policy` keeps."""
    # Newest by the chain's sequence, not by created_at: a clock that was wrong when a backup
    # was taken must not make `--keep-last` delete the real newest backups.
    ordered = sorted(items, key=lambda i: (i.sequence, i.created, i.id), reverse=True)
    quota = {rule: getattr(policy, rule) for rule in _BUCKETS}
    last_bucket: dict[str, object] = {}
    newest_verified = next((i.id for i in ordered if i.verified), None)
    decisions: list[Decision] = []
    for index, item in enumerate(ordered):
        reasons: list[str] = []
        for rule, bucket_of in _BUCKETS.items():
            bucket = (index, bucket_of(item.created)) if rule == "last" else bucket_of(item.created)
            if quota[rule] > 0 and last_bucket.get(rule) != bucket:
                quota[rule] -= 1
                last_bucket[rule] = bucket
                reasons.append(rule)
        if item.id == newest_verified:
            reasons.append("newest verified")
        decisions.append(Decision(item, keep=bool(reasons), reasons=tuple(reasons)))
    return decisions
