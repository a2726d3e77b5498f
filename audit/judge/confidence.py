"""Findings that rest on words the ASR was unsure of, or could not have written, go to a reviewer
instead of failing the call.

Whisper gives every word a probability. A text finding proves what was said only as far as its
words are right, and some confusions are exactly the ones the norms turn on: base writes 你 for a
polite 您 on telephone audio. A failed `forbid` rule (one that fails on something said) whose every
matched piece of evidence is doubted is `unsure`: it takes no points off, and the call goes to
review (`[scoring] unsure_review`) with the finding and its words' confidence, for a reviewer to
listen. A piece of evidence is doubted when its words' mean probability is under
`[asr] sure_word_probability` (one misheard word does not undo a sentence, a lone doubtful word
is doubtful), or when a word holding a character the ASR confuses with another (`[asr]
confusable`: 你 and 您) is under the higher `sure_confusable_probability`. A finding whose every
match is on such a character also needs `confusable_min_sure` sure matches: base once wrote 你 for
您 at 0.95, while an agent who really says 你 says it more than once.

A rule failing for what is missing is judged as before, except where a word Whisper leaves out of
its text (`[asr] omitted`: the filler 嗯, a backchannel of active listening) could have satisfied
it: on an ASR's text (one whose words carry probabilities) that absence proves nothing, so the
failure is `unsure` too. So is
a failure for something missing (a requirement: the closing, the opening's 工号) where the agent
spoke for `[asr] untranscribed_min_s` or more and the ASR wrote nothing for it, inside the window
the missing words were due in (the whole call when the rule names none): base once returned no text
for a 3.9 s closing. Findings about the audio (rings, silences, rate) and transcripts without word
confidences (sidecars) are judged as before.
"""

from __future__ import annotations

import bisect
from dataclasses import replace

from audit.config import AsrConfig
from audit.records import Evidence, Interval, RuleResult, Transcript, Word
from audit.textnorm import normalize

CONFUSABLE_WORD_CHARS = 3  # a match this short that holds a confusable character turns on it


def weigh_confidence(results: tuple[RuleResult, ...], transcript: Transcript, asr: AsrConfig,
                     said: frozenset[str], unheard: frozenset[str] = frozenset(),
                     wanting: frozenset[str] = frozenset(),
                     unwritten: tuple[Interval, ...] = ()) -> tuple[RuleResult, ...]:
    """The results with every text failure that rests on doubted or unwritable words made `unsure`.

    Parameters
    ----------
    results : tuple of RuleResult
        As the checks gave them.
    transcript : Transcript
        The transcript they judged; its words carry the ASR's probabilities (0-1).
    asr : AsrConfig
        `sure_word_probability` (a mean below it is doubted; 0 turns the weighing of `said`
        rules off),
        `confusable`, `sure_confusable_probability` (the bar for a word holding a confusable
        character), `confusable_min_sure` (sure matches needed when every match is on one).
    said : frozenset of str
        The ids of the rules that fail on something said (their evidence is the violation).
    unheard : frozenset of str
        The ids of the rules one of `asr.omitted` could satisfy (weighed on ASR text only: a
        transcript whose words carry probabilities).
    wanting : frozenset of str
        The ids of the rules that fail for something missing; a result that names what it
        missed (`missing`) counts too.
    unwritten : tuple of Interval
        The agent's speech the ASR wrote nothing for (`audit.measure.coverage.untranscribed`); weighed on ASR text only.
    """
    confusable = frozenset("".join(asr.confusable))
    words = _WordIndex(transcript)
    omitted = "、".join(asr.omitted)
    weighed = []
    for result in results:
        if result.status == "fail" and result.rule_id in said and asr.sure_word_probability > 0:
            result = _weighed(result, words, asr, confusable)
        elif result.status == "fail" and result.rule_id in unheard and words.from_asr:
            result = replace(result, status="unsure",
                             message=f"语音识别不写语气词({omitted}),无法确认:{result.message}")
        elif result.status == "fail" and (result.rule_id in wanting or result.missing) and words.from_asr:
            result = _unwritten(result, unwritten)
        weighed.append(result)
    return tuple(weighed)


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
        self.from_asr = any(self._words.values())  # an ASR's text: its words carry probabilities

    def under(self, evidence: Evidence) -> list[Word]:
        words, starts = self._words.get(evidence.speaker, []), self._starts.get(evidence.speaker, [])
        if not words:
            return []
        low = bisect.bisect_left(starts, evidence.start - self._longest[evidence.speaker])
        high = bisect.bisect_left(starts, evidence.end)
        return [w for w in words[low:high] if w.end > evidence.start]


def _weighed(result: RuleResult, words: _WordIndex, asr: AsrConfig, confusable: frozenset[str]) -> RuleResult:
    matched = [e for e in result.evidence if e.match]
    under = [words.under(e) for e in matched]
    doubts = [_doubt(w, asr, confusable) for w in under]
    sure = [w for w, doubt in zip(under, doubts) if doubt is None]
    if matched and not sure:
        lowest = min(doubts)
        return replace(result, status="unsure",
                       message=f"识别置信度低({lowest:.2f}),请复听确认:{result.message}",
                       details={**result.details, "word_probability": round(lowest, 3)})
    if (matched and len(sure) < asr.confusable_min_sure and all(sure)
            and all(_confusable_word(e.match, confusable) for e in matched)):
        return replace(result, status="unsure",
                       message=f"易混字仅{len(sure)}处识别可信,请复听确认:{result.message}",
                       details={**result.details, "sure_confusable": len(sure)})
    return result  # evidence the ASR was sure of (or gave no confidence for) stands


def _unwritten(result: RuleResult, unwritten: tuple[Interval, ...]) -> RuleResult:
    """A failure for something missing is unsure where the agent said something the ASR did not
    write inside the window it was due in (anywhere when the result names no window)."""
    low, high = result.expected_window or (float("-inf"), float("inf"))
    inside = [i for i in unwritten if i.end > low and i.start < high]
    if not inside:
        return result
    first, spoken_s = inside[0], sum(i.duration for i in inside)
    message = f"坐席有{spoken_s:.1f}秒语音未转写出文字({first.start:.1f}秒起),无法确认:{result.message}"
    stretches = [[round(i.start, 2), round(i.end, 2)] for i in inside]
    return replace(result, status="unsure", message=message,
                   details={**result.details, "untranscribed_s": stretches})


def _confusable_word(match: str, confusable: frozenset[str]) -> bool:
    """Whether a match is a word on a confusable character (你, 你们, 你好), not a sentence that
    happens to hold one (请您把验证码告诉我)."""
    text = normalize(match).text
    return len(text) <= CONFUSABLE_WORD_CHARS and bool(confusable.intersection(text))


def _doubt(words: list[Word], asr: AsrConfig, confusable: frozenset[str]) -> float | None:
    """How doubtful the words under a piece of evidence are: the probability of a word holding a
    confusable character under its bar, else the words' mean when under the sure bar; None when
    the evidence is sure or no probability is known."""
    if not words:
        return None
    doubted = [w.probability for w in words
               if confusable.intersection(w.text) and w.probability < asr.sure_confusable_probability]
    if doubted:
        return min(doubted)
    mean = sum(w.probability for w in words) / len(words)
    return mean if mean < asr.sure_word_probability else None
