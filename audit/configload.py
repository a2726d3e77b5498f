"""Load the whole configuration: the sections, every rule's settings and the text rulebook.

`configs/default.toml` states every key; a site file given with `--config` is laid over it and
states only what it changes. The result is validated as one: the typed sections (`audit.config`),
the built-in checks' parameters (each check declares its class, `audit.checks`) and the rulebook
(`audit.rules`). This module sits above all three, so that `audit.config`, which every measuring
stage reads its section from, imports nothing of the checks or the rules.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from audit.checks import CHECKS
from audit.config import (
    DEFAULT_CONFIG,
    Config,
    ConfigError,
    LabelsConfig,
    RuleConfig,
    build_rule,
    build_sections,
    merge_tables,
    read_toml,
)
from audit.rules import check_rulebook

# What cannot change a verdict stays out of the config's hash, so changing it re-audits nothing:
# the report's display settings, how the outputs are masked (records are written again from the
# database), the reviewers' reasons and the rules' names, and where the calls run.
UNJUDGED_SECTIONS = ("report", "privacy", "review", "labels", "cluster")
UNJUDGED_ASR_KEYS = ("share_model",)  # where the model runs


def load_config(path: Path | str | None = None) -> Config:
    """Read `configs/default.toml`, lay `path` over it and validate the result.

    Parameters
    ----------
    path : path-like or None
        A site file; None for the defaults alone. Stored as an absolute path (reports and
        workers start elsewhere). A `[text] rulebook` it names is relative to it.

    Returns
    -------
    Config
        Every section, every rule's settings and the compiled rulebook, with the hash of what
        can change a verdict.

    Raises
    ------
    ConfigError
        The first problem, naming the file and the dotted key.
    """
    defaults = read_toml(DEFAULT_CONFIG)
    # The defaults must be complete on their own: a key missing there is named against that file,
    # not against the site file laid over it.
    sections, rules = _settings(defaults, str(DEFAULT_CONFIG))
    merged, files, rulebook_base = defaults, (str(DEFAULT_CONFIG),), DEFAULT_CONFIG.parent
    if path is not None:
        path = Path(path).resolve()
        overlay = read_toml(path)
        merged = merge_tables(defaults, overlay)
        files += (str(path),)
        if "rulebook" in overlay.get("text", {}):
            rulebook_base = path.parent
        sections, rules = _settings(merged, str(path))
    origin = files[-1]
    rulebook_path = rulebook_base / sections["text"].rulebook
    rulebook = check_rulebook(rulebook_path)
    clashes = sorted(set(CHECKS) & {r.id for r in rulebook.rules})
    if clashes:
        raise ConfigError(rulebook_path, f"rules.{clashes[0]}", "this rule id belongs to a built-in check")
    _check_labels(sections["labels"], {*CHECKS, *(r.id for r in rulebook.rules)}, origin)
    judged = {name: value for name, value in merged.items() if name not in UNJUDGED_SECTIONS}
    judged["asr"] = {name: value for name, value in judged.get("asr", {}).items()
                     if name not in UNJUDGED_ASR_KEYS}
    digest = hashlib.sha256(json.dumps(judged, sort_keys=True, default=str).encode())
    digest.update(rulebook_path.read_bytes())
    return Config(**sections, rules=rules, rulebook=rulebook, files=files, sha256=digest.hexdigest())


def _settings(table: dict, origin: str) -> tuple[dict, dict[str, RuleConfig]]:
    """The typed sections and the built-in checks' settings of one (merged) table."""
    sections = build_sections(table, origin)
    rules_table = table.get("rules", {})
    if not isinstance(rules_table, dict):
        raise ConfigError(origin, "rules", "must be a table of rule tables")
    rules: dict[str, RuleConfig] = {}
    for rule_id, rule_table in rules_table.items():
        key = f"rules.{rule_id}"
        if rule_id not in CHECKS:
            raise ConfigError(origin, key, f"no such rule; known rules: {sorted(CHECKS)}")
        if not isinstance(rule_table, dict):
            raise ConfigError(origin, key, "must be a table")
        rules[rule_id] = build_rule(rule_table, CHECKS[rule_id].params, origin, key)
    for rule_id in CHECKS:
        if rule_id not in rules:
            raise ConfigError(origin, f"rules.{rule_id}", "missing: every rule needs its settings")
    return sections, rules


def _check_labels(labels: LabelsConfig, rule_ids: set[str], origin: str) -> None:
    """Every rule (built-in check or rulebook rule) has a name and category, and no other id does."""
    for rule_id in sorted(rule_ids - set(labels.rules)):
        raise ConfigError(origin, f"labels.rules.{rule_id}",
                          "missing: every rule needs a name and category, e.g. { name = \"...\", category = \"服务规范\" }")
    for rule_id in sorted(set(labels.rules) - rule_ids):
        raise ConfigError(origin, f"labels.rules.{rule_id}", "no such rule in the checks or the rulebook")
