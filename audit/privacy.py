"""Phone, ID and bank card numbers kept out of what is shared.

`mask_numbers` finds the numbers however they are written and keeps only their last four digits.
The reviewer report uses it on everything it shows (`[report] mask_pii`, on by default). With
`[privacy] mask_outputs = true` the outputs that get passed around are masked the same way: the
call records (`calls/*.json`, file names included), `summary.json`, `audit export` and the logs
(`Privacy`). The results database is the auditors' own store and keeps every text in clear: it is
what masked records are written from, so turning the setting off again gives the clear records
back.

A masked call id is the id with its numbers masked and, where that changed it, a tag of 8 letters
keyed by a secret the results database keeps (`night__138_1234_5678` ->
`night__***_****_5678-kqzvhbme`): every output names the call the same way, two calls whose
numbers differ only in the masked digits stay apart, the record's file name is the same on every
run (skip, resume and restore keep working), and the number cannot be recovered by hashing
candidate numbers without the database.

Nothing here imports another part of the tool, so every layer (store, batch, report, cli) can.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# --- finding the numbers ------------------------------------------------------------------------

# Digits as ASR and transcribers write them: ASCII, full-width, and read digit by digit in Chinese
# (幺 is "one" on the phone, 两 "two"), also in the financial numerals (壹贰叁, 貳參陸 traditional),
# as in audit.textnorm. A trailing X ends an ID number.
_SPELLED = "０１２３４５６７８９" "零〇一二三四五六七八九幺两" "壹贰叁肆伍陆柒捌玖貳參陸"
_AS_ASCII = "0123456789" "0012345678912" "123456789236"
_DIGIT_CHARS = "0-9" + _SPELLED
_TO_ASCII = str.maketrans(_SPELLED + "x", _AS_ASCII + "X")
_DIGIT_GROUP = re.compile(f"[{_DIGIT_CHARS}]+(?:[Xx](?![A-Za-z]))?")
# Characters that join digit groups into one written number (138 1234 5678, 0755-1234567,
# 138.1234.5678, 138，1234，5678, the underscores a file name's spaces become in a call id), up to
# two between groups (138  1234  5678, in__138__1234). Only a run that reads as a phone, ID or
# card number is masked, so lists of short numbers stay as they are.
_JOINERS = " \u3000-_.,，、\u2010\u2011\u2013\u2014\uff0d\uff0e"
MAX_JOINERS = 2
_SENSITIVE = re.compile(
    r"(?:86)?1[3-9]\d{9}"  # mobile, optionally +86
    r"|0\d{9,11}"  # landline with its area code
    r"|\d{17}[\dX]"  # resident ID (18)
    r"|\d{15,19}"  # old 15-digit ID, bank card (16-19)
)
KEEP_DIGITS = 4  # what call centres themselves show and ask for (手机号后四位)
MASK = "*"


def mask_numbers(text: str) -> str:
    """Phone, ID and bank card numbers with all but their last four digits as `*`.

    The text keeps its length, so positions found in the original (highlights) stay valid. Dates,
    amounts, agent ids and the four digits of a verification are left alone.
    """
    chars = list(text)
    for run in _digit_runs(text):
        for positions in _sensitive_numbers(run):
            for position in positions[:-KEEP_DIGITS]:
                chars[position] = MASK
    return "".join(chars)


def _digit_runs(text: str):
    """Consecutive digit groups separated by one or two joining characters."""
    run: list[re.Match] = []
    for group in _DIGIT_GROUP.finditer(text):
        gap = text[run[-1].end(): group.start()] if run else ""
        if run and not (0 < len(gap) <= MAX_JOINERS and all(c in _JOINERS for c in gap)):
            yield run
            run = []
        run.append(group)
    if run:
        yield run


def _sensitive_numbers(run: list[re.Match]):
    """Character positions of each sensitive number in a run, the longest from each group first.

    Groups are tried together and alone, so a phone number written next to an ID number with only
    a space between them is still found as two numbers. A group that is a whole number by itself
    is taken alone (`13812345678_0930`: a phone number and a time, not a 15-digit card).
    """
    first = 0
    while first < len(run):
        alone = _SENSITIVE.fullmatch(run[first].group().translate(_TO_ASCII))
        for last in range(first + 1 if alone else len(run), first, -1):
            groups = run[first:last]
            if _SENSITIVE.fullmatch("".join(g.group().translate(_TO_ASCII) for g in groups)):
                yield [i for g in groups for i in range(g.start(), g.end())]
                first = last
                break
        else:
            first += 1


def _merged(original: str, *masked: str) -> str:
    """`original` with every character any of the `masked` versions (same length) masked."""
    return "".join(MASK if any(m[i] != c for m in masked) else c for i, c in enumerate(original))


def masked_slice(text: str, masked_text: str, part: str, at: int | None = None) -> str:
    """`part` of `text` masked as it reads in `text` (a number is only a number in its context:
    `138 1234` alone is two short numbers), and as it reads alone."""
    alone = mask_numbers(part)
    if at is None:
        at = text.find(part) if part else -1
    if at < 0 or text[at:at + len(part)] != part:
        return alone
    return _merged(part, masked_text[at:at + len(part)], alone)


# --- the outputs --------------------------------------------------------------------------------

TAG_LETTERS = 8
KEPT_KEYS = frozenset({"schema", "sha256"})  # hashes and schema names: no text of the call


def masked_values(value: Any) -> Any:
    """Every string in a JSON-like value masked (dict keys and `KEPT_KEYS` values left alone)."""
    if isinstance(value, str):
        return mask_numbers(value)
    if isinstance(value, dict):
        return {k: v if k in KEPT_KEYS else masked_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked_values(v) for v in value]
    return value


@dataclass(frozen=True)
class Privacy:
    """How one output folder names and writes its shared outputs.

    `enabled` is `[privacy] mask_outputs`; `key` is the folder's secret for masked call ids (from
    the results database; empty when it has none yet, which is only allowed while disabled).
    """

    enabled: bool = False
    key: bytes = b""

    def __post_init__(self):
        if self.enabled and not self.key:
            raise ValueError("masked outputs need the output folder's key")

    def id(self, call_id: str) -> str:
        """The call id as the outputs name it."""
        return masked_id(call_id, self.key) if self.enabled else call_id

    def names(self, call_id: str) -> set[str]:
        """Every id the call's record may have been written under (clear, and masked once the
        folder has a key), so a record written with the other setting can be found and removed."""
        return {call_id, masked_id(call_id, self.key)} if self.key else {call_id}

    def text(self, text: str) -> str:
        return mask_numbers(text) if self.enabled else text

    def record(self, record: dict) -> dict:
        """A call record (`store.call_record`) as written to `calls/`: masked and marked
        `"masked": true` when enabled, else the record itself."""
        if not self.enabled:
            return record
        return {**mask_record(record), "call_id": self.id(record["call_id"]), "masked": True}

    def summary(self, document: dict) -> dict:
        """The run summary as written to `summary.json` (it says whether its ids are masked).

        The config's file names and hash are the site's own and stay as they are: the report loads
        the config from them."""
        marked = {**document, "privacy": {"mask_outputs": self.enabled}}
        if not self.enabled:
            return marked
        masked = masked_values(marked)
        masked["config"] = document["config"]
        for key in ("calls", "errors"):
            for row, clear in zip(masked[key], document[key]):
                row["call_id"] = self.id(clear["call_id"])
        for row, clear in zip(masked["id_collisions"], document["id_collisions"]):
            row["call_id"], row["wanted"] = self.id(clear["call_id"]), self.id(clear["wanted"])
        by_agent: dict[str, dict] = {}  # agent ids are keys here; two masked alike are counted together
        for agent, row in document["fails_by_agent"].items():
            merged = by_agent.setdefault(mask_numbers(agent), {"calls": 0, "fails": {}})
            merged["calls"] += row["calls"]
            for rule, count in row["fails"].items():
                merged["fails"][rule] = merged["fails"].get(rule, 0) + count
        masked["fails_by_agent"] = {agent: {"calls": row["calls"], "fails": dict(sorted(row["fails"].items()))}
                                    for agent, row in sorted(by_agent.items())}
        return masked


def masked_id(call_id: str, key: bytes) -> str:
    """`call_id` with its numbers masked and, when that changed it, a tag keyed by `key`."""
    shown = mask_numbers(call_id)
    if shown == call_id:
        return call_id
    number = int.from_bytes(hmac.new(key, call_id.encode(), hashlib.sha256).digest()[:8], "big")
    letters = []
    for _ in range(TAG_LETTERS):
        number, remainder = divmod(number, 26)
        letters.append(chr(ord("a") + remainder))
    return f"{shown}-{''.join(letters)}"


def mask_record(record: dict) -> dict:
    """Every text of a call record masked: transcript, words, evidence, messages, details,
    metadata, paths and notes. Words and matches are masked as they read in their utterance."""
    masked = masked_values(record)
    for key in ("utterances", "dropped_utterances"):
        for utterance, clear in zip(masked.get(key, []), record.get(key, [])):
            words = clear.get("words") or []
            if words:
                _mask_words(utterance["words"], words)
    texts = [u["text"] for u in record.get("utterances", [])]
    shown = [u["text"] for u in masked.get("utterances", [])]
    for result, clear in zip(masked.get("results", []), record.get("results", [])):
        quoted: dict[str, str] = {}  # each match as written -> as masked in its utterance
        for evidence, item in zip(result.get("evidence", []), clear.get("evidence", [])):
            if item.get("match"):
                evidence["match"] = masked_slice(item["text"], evidence["text"], item["match"])
                quoted[item["match"]] = evidence["match"]
        for found, item in zip(_matches(result), _matches(clear)):
            index, span = item.get("utterance"), item.get("span")
            if (isinstance(index, int) and 0 <= index < len(texts) and isinstance(span, list)
                    and len(span) == 2 and isinstance(item.get("match"), str)):
                found["match"] = masked_slice(texts[index], shown[index], item["match"], span[0])
                quoted[item["match"]] = found["match"]
        if isinstance(result.get("message"), str):  # a message quotes its matches: “138 1234”
            for match, masked_match in quoted.items():
                if masked_match != match:
                    result["message"] = result["message"].replace(match, masked_match)
    return masked


def _matches(result: dict) -> list[dict]:
    found = (result.get("details") or {}).get("matches")
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def _mask_words(masked: list[dict], words: list[dict]) -> None:
    """Each word masked alone and as part of the words joined up: Whisper splits 13812345678 into
    138 / 1234 / 5678, none of them a number alone."""
    texts = [w.get("text", "") if isinstance(w.get("text"), str) else "" for w in words]
    joined = "".join(texts)
    together = mask_numbers(joined)
    position = 0
    for word, text in zip(masked, texts):
        if text:
            word["text"] = _merged(text, together[position:position + len(text)], mask_numbers(text))
        position += len(text)


# --- logs ---------------------------------------------------------------------------------------

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class MaskingFormatter(logging.Formatter):
    """Another formatter's lines with the numbers masked (tracebacks included)."""

    def __init__(self, inner: logging.Formatter | None = None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return mask_numbers(self.inner.format(record))


@contextmanager
def masked_logging(enabled: bool):
    """While inside, every handler of the root logger writes its lines masked (when `enabled`)."""
    if not enabled:
        yield
        return
    handlers = list(logging.getLogger().handlers)
    before = [handler.formatter for handler in handlers]
    for handler in handlers:
        if not isinstance(handler.formatter, MaskingFormatter):
            handler.setFormatter(MaskingFormatter(handler.formatter))
    try:
        yield
    finally:
        for handler, formatter in zip(handlers, before):
            handler.setFormatter(formatter)


def worker_logging(masked: bool) -> None:
    """A worker process's warnings to stderr, as the run logs them (masked when `masked`);
    without it a spawned worker prints through logging's bare last-resort handler."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(LOG_FORMAT)
    handler.setFormatter(MaskingFormatter(formatter) if masked else formatter)
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
