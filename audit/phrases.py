"""The one phrase matcher: where a phrase was said, as normalised text, timed to the words.

Every stage and rule that looks for listed words finds them here: the hold announcements and the
thanks after a hold (`audit.measure.timing`), the opening and closing lists of the built-in checks
(`audit.judge.checks`) and the phrase conditions of the text rulebook (`audit.judge.rules`). The semantics:

- **Normalised on both sides.** An utterance and a phrase are compared after `audit.textnorm`:
  simplified characters, half-width forms, no punctuation or spaces, Chinese digits as 0-9
  (`工號：零零八六` holds `工号0086`). A phrase with nothing left after normalising is refused where
  it is configured.
- **Every occurrence.** A phrase occurs at each position of an utterance's normalised text where
  its normalised form starts (`occurrences`); one utterance may hold it several times.
- **One hit per stretch of speech.** Where occurrences overlap in one utterance (the same phrase
  at overlapping positions, or two phrases of a list on the same words), the longest is kept, then
  the earliest (`without_overlaps`): 好好好 holds 好好 once, 您好 and 好 on the same characters are
  one hit.
- **Two counts.** `how_many(hits, "occurrences")` counts the hits; `how_many(hits, "utterances")`
  the utterances holding at least one (a measured event, which is in no utterance, is one of
  each). The rulebook's `more_than = N` holds with more than N utterances, its
  `occurrences_more_than = N` with more than N hits, its `at_least = N` with N distinct phrases
  of the list said.
- **Timed.** A hit starts with its first character and ends with its last, from the word
  timestamps when the words spell the utterance, else spread evenly over it (`char_times`).

The rulebook narrows a phrase's occurrences further (`phrase_spans`): only whole words count
(`Segmenter`: jieba with the rulebook's phrases, its `[dictionary]` words and the company names
kept whole; 应该 inside 应该的 is no hit, and a listed phrase never hides another: 你 still
counts in 你搞错了), and a rule may tolerate homophones (same pinyin and tone: 公号 for 工号) or
near matches (a similarity threshold). The built-in checks' lists are long, specific phrases
(请您稍等, 感谢您的来电) read as occurrences, without word boundaries.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable, Literal

from audit.records import Evidence, Speaker, Utterance
from audit.textnorm import Normalized, char_readings, normalize

MIN_TOLERANT_PINYIN = 2  # a single character has too many homophones to tolerate
MIN_TOLERANT_SIMILARITY = 4  # shorter phrases cannot be "nearly" said
CountUnit = Literal["occurrences", "utterances"]


@dataclass(frozen=True)
class Phrase:
    """A phrase as configured, and as it is matched."""

    written: str
    needle: str  # normalised, as matched
    spoken: str  # normalised with numerals kept, for jieba and pinyin

    @classmethod
    def of(cls, written: str) -> Phrase:
        norm = normalize(written)
        return cls(written, norm.text, norm.with_numerals)


@dataclass(frozen=True)
class Tolerance:
    """How far a rule's phrases may be misheard and still count (off by default)."""

    pinyin: bool = False  # a character may be any homophone (same pinyin with tone)
    similarity: float | None = field(default=None, metadata={"min": 0.5, "max": 1.0})


@dataclass(frozen=True)
class Hit:
    """One place something was found: a phrase, a pattern or an intent in an utterance, or a
    measured event (no utterance)."""

    start: float  # s from the recording start
    end: float
    speaker: Speaker
    text: str  # the utterance (or the event's label)
    match: str  # the matched words as written; "" for context shown to the reviewer
    utterance: int | None  # index in the transcript, None for an event
    key: str  # the phrase, pattern or event kind that matched
    span: tuple[int, int] | None = None  # [start, end) of `match` in the utterance's text
    why: str = ""  # for an intent: its label and score (`key` holds the pattern or example)

    def evidence(self) -> Evidence:
        return Evidence(self.start, self.end, self.speaker, self.text, self.match, self.utterance,
                        self.span if self.match else None)

    def explained(self) -> dict:
        """What fired, for `RuleResult.details["matches"]`: a reviewer can judge it from this."""
        found = {"utterance": self.utterance, "span": list(self.span) if self.span else None,
                 "start_s": round(self.start, 2), "match": self.match}
        if self.why:
            found["intent"], found["by"] = self.why, self.key
        elif self.utterance is not None:
            found["phrase"] = self.key
        else:
            found["event"] = self.key
        return found


