"""A small trained model of what an utterance means: character n-grams, logistic regression.

Patterns and example sentences (`audit.judge.intent`) recognise the wordings someone wrote down; a
model trained on labelled utterances also scores wordings nobody listed, from the characters they
share with what it was taught (`是您自己` and `错了` lean towards arguing wherever they stand). It is
the third way an intent recognises its meaning, next to its patterns and examples, and only adds
hits: the rulebook's exclusions, mood and negation judge a model's hit like any other.

- **features**: the character 1- to 3-grams of the normalised utterance, the utterance's start and
  end marked (`^` / `$`, so a final 吧 is its own feature); term frequency dampened (1 + log tf),
  weighted by inverse document frequency, scaled to unit length;
- **classifier**: L2-regularised logistic regression, the two classes weighted to count alike,
  fitted with scipy's L-BFGS;
- **threshold**: chosen on the training data alone, by 5-fold cross-validation: the lowest score
  at which at most `max_false_rate` (default 0.001) of the held-out negative utterances fire. A
  reviewer sees the score on each finding (`与客户争辩 模型 0.93`).

The model file (JSON) holds the vocabulary, weights, threshold and the SHA-256 of the files it was
trained from, so a rulebook whose training data changed since fails on load instead of judging
with a stale model (`audit rules train` refits). Scoring needs only numpy; nothing downloads.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, sparse

FORMAT = 1
NGRAMS = (1, 3)  # character n-gram lengths, inclusive
MIN_COUNT = 2  # an n-gram seen in fewer training utterances is left out of the vocabulary
C = 4.0  # inverse regularisation strength of the logistic regression
FOLDS = 5
MAX_FALSE_RATE = 0.001  # share of held-out negatives allowed at or above the threshold


@dataclass(frozen=True)
class Labelled:
    """One training utterance: normalised text and whether it says the intent."""

    text: str
    says: bool


def ngrams(text: str) -> Counter:
    """Character n-grams (`NGRAMS`) of `text` with its start and end marked, counted."""
    marked = f"^{text}$"
    return Counter(marked[i:i + n] for n in range(NGRAMS[0], NGRAMS[1] + 1)
                   for i in range(len(marked) - n + 1) if marked[i:i + n] not in ("^", "$"))


def files_digest(paths: list[Path]) -> str:
    """SHA-256 of the training files' bytes in order: what a model file records it was fitted on."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class TextModel:
    """A fitted model: `score` is the probability that an utterance says the intent."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # (n_features,) inverse document frequency
    weights: np.ndarray  # (n_features,)
    bias: float
    threshold: float  # an utterance scoring at least this says the intent
    data_sha256: str
    stats: dict  # positives, negatives, cross-validated recall and false rate, for the README
    file_sha256: str = ""  # of the model file it was loaded from: part of the config's hash

    def score(self, text: str) -> float:
        """Probability in [0, 1] that the normalised `text` says the intent."""
        counts = ngrams(text)
        index = [self.vocabulary[g] for g in counts if g in self.vocabulary]
        if not index:
            return 1.0 / (1.0 + math.exp(-self.bias))
        tf = np.array([1.0 + math.log(counts[g]) for g in counts if g in self.vocabulary])
        values = tf * self.idf[index]
        values /= np.linalg.norm(values)
        z = float(values @ self.weights[index]) + self.bias
        return 1.0 / (1.0 + math.exp(-z))

    def save(self, path: Path) -> None:
        ordered = sorted(self.vocabulary, key=self.vocabulary.get)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "format": FORMAT, "ngrams": list(NGRAMS), "threshold": round(self.threshold, 6),
            "data_sha256": self.data_sha256, "stats": self.stats, "bias": round(self.bias, 6),
            "vocabulary": ordered, "idf": [round(float(v), 4) for v in self.idf],
            "weights": [round(float(v), 5) for v in self.weights]}, ensure_ascii=False), encoding="utf-8")


def load_model(path: Path) -> TextModel:
    """Read a model file; a missing or malformed file raises ValueError saying what is wrong."""
    try:
        raw = path.read_bytes()
        table = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no model file {path} (fit it with: audit rules train)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a model file: {error}") from None
    if not isinstance(table, dict) or table.get("format") != FORMAT or table.get("ngrams") != list(NGRAMS):
        raise ValueError(f"{path} is not a format-{FORMAT} model of character {NGRAMS} n-grams")
    vocabulary, idf, weights = table.get("vocabulary"), table.get("idf"), table.get("weights")
    if not (isinstance(vocabulary, list) and isinstance(idf, list) and isinstance(weights, list)
            and len(vocabulary) == len(idf) == len(weights)):
        raise ValueError(f"{path}: vocabulary, idf and weights must be lists of one length")
    return TextModel({g: i for i, g in enumerate(vocabulary)}, np.asarray(idf, dtype=np.float64),
                     np.asarray(weights, dtype=np.float64), float(table["bias"]),
                     float(table["threshold"]), str(table["data_sha256"]), dict(table.get("stats", {})),
                     hashlib.sha256(raw).hexdigest())


def _features(items: list[Labelled], vocabulary: dict[str, int] | None = None):
    """(vocabulary, idf, unit-length tf-idf matrix) of `items`; the vocabulary built if not given."""
    counted = [ngrams(item.text) for item in items]
    if vocabulary is None:
        seen = Counter(g for counts in counted for g in counts)
        vocabulary = {g: i for i, g in enumerate(sorted(g for g, n in seen.items() if n >= MIN_COUNT))}
    rows, cols, values = [], [], []
    for row, counts in enumerate(counted):
        for gram, n in counts.items():
            if gram in vocabulary:
                rows.append(row)
                cols.append(vocabulary[gram])
                values.append(1.0 + math.log(n))
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=(len(items), len(vocabulary)))
    df = np.bincount(matrix.indices, minlength=len(vocabulary))
    idf = np.log((1.0 + len(items)) / (1.0 + df)) + 1.0
    return vocabulary, idf, matrix


def _scaled(matrix, idf: np.ndarray):
    weighted = matrix @ sparse.diags(idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    return sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted


def _fit_weights(x, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression on rows `x`, labels `y` in {0, 1}."""
    sign = np.where(y > 0, 1.0, -1.0)
    balance = np.where(y > 0, len(y) / (2.0 * max(y.sum(), 1)), len(y) / (2.0 * max((1 - y).sum(), 1)))

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        margin = sign * (x @ w + b)
        value = np.sum(balance * np.logaddexp(0.0, -margin)) + 0.5 / C * (w @ w)
        pull = -balance * sign / (1.0 + np.exp(margin))
        return value, np.append(x.T @ pull + w / C, pull.sum())

    fitted = optimize.minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                               options={"maxiter": 500})
    return fitted.x[:-1], float(fitted.x[-1])


