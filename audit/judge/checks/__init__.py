"""The checks: each norm is one function registered under its rule id.

A check gets the facts of one call (`CallContext`) and its own parameters (a dataclass, filled from
`[rules.<rule id>]` in the config and validated on load) and returns an `Outcome` with evidence a
reviewer can jump to. Severity and weight are the engine's business, not the check's. Adding a
norm means: write one function with `@check(...)` in the module of its category (`opening.py`,
...), and add its table to `configs/default.toml`. A parameter class carries no defaults:
`configs/default.toml` states every key beside the rule's severity and weight, and a key missing
there stops the load naming the key and the file.

The package, by concern: `base` (the call's facts, the outcome, the registry, running the checks)
and one module per category of norms; importing the package registers every check. Phrases and
patterns are found in the transcript by `audit.phrases`, the matcher the rulebook uses too.
"""

from audit.judge.checks import opening, prosody, timing  # noqa: F401  (registers their checks)
from audit.judge.checks.base import CHECKS, CallContext, Check, Outcome, check, run_checks

__all__ = ["CHECKS", "CallContext", "Check", "Outcome", "check", "run_checks"]
