"""Load the whole configuration: the sections, every rule's settings and the text rulebook.

`configs/default.toml` states every key; a site file given with `--config` is laid over it and
states only what it changes. The result is validated as one: the typed sections (`audit.config`),
the built-in checks' parameters (each check declares its class, `audit.judge.checks`) and the rulebook
(`audit.judge.rules`). This module sits above all three, so that `audit.config`, which every measuring
stage reads its section from, imports nothing of the checks or the rules.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from audit.judge.checks import CHECKS
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
from audit.judge.rules import Rulebook, check_rulebook

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
    sections = build_sections(defaults, str(DEFAULT_CONFIG))
    _builtin_rules(_rule_tables(defaults, str(DEFAULT_CONFIG)), str(DEFAULT_CONFIG))
    merged, files, rulebook_base, overlay = defaults, (str(DEFAULT_CONFIG),), DEFAULT_CONFIG.parent, {}
    if path is not None:
        path = Path(path).resolve()
        overlay = read_toml(path)
        merged = merge_tables(defaults, overlay)
        files += (str(path),)
        if "rulebook" in overlay.get("text", {}):
            rulebook_base = path.parent
        sections = build_sections(merged, str(path))
    origin = files[-1]
    rulebook_path = rulebook_base / sections["text"].rulebook
    rulebook = check_rulebook(rulebook_path)
    clashes = sorted(set(CHECKS) & {r.id for r in rulebook.rules})
    if clashes:
        raise ConfigError(rulebook_path, f"rules.{clashes[0]}", "this rule id belongs to a built-in check")
    tables = _rule_tables(merged, origin)
    stated_in = {rule_id: origin for rule_id in overlay.get("rules", {})}  # which file to name
    rules = {**_builtin_rules(tables, origin), **_rulebook_rules(tables, rulebook, stated_in)}
    rulebook = rulebook.with_settings({rule_id: rules[rule_id] for rule_id in rulebook.ids})
    _check_labels(sections["labels"], set(rules), origin)
    judged = {name: value for name, value in merged.items() if name not in UNJUDGED_SECTIONS}
    judged["asr"] = {name: value for name, value in judged.get("asr", {}).items()
                     if name not in UNJUDGED_ASR_KEYS}
    digest = hashlib.sha256(json.dumps(judged, sort_keys=True, default=str).encode())
    digest.update(rulebook_path.read_bytes())
    for intent in rulebook.intents:  # a refitted model judges anew, as an edited rulebook does
        if intent.model is not None:
            digest.update(intent.model.file_sha256.encode())
    return Config(**sections, rules=rules, rulebook=rulebook, files=files, sha256=digest.hexdigest())


def _rule_tables(table: dict, origin: str) -> dict[str, dict]:
    """The `[rules]` tables of a config table, by rule id, each checked to be a table."""
    rules_table = table.get("rules", {})
    if not isinstance(rules_table, dict):
        raise ConfigError(origin, "rules", "must be a table of rule tables")
    for rule_id, rule_table in rules_table.items():
        if not isinstance(rule_table, dict):
            raise ConfigError(origin, f"rules.{rule_id}", "must be a table")
    return rules_table


def _builtin_rules(tables: dict[str, dict], origin: str) -> dict[str, RuleConfig]:
    """The built-in checks' settings, each with its parameters; every check must have its table."""
    for rule_id in CHECKS:
        if rule_id not in tables:
            raise ConfigError(origin, f"rules.{rule_id}", "missing: every rule needs its settings")
    return {rule_id: build_rule(rule_table, CHECKS[rule_id].params, origin, f"rules.{rule_id}")
            for rule_id, rule_table in tables.items() if rule_id in CHECKS}


def _rulebook_rules(tables: dict[str, dict], rulebook: Rulebook,
                    stated_in: dict[str, str]) -> dict[str, RuleConfig]:
    """Every rulebook rule's settings: its own severity, weight and enabled, with what a
    `[rules."<id>"]` table of the config changes laid over them. A table for no rule, built-in or
    in the rulebook, is refused naming the file it is in (the site file, else the defaults)."""
    known = sorted({*CHECKS, *rulebook.ids})
    for rule_id in tables:
        if rule_id not in known:
            raise ConfigError(stated_in.get(rule_id, str(DEFAULT_CONFIG)), f"rules.{rule_id}",
                              f"no such rule; known rules: {known}")
    settings = {}
    for rule in rulebook.rules:
        own = {"enabled": rule.enabled, "severity": rule.severity, "weight": rule.weight}
        settings[rule.id] = build_rule({**own, **tables.get(rule.id, {})}, None,
                                       stated_in.get(rule.id, str(DEFAULT_CONFIG)), f"rules.{rule.id}")
    return settings


def _check_labels(labels: LabelsConfig, rule_ids: set[str], origin: str) -> None:
    """Every rule (built-in check or rulebook rule) has a name and category, and no other id does."""
    for rule_id in sorted(rule_ids - set(labels.rules)):
        raise ConfigError(origin, f"labels.rules.{rule_id}",
                          "missing: every rule needs a name and category, e.g. { name = \"...\", category = \"服务规范\" }")
    for rule_id in sorted(set(labels.rules) - rule_ids):
        raise ConfigError(origin, f"labels.rules.{rule_id}", "no such rule in the checks or the rulebook")