def _fit(items: list[Labelled]) -> tuple[dict[str, int], np.ndarray, np.ndarray, float]:
    vocabulary, idf, counts = _features(items)
    weights, bias = _fit_weights(_scaled(counts, idf), np.array([i.says for i in items], dtype=float))
    return vocabulary, idf, weights, bias


def _scores(items: list[Labelled], vocabulary, idf, weights, bias) -> np.ndarray:
    _, _, counts = _features(items, vocabulary)
    return 1.0 / (1.0 + np.exp(-(_scaled(counts, idf) @ weights + bias)))


def train(items: list[Labelled], data_sha256: str, max_false_rate: float = MAX_FALSE_RATE) -> TextModel:
    """Fit a model on labelled utterances and choose its threshold by cross-validation.

    Parameters
    ----------
    items : list of Labelled
        Normalised utterances, both classes present (at least `FOLDS` of each).
    data_sha256 : str
        `files_digest` of the files they were read from (recorded in the model).
    max_false_rate : float
        Share of held-out negatives allowed to score at or above the threshold (default 0.001).

    Returns
    -------
    TextModel
        Fitted on all `items`; its threshold and cross-validated recall come from `FOLDS` folds
        (utterance i in fold i mod `FOLDS`: fixed, no seed).
    """
    labels = np.array([item.says for item in items])
    if labels.sum() < FOLDS or (~labels).sum() < FOLDS:
        raise ValueError(f"need at least {FOLDS} utterances of each label, got "
                         f"{int(labels.sum())} saying it and {int((~labels).sum())} not")
    held_out = np.zeros(len(items))
    for fold in range(FOLDS):
        inside = [i for i in range(len(items)) if i % FOLDS != fold]
        outside = [i for i in range(len(items)) if i % FOLDS == fold]
        fitted = _fit([items[i] for i in inside])
        held_out[outside] = _scores([items[i] for i in outside], *fitted)
    negatives = np.sort(held_out[~labels])[::-1]
    threshold = float(negatives[int(max_false_rate * len(negatives))]) + 1e-6
    vocabulary, idf, weights, bias = _fit(items)
    stats = {"positives": int(labels.sum()), "negatives": int((~labels).sum()),
             "cv_recall": round(float((held_out[labels] >= threshold).mean()), 3),
             "cv_false_rate": round(float((held_out[~labels] >= threshold).mean()), 4)}
    return TextModel(vocabulary, idf, weights, bias, min(threshold, 1.0), data_sha256, stats)
