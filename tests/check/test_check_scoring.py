"""Verdict, scores, exit codes, and FAIL/WARN/IGNORE rules from a config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from readykit.check.client import CheckToolError
from readykit.check.finding import Finding
from readykit.check.scoring import (
    EXIT_CODES,
    Rules,
    category_scores,
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
    assert EXIT_CODES == {"ready": 0, "not-ready": 1, "warnings": 2}


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