def char_times(utterance: Utterance, length: int) -> list[tuple[float, float]]:
    """(start, end) in seconds for each normalised character of the utterance.

    From word timestamps when the words spell the utterance, else spread evenly over it (a close
    enough guess for a reviewer to land on the right second).
    """
    if utterance.words:
        times: list[tuple[float, float]] = []
        for word in utterance.words:
            times.extend([(word.start, word.end)] * len(normalize(word.text).text))
        if len(times) == length:
            return times
    step = (utterance.end - utterance.start) / max(length, 1)
    return [(utterance.start + i * step, utterance.start + (i + 1) * step) for i in range(length)]


def timed_hit(utterance: Utterance, index: int, norm: Normalized, start: int, end: int, key: str,
              times: list[tuple[float, float]] | None = None, why: str = "") -> Hit:
    """The hit of normalised characters [start, end) of an utterance, timed and traced back to the
    written text. `times` is `char_times` of the utterance, when the caller keeps it."""
    times = times or char_times(utterance, len(norm.text))
    first, last = norm.span(start, end)
    return Hit(times[start][0], times[end - 1][1], utterance.speaker, utterance.text,
               utterance.text[first:last], index, key, (first, last), why)


def occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """[start, end) of every position of normalised `text` where `needle` starts (overlapping ones
    too: the filters after may keep a later one; `without_overlaps` makes them one hit)."""
    spans, position = [], text.find(needle) if needle else -1
    while position >= 0:
        spans.append((position, position + len(needle)))
        position = text.find(needle, position + 1)
    return spans


def says(text: str, phrases: Iterable[Phrase]) -> bool:
    """Whether normalised `text` holds an occurrence of one of `phrases`."""
    return any(p.needle and p.needle in text for p in phrases)


def without_overlaps(hits: Iterable[Hit]) -> list[Hit]:
    """One hit per stretch of speech: where hits overlap in an utterance the longest is kept (then
    the earliest); hits of measured events are kept as they are. In time order."""
    kept: list[Hit] = []
    events = [h for h in hits if h.utterance is None]
    said = [h for h in hits if h.utterance is not None]
    for hit in sorted(said, key=lambda h: (h.utterance, h.start, -(h.end - h.start), h.key)):
        previous = kept[-1] if kept else None
        if previous and previous.utterance == hit.utterance and hit.start < previous.end:
            continue
        kept.append(hit)
    return sorted(kept + events, key=lambda h: h.start)


def how_many(hits: Iterable[Hit], unit: CountUnit) -> int:
    """The hits counted as occurrences (each hit) or as utterances (each utterance holding one);
    a measured event is one of either. Overlaps are expected to be removed already."""
    hits = list(hits)
    if unit == "occurrences":
        return len({(h.utterance, h.key, h.start) for h in hits})
    return len({h.utterance if h.utterance is not None else (h.key, h.start) for h in hits})


def find_phrases(utterances: tuple[Utterance, ...], phrases: Iterable[str],
                 speakers: tuple[Speaker, ...]) -> list[Hit]:
    """Every occurrence of one of `phrases` said by one of `speakers`, one per stretch of speech,
    in time order."""
    wanted = [Phrase.of(p) for p in phrases]
    hits = []
    for index, utterance in enumerate(utterances):
        if utterance.speaker not in speakers:
            continue
        norm = normalize(utterance.text)
        times = None
        for phrase in wanted:
            for start, end in occurrences(norm.text, phrase.needle):
                times = times or char_times(utterance, len(norm.text))
                hits.append(timed_hit(utterance, index, norm, start, end, phrase.written, times))
    return without_overlaps(hits)


def find_pattern(utterances: tuple[Utterance, ...], pattern: re.Pattern,
                 speakers: tuple[Speaker, ...]) -> list[Hit]:
    """Like `find_phrases`, for every non-empty match of a compiled regex on the normalised text."""
    hits = []
    for index, utterance in enumerate(utterances):
        if utterance.speaker not in speakers:
            continue
        norm = normalize(utterance.text)
        times = None
        for match in pattern.finditer(norm.text):
            if match.end() > match.start():
                times = times or char_times(utterance, len(norm.text))
                hits.append(timed_hit(utterance, index, norm, match.start(), match.end(),
                                      match.group(0), times))
    return without_overlaps(hits)


# --- whole words and tolerance (the rulebook's narrowing) ----------------------------------------


