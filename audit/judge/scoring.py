"""Combine rule results into one score, per-category subscores and a verdict per call.

Deduct-from-100 scoring with a critical (一票否决) flag, the shape the commercial QA suites use
(anchors 1.3 and 1.6): each failed rule takes its configured weight off the score (and off its
category's subscore); a failed critical rule, or a score under `scoring.fail_below`, fails the call;
any other failure sends it to review. A rule that could not be measured deducts nothing: it says so
in its own result. An `unsure` finding (one resting on words the ASR doubted, `audit.judge.confidence`)
deducts nothing either; of a severity in `scoring.unsure_review` (critical and major by default) it
sends the call to review: a reviewer listens before anyone is accused.
"""

from __future__ import annotations

from audit.config import ScoringConfig
from audit.records import RuleResult, Verdict

CATEGORIES = ("timing", "prosody", "text")


def category_of(rule_id: str) -> str:
    """timing.* / prosody.* / text.*; the opening is judged on what was said, so it counts as text."""
    prefix = rule_id.split(".", 1)[0]
    return prefix if prefix in CATEGORIES else "text"


def score_call(
    results: tuple[RuleResult, ...], weights: dict[str, float], scoring: ScoringConfig
) -> tuple[float, dict[str, float], Verdict]:
    """Score one call's rule results.

    Parameters
    ----------
    results : tuple of RuleResult
        Every rule's result on the call; only `fail` takes points off, `unsure` may flag it.
    weights : dict
        Rule id -> points a failure takes off (`[rules."<id>"] weight`, built-in and rulebook).
    scoring : ScoringConfig
        `[scoring]`: `fail_below` (default 60; a score strictly under it fails the call) and
        `unsure_review` (default critical and major: the severities whose unsure findings send
        the call to review).

    Returns
    -------
    score : float
        100 minus the failed rules' weights, never below 0.
    subscores : dict
        The same per category of `CATEGORIES` (timing, prosody, text; the opening counts as text).
    verdict : {"pass", "review", "fail"}
        fail on a failed critical rule or a score under `fail_below`; review on any other failure
        or a flagging unsure finding; else pass.
    """
    failed = [r for r in results if r.status == "fail"]
    score = max(0.0, 100.0 - sum(weights[r.rule_id] for r in failed))
    subscores = {
        category: max(0.0, 100.0 - sum(weights[r.rule_id] for r in failed
                                       if category_of(r.rule_id) == category))
        for category in CATEGORIES
    }
    if any(r.severity == "critical" for r in failed) or score < scoring.fail_below:
        return score, subscores, "fail"
    unsure = any(r.status == "unsure" and r.severity in scoring.unsure_review for r in results)
    return score, subscores, "review" if failed or unsure else "pass"
