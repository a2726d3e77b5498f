"""Findings that rest on words the ASR was unsure of go to a reviewer instead of failing the call.

Whisper gives every word a probability. A text finding proves what was said only as far as its
words are right, and some confusions are exactly the ones the norms turn on: base writes 你 for a
polite 您 on telephone audio. A failed text rule whose every matched piece of evidence lies on words
below `[asr] sure_word_probability` is `unsure`: it takes no points off, and the call goes to review
with the finding, its words and their confidence, for a reviewer to listen. Findings about what is
missing (no closing, no 工号) and about the audio (rings, silences, rate) are judged as before, and
so are transcripts without word confidences (sidecars).
"""

from __future__ import annotations

from dataclasses import replace

from audit.records import Evidence, RuleResult, Transcript
from audit.scoring import category_of


def weigh_confidence(results: tuple[RuleResult, ...], transcript: Transcript,
                     sure_probability: float) -> tuple[RuleResult, ...]:
    """The results with every text failure that rests only on unsure words made `unsure`.

    Parameters
    ----------
    results : tuple of RuleResult
        As the checks gave them.
    transcript : Transcript
        The transcript they judged; its words carry the ASR's probabilities (0-1).
    sure_probability : float
        Words below this probability are unsure (`[asr] sure_word_probability`; 0 turns this off).
    """
    return tuple(_weighed(result, transcript, sure_probability) for result in results)


def _weighed(result: RuleResult, transcript: Transcript, sure_probability: float) -> RuleResult:
    if result.status != "fail" or category_of(result.rule_id) != "text" or sure_probability <= 0:
        return result
    matched = [e for e in result.evidence if e.match]
    if not matched:
        return result
    confidences = [_confidence(e, transcript) for e in matched]
    if any(c is None or c >= sure_probability for c in confidences):
        return result
    lowest = min(confidences)
    return replace(result, status="unsure",
                   message=f"识别置信度低(最低{lowest:.2f}),请复听确认:{result.message}",
                   details={**result.details, "word_probability": round(lowest, 3)})


def _confidence(evidence: Evidence, transcript: Transcript) -> float | None:
    """The lowest probability of the words under a piece of evidence; None when none is known."""
    probabilities = [
        word.probability
        for utterance in transcript.utterances
        if utterance.speaker == evidence.speaker and utterance.start < evidence.end and utterance.end > evidence.start
        for word in utterance.words
        if word.probability is not None and word.start < evidence.end and word.end > evidence.start
    ]
    return min(probabilities) if probabilities else None
