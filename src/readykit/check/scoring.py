"""Verdict and score: a score per category and overall; blockers fail the verdict regardless.

A config file (YAML) sets any check to FAIL, WARN or IGNORE, in the manner of ZAP's rules file:

    rules:
      security-headers.x-frame-options: IGNORE   # one check, by its id
      exposure.*: FAIL                           # a glob over check ids
      performance: WARN                          # a whole category
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from readykit.check.client import CheckToolError
from readykit.check.finding import CATEGORIES, Category, Finding
from readykit.check.not_judged import is_not_judged

Action = Literal["FAIL", "WARN", "IGNORE"]
# inconclusive: no blocker, but a category could not be judged (the target rate-limited the
# checker): the check itself did not get its answers, so it exits as a failed check does
Verdict = Literal["ready", "warnings", "not-ready", "inconclusive"]
ACTIONS: tuple[Action, ...] = ("FAIL", "WARN", "IGNORE")
BLOCKER_PENALTY = 40
WARNING_PENALTY = 10
TOOL_FAILED = 3
EXIT_CODES: dict[Verdict, int] = {
    "ready": 0,
    "not-ready": 1,
    "warnings": 2,
    "inconclusive": TOOL_FAILED,
}


@dataclass(frozen=True)
class Rules:
    """Per-check overrides: check id, glob or category → FAIL | WARN | IGNORE."""

    rules: dict[str, Action] = field(default_factory=dict)

    def action(self, finding: Finding) -> Action | None:
        """The rule for `finding`: exact id first, then the longest matching glob, then category."""
        if finding.check in self.rules:
            return self.rules[finding.check]
        globs = [
            p for p in self.rules if p != finding.category and fnmatch.fnmatchcase(finding.check, p)
        ]
        if globs:
            return self.rules[max(globs, key=len)]
        return self.rules.get(finding.category)

    def apply(self, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
        """(kept, ignored); FAIL/WARN re-grade problems, info findings stay info."""
        kept: list[Finding] = []
        ignored: list[Finding] = []
        for f in findings:
            action = self.action(f)
            if action == "IGNORE":
                ignored.append(f)
            elif action is not None and f.severity != "info":
                kept.append(replace(f, severity="blocker" if action == "FAIL" else "warning"))
            else:
                kept.append(f)
        return kept, ignored


def parse_rules(doc: Any, source: str = "config") -> Rules:
    """Rules from a parsed YAML document (`rules:` mapping, or a top-level mapping)."""
    if doc is None:
        return Rules()
    if isinstance(doc, dict) and isinstance(doc.get("rules"), dict):
        doc = doc["rules"]
    if not isinstance(doc, dict):
        raise CheckToolError(f"{source}: expected a mapping of check ids to FAIL|WARN|IGNORE")
    rules: dict[str, Action] = {}
    for key, value in doc.items():
        action = str(value).strip().upper()
        if action not in ACTIONS:
            raise CheckToolError(f"{source}: {key}: {value!r} is not one of FAIL, WARN, IGNORE")
        rules[str(key)] = action
    return Rules(rules)


def load_rules(path: Path | None) -> Rules:
    """Rules from a YAML file, or none."""
    if path is None:
        return Rules()
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CheckToolError(f"cannot read the config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CheckToolError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return parse_rules(doc, str(path))


@dataclass(frozen=True)
class CategoryScore:
    """A category's score (None when it does not apply) and its counts."""

    category: Category
    score: int | None
    blockers: int = 0
    warnings: int = 0
    infos: int = 0


def category_scores(
    findings: list[Finding],
    probe_scores: dict[Category, int | None],
    applicable: dict[Category, bool],
) -> list[CategoryScore]:
    """A probe's own score when it gives one (security-headers), else 100 minus penalties."""
    result = []
    for cat in CATEGORIES:
        mine = [f for f in findings if f.category == cat]
        b = sum(f.severity == "blocker" for f in mine)
        w = sum(f.severity == "warning" for f in mine)
        i = len(mine) - b - w
        score: int | None
        if not applicable.get(cat, False):
            score = None
        elif probe_scores.get(cat) is not None:
            score = probe_scores[cat]
        else:
            score = max(0, 100 - BLOCKER_PENALTY * b - WARNING_PENALTY * w)
        result.append(CategoryScore(cat, score, b, w, i))
    return result


# The worst finding sets the band, so a service with a blocker never outscores one without
BANDS: dict[str, tuple[int, int]] = {
    "not-ready": (0, 49),
    "warnings": (50, 89),
    "ready": (90, 100),
}


def overall(scores: list[CategoryScore], verdict_: Verdict | None = None) -> int | None:
    """The overall score: the mean of the applicable categories' scores, placed in the band of
    the verdict (blockers 0-49, warnings 50-89, ready 90-100), so the score orders services by
    their worst problem first and by everything else within it. None when inconclusive: a
    score over the categories that could be judged would pass for the service's."""
    values = [s.score for s in scores if s.score is not None]
    mean = sum(values) / len(values) if values else 0.0
    if verdict_ is None:
        return round(mean)
    if verdict_ == "inconclusive":
        return None
    low, high = BANDS[verdict_]
    return round(low + (high - low) * max(0.0, min(mean, 100.0)) / 100)


FailOn = Literal["blocker", "warning"]


def exit_code(verdict_: Verdict, fail_on: FailOn | None = None) -> int:
    """0 ready, 1 blockers, 2 warnings only, 3 inconclusive; with `fail_on`, 1 at or past it
    and 0 below (inconclusive stays 3: a gate never passes what it could not judge)."""
    if fail_on is None or verdict_ == "inconclusive":
        return EXIT_CODES[verdict_]
    if verdict_ == "not-ready" or (verdict_ == "warnings" and fail_on == "warning"):
        return 1
    return 0


def verdict(findings: list[Finding]) -> Verdict:
    """not-ready on any blocker, whatever the score; inconclusive when a category could not be
    judged (`<category>.not-judged`); warnings on any warning; else ready."""
    if any(f.severity == "blocker" for f in findings):
        return "not-ready"
    if any(is_not_judged(f) for f in findings):
        return "inconclusive"
    if any(f.severity == "warning" for f in findings):
        return "warnings"
    return "ready"
