"""Findings that rest on words the ASR was unsure of go to a reviewer instead of failing the call.

Whisper gives every word a probability. A text finding proves what was said only as far as its
words are right, and some confusions are exactly the ones the norms turn on: base writes 你 for a
polite 您 on telephone audio. A failed text rule whose every matched piece of evidence lies on words
below `[asr] sure_word_probability` is `unsure`: it takes no points off, and the call goes to review
with the finding, its words and their confidence, for a reviewer to listen. Only rules that fail
on something said are weighed (the rulebook's `forbid` rules): a rule failing for what is missing
shows what was said only as context. A match on a character
the ASR is known to confuse with another (`[asr] confusable`: 你 and 您) needs the higher
`sure_confusable_probability`. Findings about what is
missing (no closing, no 工号) and about the audio (rings, silences, rate) are judged as before, and
so are transcripts without word confidences (sidecars).
"""

from __future__ import annotations

import bisect
from dataclasses import replace

from audit.config import AsrConfig
from audit.records import Evidence, RuleResult, Transcript, Word


def weigh_confidence(results: tuple[RuleResult, ...], transcript: Transcript, asr: AsrConfig,
                     said: frozenset[str]) -> tuple[RuleResult, ...]:
    """The results with every text failure that rests only on unsure words made `unsure`.

    Parameters
    ----------
    results : tuple of RuleResult
        As the checks gave them.
    transcript : Transcript
        The transcript they judged; its words carry the ASR's probabilities (0-1).
    asr : AsrConfig
        `sure_word_probability` (words below it are unsure; 0 turns this off), `confusable` and
        `sure_confusable_probability` (the bar for a match on a confusable character).
    said : frozenset of str
        The ids of the rules that fail on something said (their evidence is the violation).
    """
    confusable = frozenset("".join(asr.confusable))
    words = _WordIndex(transcript)
    return tuple(_weighed(result, words, asr, confusable) if result.rule_id in said else result
                 for result in results)


class _WordIndex:
    """The transcript's words with a probability, per speaker in time order: the words under a
    piece of evidence are found by bisection, not by a scan of the whole call per piece."""

    def __init__(self, transcript: Transcript):
        self._words: dict[str, list[Word]] = {}
        for utterance in transcript.utterances:
            self._words.setdefault(utterance.speaker, []).extend(
                w for w in utterance.words if w.probability is not None)
        for words in self._words.values():
            words.sort(key=lambda w: w.start)
        self._starts = {speaker: [w.start for w in words] for speaker, words in self._words.items()}
        self._longest = {speaker: max(w.end - w.start for w in words)
                         for speaker, words in self._words.items() if words}

    def under(self, evidence: Evidence) -> list[Word]:
        words, starts = self._words.get(evidence.speaker, []), self._starts.get(evidence.speaker, [])
        if not words:
            return []
        low = bisect.bisect_left(starts, evidence.start - self._longest[evidence.speaker])
        high = bisect.bisect_left(starts, evidence.end)
        return [w for w in words[low:high] if w.end > evidence.start]


def _weighed(result: RuleResult, words: _WordIndex, asr: AsrConfig, confusable: frozenset[str]) -> RuleResult:
    if result.status != "fail" or asr.sure_word_probability <= 0:
        return result
    matched = [e for e in result.evidence if e.match]
    if not matched:
        return result
    doubts = [_doubt(words.under(e), asr, confusable) for e in matched]
    if any(doubt is None for doubt in doubts):
        return result  # a piece of evidence the ASR was sure of (or gave no confidence for) stands
    lowest = min(doubts)
    return replace(result, status="unsure",
                   message=f"识别置信度低(最低{lowest:.2f}),请复听确认:{result.message}",
                   details={**result.details, "word_probability": round(lowest, 3)})


def _doubt(words: list[Word], asr: AsrConfig, confusable: frozenset[str]) -> float | None:
    """The lowest probability among the words under a piece of evidence when one of them is below
    its bar (a word holding a confusable character has the higher bar); None when the evidence is
    sure or no probability is known."""
    doubted = [word.probability for word in words
               if word.probability < (asr.sure_confusable_probability if confusable.intersection(word.text)
                                      else asr.sure_word_probability)]
    return min(doubted) if doubted else None
