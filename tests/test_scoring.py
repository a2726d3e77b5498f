"""Scoring: deduct-from-100 per category, critical rules fail the call outright, `fail_below` is a
strict bound, unsure findings take nothing off but send the call to review."""

from __future__ import annotations

import pytest

from audit.config import ScoringConfig
from audit.records import RuleResult
from audit.judge.scoring import category_of, score_call

WEIGHTS = {"timing.three_rings": 10.0, "prosody.rate": 10.0, "text.closing": 15.0, "opening.golden_30s": 20.0,
           "text.identity_privacy": 20.0, "text.polite_address": 5.0}
SCORING = ScoringConfig(fail_below=60.0, unsure_review=("critical", "major"))


def result(rule_id: str, status: str = "fail", severity: str = "major") -> RuleResult:
    return RuleResult(rule_id, status, severity, "")


def test_nothing_failed_passes_with_full_marks():
    score, subscores, verdict = score_call((result("text.closing", "pass"), result("prosody.rate", "not_measurable")),
                                           WEIGHTS, SCORING)
    assert (score, verdict) == (100.0, "pass")
    assert subscores == {"timing": 100.0, "prosody": 100.0, "text": 100.0}


def test_each_failure_takes_its_weight_off_the_score_and_its_own_category():
    score, subscores, verdict = score_call(
        (result("timing.three_rings"), result("prosody.rate"), result("text.closing"), result("opening.golden_30s")),
        WEIGHTS, SCORING)
    assert score == 100 - 10 - 10 - 15 - 20
    assert subscores == {"timing": 90.0, "prosody": 90.0, "text": 65.0}  # the opening counts as text
    assert verdict == "fail"  # 45 < 60


def test_fail_below_is_strict():
    at_the_bound = {"timing.three_rings": 40.0}
    assert score_call((result("timing.three_rings"),), at_the_bound, SCORING)[1:] == (
        {"timing": 60.0, "prosody": 100.0, "text": 100.0}, "review")
    just_under = {"timing.three_rings": 40.5}
    assert score_call((result("timing.three_rings"),), just_under, SCORING)[2] == "fail"


def test_a_failed_critical_rule_fails_the_call_whatever_the_score():
    score, _, verdict = score_call((result("text.identity_privacy", severity="critical"),), {"text.identity_privacy": 1.0},
                                   SCORING)
    assert (score, verdict) == (99.0, "fail")
    passed = score_call((result("text.identity_privacy", "pass", "critical"),), WEIGHTS, SCORING)
    assert passed[2] == "pass"


def test_an_unsure_finding_takes_nothing_off_and_sends_the_call_to_review():
    score, subscores, verdict = score_call((result("text.polite_address", "unsure"),), WEIGHTS, SCORING)
    assert (score, verdict) == (100.0, "review") and subscores["text"] == 100.0
    critical = score_call((result("text.identity_privacy", "unsure", "critical"),), WEIGHTS, SCORING)
    assert critical[2] == "review"  # a critical rule on doubted words is for a reviewer, not a fail


def test_an_unsure_minor_finding_is_shown_but_does_not_flag_the_call():
    minor = (result("text.polite_address", "unsure", "minor"),)
    assert score_call(minor, WEIGHTS, SCORING) == (100.0, {"timing": 100.0, "prosody": 100.0, "text": 100.0}, "pass")
    strict = ScoringConfig(fail_below=60.0, unsure_review=("critical", "major", "minor"))
    assert score_call(minor, WEIGHTS, strict)[2] == "review"


def test_the_score_never_goes_below_zero():
    heavy = {"text.closing": 80.0, "opening.golden_30s": 80.0}
    score, subscores, _ = score_call((result("text.closing"), result("opening.golden_30s")), heavy, SCORING)
    assert score == 0.0 and subscores["text"] == 0.0


@pytest.mark.parametrize("rule_id, category", [("timing.dead_air", "timing"), ("prosody.raised_voice", "prosody"),
                                                ("text.forbidden.argue", "text"), ("opening.golden_30s", "text")])
def test_categories(rule_id, category):
    assert category_of(rule_id) == category
