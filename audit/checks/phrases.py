"""Finding phrases and patterns in what a speaker said, timed to the words, for the built-in checks
that read text (the opening); the text rulebook has its own matcher (`audit.rules.evaluate`)."""

from __future__ import annotations

from dataclasses import dataclass

from audit.records import Evidence, Speaker, Utterance
from audit.textnorm import normalize, normalize_phrase


@dataclass(frozen=True)
class PhraseHit:
    utterance: Utterance
    index: int  # of the utterance in the transcript
    phrase: str
    start: float  # s: when the matched words were said
    end: float
    text: str  # the matched words as written in the transcript
    span: tuple[int, int]  # [start, end) of `text` in the utterance's text


def char_times(utterance: Utterance, length: int) -> list[tuple[float, float]]:
    """(start, end) for each normalised character of the utterance.

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


def find_phrases(
    utterances: tuple[Utterance, ...], phrases: tuple[str, ...], speakers: tuple[Speaker, ...]
) -> list[PhraseHit]:
    """Every place a speaker in `speakers` said one of `phrases`, in time order."""
    wanted = [(p, normalize_phrase(p)) for p in phrases]
    hits = []
    for index, utterance in enumerate(utterances):
        if utterance.speaker not in speakers:
            continue
        norm = normalize(utterance.text)
        times = None
        for phrase, needle in wanted:
            position = norm.text.find(needle) if needle else -1
            if position < 0:
                continue
            times = times or char_times(utterance, len(norm.text))
            end = position + len(needle)
            first, last = norm.span(position, end)
            hits.append(PhraseHit(utterance, index, phrase, times[position][0], times[end - 1][1],
                                  utterance.text[first:last], (first, last)))
    return sorted(hits, key=lambda h: h.start)


def find_pattern(utterances, pattern, speakers) -> list[PhraseHit]:
    """Like `find_phrases`, for a compiled regex run on the normalised text."""
    hits = []
    for index, utterance in enumerate(utterances):
        if utterance.speaker not in speakers:
            continue
        norm = normalize(utterance.text)
        match = pattern.search(norm.text)
        if not match:
            continue
        times = char_times(utterance, len(norm.text))
        first, last = norm.span(match.start(), match.end())
        hits.append(PhraseHit(utterance, index, match.group(0), times[match.start()][0],
                              times[match.end() - 1][1], utterance.text[first:last], (first, last)))
    return sorted(hits, key=lambda h: h.start)


def evidence_of(hit: PhraseHit) -> Evidence:
    return Evidence(hit.start, hit.end, hit.utterance.speaker, hit.utterance.text, hit.text, hit.index, hit.span)
