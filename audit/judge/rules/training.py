"""Fitting the intents' models (`audit rules train`) from the labelled utterances the rulebook names.

An intent opts in with `model = { file = "models/NAME.json", data = ["utterances/FILE.jsonl", ...],
false_rate = 0.001 }` (paths relative to the rulebook). Each data file holds one JSON object per
line, `{"intent": "contradiction", "text": "您肯定是记错了", "label": 1}` (1: says it, 0: does not), or
one utterance labelled for several intents, `{"text": "...", "labels": {"contradiction": 0, "hedge": 1}}`;
other keys such as `source` are kept for people. A site adds
utterances to a file and runs `audit rules train`; the loader refuses a model whose data changed
since it was fitted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from audit.config import ConfigError, read_toml
from audit.judge import textmodel
from audit.textnorm import normalize

MODEL_KEYS = ("file", "data", "false_rate")


@dataclass(frozen=True)
class ModelSpec:
    """Where an intent's model and its training utterances are, as the rulebook says."""

    intent: str
    file: Path
    data: tuple[Path, ...]
    false_rate: float


def model_spec(intent: str, value: object, rulebook: Path) -> ModelSpec:
    """Read `[intents.NAME] model = {...}`; a bad key raises ConfigError naming it."""
    key = f"intents.{intent}.model"
    if not isinstance(value, dict):
        raise ConfigError(str(rulebook), key, "must be a table: { file = ..., data = [...] }")
    for name in value:
        if name not in MODEL_KEYS:
            raise ConfigError(str(rulebook), f"{key}.{name}", f"unknown key; expected one of {list(MODEL_KEYS)}")
    file, data = value.get("file"), value.get("data")
    if not isinstance(file, str) or not file:
        raise ConfigError(str(rulebook), f"{key}.file", "missing: the model file, relative to the rulebook")
    if not isinstance(data, list) or not data or not all(isinstance(d, str) for d in data):
        raise ConfigError(str(rulebook), f"{key}.data", "must list the training files (JSON lines)")
    false_rate = value.get("false_rate", textmodel.MAX_FALSE_RATE)
    if isinstance(false_rate, bool) or not isinstance(false_rate, (int, float)) or not 0 < false_rate < 0.5:
        raise ConfigError(str(rulebook), f"{key}.false_rate", f"{false_rate!r} is not a share in (0, 0.5)")
    base = rulebook.parent
    paths = tuple(base / d for d in data)
    for i, path in enumerate(paths):
        if not path.is_file():
            raise ConfigError(str(rulebook), f"{key}.data[{i}]", f"no file {path}")
    return ModelSpec(intent, base / file, paths, float(false_rate))


def read_utterances(spec: ModelSpec) -> list[textmodel.Labelled]:
    """The intent's labelled utterances from its data files, normalised; a bad line raises
    ValueError naming the file and line."""
    items = []
    for path in spec.data:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                labels = row["labels"] if "labels" in row else {row["intent"]: row["label"]}
                if spec.intent not in labels:
                    continue
                text, label = row["text"], labels[spec.intent]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not an utterance line ({{\"intent\", \"text\", "
                                 f'"label"}} or {{"text", "labels"}}): {error}') from None
            if label not in (0, 1) or not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path}:{number}: label must be 0 or 1 and text a non-empty string")
            items.append(textmodel.Labelled(normalize(text).text, bool(label)))
    return items


def load_intent_model(spec: ModelSpec) -> textmodel.TextModel:
    """The fitted model, refused (ValueError) when its training files changed since it was fitted."""
    model = textmodel.load_model(spec.file)
    if model.data_sha256 != textmodel.files_digest(list(spec.data)):
        raise ValueError(f"{spec.file} was fitted on other data than {[str(p) for p in spec.data]} "
                         "hold now; fit it again with: audit rules train")
    return model


def train_rulebook(path: Path) -> list[tuple[ModelSpec, textmodel.TextModel]]:
    """Fit and save the model of every intent of the rulebook at `path` that names one."""
    table = read_toml(path)
    fitted = []
    for intent, value in table.get("intents", {}).items():
        if isinstance(value, dict) and "model" in value:
            spec = model_spec(intent, value["model"], path)
            model = textmodel.train(read_utterances(spec), textmodel.files_digest(list(spec.data)),
                                    spec.false_rate)
            model.save(spec.file)
            fitted.append((spec, model))
    return fitted
