"""Combine rule results into one score and verdict per call.

Deduct-from-100 scoring with a critical (一票否决) flag, the shape the commercial QA suites use
(anchors 1.3 and 1.6): each failed rule takes its configured weight off the score; a failed critical
rule, or a score under `scoring.fail_below`, fails the call; any other failure sends it to review.
A rule that could not be measured deducts nothing: it says so in its own result.
"""

from __future__ import annotations

from audit.config import RuleConfig, ScoringConfig
from audit.records import RuleResult, Verdict


def score_call(
    results: tuple[RuleResult, ...], rules: dict[str, RuleConfig], scoring: ScoringConfig
) -> tuple[float, Verdict]:
    failed = [r for r in results if r.status == "fail"]
    score = max(0.0, 100.0 - sum(rules[r.rule_id].weight for r in failed))
    if any(r.severity == "critical" for r in failed) or score < scoring.fail_below:
        return score, "fail"
    return score, "review" if failed else "pass"