class Segmenter:
    """jieba with the rulebook's user dictionary; says whether a span would cut a word in two."""

    def __init__(self, phrase_words: frozenset[str], protected_words: frozenset[str]):
        import jieba

        jieba.setLogLevel(logging.WARNING)  # jieba logs its dictionary loading at DEBUG to stderr
        self._jieba = jieba.Tokenizer()
        self._phrase_words = phrase_words
        self._protected = set(protected_words)
        for word in sorted(phrase_words | protected_words):
            self._jieba.add_word(word)  # frequency just high enough to keep it whole
        self._words = lru_cache(maxsize=8192)(self._cut)

    def load(self) -> None:
        self._jieba.check_initialized()

    def add_terms(self, terms: tuple[str, ...]) -> None:
        """Config terms (company names) are protected words; a new one resets the cached cuts."""
        new = {normalize(t).with_numerals for t in terms} - self._protected - {""}
        if new:
            for word in sorted(new):
                self._jieba.add_word(word)
            self._protected |= new
            self._words.cache_clear()

    def _cut(self, text: str) -> tuple[tuple[int, int, str], ...]:
        words, position = [], 0
        for word in self._jieba.cut(text, HMM=False):  # no HMM: unknown runs stay single characters
            words.append((position, position + len(word), word))
            position += len(word)
        return tuple(words)

    def whole_words(self, text: str, start: int, end: int) -> bool:
        """False when [start, end) cuts into a protected word wherever it stands, or into a word
        of jieba's segmentation that is not itself a rulebook phrase (a phrase never hides another)."""
        for word in self._protected:
            position = text.find(word)
            while position >= 0:
                if _cuts(start, end, position, position + len(word)):
                    return False
                position = text.find(word, position + 1)
        for word_start, word_end, word in self._words(text):
            if word_start >= end:
                break
            if _cuts(start, end, word_start, word_end) and word not in self._phrase_words:
                return False
        return True


def _cuts(start: int, end: int, word_start: int, word_end: int) -> bool:
    """Whether the span [start, end) has an edge strictly inside the word [word_start, word_end)."""
    return word_start < start < word_end or word_start < end < word_end


Heard = Callable[[], tuple[list[frozenset[str]], frozenset[str]]]  # per character, and all


def phrase_spans(norm: Normalized, phrase: Phrase, words: Segmenter, tolerance: Tolerance,
                 heard: Heard) -> list[tuple[int, int]]:
    """Spans of a normalised utterance where `phrase` was said, as whole words: its occurrences,
    with `tolerance.pinyin` its homophones too; with `tolerance.similarity`, when neither is there,
    the best near match. `heard` gives the pinyin readings of each character and of the whole
    utterance, computed only when homophones are looked for."""
    text, needle = norm.text, phrase.needle
    threshold = tolerance.similarity
    pinyin = tolerance.pinyin and len(text) >= len(needle) >= MIN_TOLERANT_PINYIN
    near = bool(threshold and len(needle) >= MIN_TOLERANT_SIMILARITY and text)
    if needle not in text and not (pinyin or near):
        return []  # the common case, decided before any list is made
    spans = occurrences(text, needle)
    if pinyin:
        spans += homophone_spans(text, phrase, *heard(), exclude=set(spans))
    spans = [s for s in spans if words.whole_words(norm.with_numerals, *s)]
    if not spans and near:
        spans = near_match(needle, text, threshold)
    return spans


def homophone_spans(text: str, phrase: Phrase, readings: list[frozenset[str]], sounds: frozenset[str],
                    exclude: set) -> list[tuple[int, int]]:
    """Spans where every character is the phrase's or sounds like it (same pinyin and tone)."""
    meant = [char_readings(char) for char in phrase.spoken]
    if not all(char in text or heard & sounds for char, heard in zip(phrase.needle, meant)):
        return []  # some character of the phrase is neither written nor heard anywhere here
    size, found = len(phrase.needle), []
    first, first_sounds = phrase.needle[0], meant[0]
    for start in range(len(text) - size + 1):
        if text[start] != first and not readings[start] & first_sounds:  # cheap test before the rest
            continue
        if (start, start + size) not in exclude and all(
                text[start + k] == phrase.needle[k] or readings[start + k] & meant[k] for k in range(1, size)):
            found.append((start, start + size))
    return found


def near_match(needle: str, text: str, threshold: float) -> list[tuple[int, int]]:
    """The best alignment of `needle` in `text` scoring at least `threshold` (0.5-1.0), if any."""
    from rapidfuzz import fuzz

    cutoff = threshold * 100
    if len(text) < len(needle):
        return [(0, len(text))] if fuzz.ratio(needle, text) >= cutoff else []
    found = fuzz.partial_ratio_alignment(needle, text, score_cutoff=cutoff)
    # a near match says the phrase with at most one character dropped: a fragment (诉你们 in 要不要告诉你们
    # for 投诉你们) scores as high but is not the phrase said
    if found is None or found.dest_end - found.dest_start < max(len(needle) - 1, MIN_TOLERANT_SIMILARITY):
        return []
    return [(found.dest_start, found.dest_end)]
