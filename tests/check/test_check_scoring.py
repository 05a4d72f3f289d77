"""Verdict, scores, exit codes, and FAIL/WARN/IGNORE rules from a config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from readykit.check.client import CheckToolError
from readykit.check.finding import CATEGORIES, Finding
from readykit.check.scoring import (
    EXIT_CODES,
    FailOn,
    Rules,
    Verdict,
    category_scores,
    exit_code,
    load_rules,
    overall,
    parse_rules,
    verdict,
)


def f(check: str, severity: str = "warning") -> Finding:
    return Finding(check, check.split(".")[0], severity, check)  # type: ignore[arg-type]


def test_verdict_and_exit_codes() -> None:
    assert verdict([]) == "ready"
    assert verdict([f("cors.ok", "info")]) == "ready"
    assert verdict([f("cors.reflected-origin")]) == "warnings"
    assert verdict([f("cors.reflected-origin"), f("exposure.dotenv", "blocker")]) == "not-ready"
    assert EXIT_CODES == {"ready": 0, "not-ready": 1, "warnings": 2, "inconclusive": 3}


def test_a_category_not_judged_makes_the_check_inconclusive_unless_it_has_a_blocker() -> None:
    not_judged = f("exposure.not-judged")
    assert verdict([f("cors.ok", "info"), not_judged]) == "inconclusive"
    assert verdict([f("cors.reflected-origin"), not_judged]) == "inconclusive"
    assert verdict([not_judged, f("exposure.dotenv", "blocker")]) == "not-ready"
    # a step too short to judge is information, not a category left unjudged
    assert verdict([f("performance.step-not-judged", "info")]) == "ready"
    scores = category_scores([not_judged], {}, {"exposure": False, "cors": True})
    assert overall(scores, "inconclusive") is None  # no score that could pass for the service's


def test_a_blocker_fails_whatever_the_score() -> None:
    findings = [f("exposure.dotenv", "blocker")]
    applicable = dict.fromkeys(("health", "exposure", "cors"), True)
    scores = category_scores(findings, {}, applicable)
    assert overall(scores) == 87  # (100 + 60 + 100) / 3: a good score ...
    assert verdict(findings) == "not-ready"  # ... and still not ready


def test_category_scores() -> None:
    findings = [f("cors.a"), f("cors.b"), f("exposure.x", "blocker"), f("health.ok", "info")]
    scores = {
        s.category: s
        for s in category_scores(
            findings,
            {"security-headers": 55},
            {"cors": True, "exposure": True, "health": True, "security-headers": True},
        )
    }
    assert scores["cors"].score == 80
    assert scores["cors"].warnings == 2
    assert scores["exposure"].score == 60
    assert scores["exposure"].blockers == 1
    assert scores["health"].score == 100
    assert scores["health"].infos == 1
    assert scores["security-headers"].score == 55  # the probe's own (Observatory) score
    assert scores["tls"].score is None  # not run / not applicable
    assert overall(list(scores.values())) == round((80 + 60 + 100 + 55) / 4)


def test_rules_exact_glob_and_category() -> None:
    rules = parse_rules(
        {
            "rules": {
                "exposure.directory-listing": "fail",
                "exposure.*": "WARN",
                "cors": "IGNORE",
                "health.missing": "WARN",
            }
        }
    )
    kept, ignored = rules.apply(
        [
            f("exposure.directory-listing", "warning"),
            f("exposure.dotenv", "blocker"),
            f("cors.reflected-origin", "warning"),
            f("health.missing", "blocker"),
            f("exposure.none", "info"),
        ]
    )
    assert {x.check: x.severity for x in kept} == {
        "exposure.directory-listing": "blocker",
        "exposure.dotenv": "warning",
        "health.missing": "warning",
        "exposure.none": "info",  # info stays info: there is nothing to fail
    }
    assert [x.check for x in ignored] == ["cors.reflected-origin"]


def test_top_level_mapping_is_accepted() -> None:
    assert parse_rules({"tls": "IGNORE"}) == Rules({"tls": "IGNORE"})
    assert parse_rules(None) == Rules()


@pytest.mark.parametrize("doc", [{"tls": "MAYBE"}, ["tls"], "FAIL"])
def test_bad_rules_are_refused(doc: object) -> None:
    with pytest.raises(CheckToolError):
        parse_rules(doc)


def test_rules_from_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "check.yaml"
    path.write_text("rules:\n  performance: WARN\n")
    assert load_rules(path) == Rules({"performance": "WARN"})
    path.write_text("rules: [unclosed\n")
    with pytest.raises(CheckToolError, match="not valid YAML"):
        load_rules(path)
    with pytest.raises(CheckToolError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def _score(findings: list[Finding]) -> int:
    scores = category_scores(findings, {}, dict.fromkeys(CATEGORIES, True))
    return overall(scores, verdict(findings))


def test_a_blocker_caps_the_score_below_any_service_without_one() -> None:
    # one blocker in an otherwise perfect service...
    one_blocker = _score([f("exposure.debug", "blocker")])
    # ...against a service with a warning in every category
    many_warnings = _score([f(f"{c}.x", "warning") for c in CATEGORIES for _ in range(3)])
    clean = _score([f("health.ok", "info")])
    assert one_blocker < many_warnings < clean
    assert one_blocker <= 49 < 50 <= many_warnings <= 89 < 90 <= clean == 100


def test_more_blockers_score_lower_within_the_band() -> None:
    assert _score([f("exposure.debug", "blocker")] * 3) < _score([f("exposure.debug", "blocker")])


@pytest.mark.parametrize(
    ("outcome", "fail_on", "code"),
    [
        ("ready", None, 0),
        ("warnings", None, 2),
        ("not-ready", None, 1),
        ("warnings", "blocker", 0),
        ("not-ready", "blocker", 1),
        ("warnings", "warning", 1),
        ("ready", "warning", 0),
        ("inconclusive", None, 3),
        ("inconclusive", "blocker", 3),  # a gate never passes what it could not judge
        ("inconclusive", "warning", 3),
    ],
)
def test_fail_on(outcome: Verdict, fail_on: FailOn | None, code: int) -> None:
    assert exit_code(outcome, fail_on) == code
