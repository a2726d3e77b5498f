"""Key terms read as they sound: the company name and 工号 spelled the way ASR hears them.

Whisper writes what it hears in characters that sound alike: 心和通信 or 星和通信 for 星河通信, 宫号 for
工号. The opening check (and every text rule) would then miss a name the agent said. Before any
check reads a transcript, a span that sounds like a key term is written as the term: same
characters count, characters that differ must share a reading once tones are dropped and the
distinctions Mandarin speakers and ASR often blur are folded (zh/z, ch/c, sh/s, n/l as initials;
-ing/-in, -eng/-en, -ang/-an as finals), and at least one character must be the term's own, so a
string of unrelated homophones is not taken for the name; a term of three or more characters is
also recognised with no character of its own when every syllable is exactly the term's but for
the tones (深分正 for 身份证). Every correction is kept in the
transcript (`Transcript.corrections`) with what was heard, so a reviewer sees it; the words keep
their heard spelling and their times.
"""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache

from audit.records import Transcript, TermCorrection, Utterance
from audit.textnorm import char_readings, normalize, normalize_phrase

_FOLDED_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FOLDED_FINALS = (("ing", "in"), ("eng", "en"), ("ang", "an"))


@lru_cache(maxsize=8192)
def toneless_readings(char: str) -> frozenset[str]:
    """The readings of a character with tones dropped ("xing1" -> "xing")."""
    return frozenset(re.sub(r"\d", "", reading) for reading in char_readings(char))


@lru_cache(maxsize=8192)
def fuzzy_readings(char: str) -> frozenset[str]:
    """The toneless readings with blurred sounds folded ("xing" -> "xin")."""
    return frozenset(_fold(reading) for reading in toneless_readings(char))


def _fold(syllable: str) -> str:
    for long, short in _FOLDED_INITIALS:
        if syllable.startswith(long):
            syllable = short + syllable[len(long):]
            break
    for long, short in _FOLDED_FINALS:
        if syllable.endswith(long):
            return syllable[: -len(long)] + short
    return syllable


def sounds_like(heard: str, term: str) -> bool:
    """Whether `heard` (normalised, as long as `term`) is `term` said as ASR may write it: every
    character the term's or sounding like it once blurred sounds are folded, with one character
    the term's own, or, for a term of three or more, every syllable exactly the term's but for
    the tones (深分正 for 身份证)."""
    if heard == term or len(heard) != len(term):
        return False
    pairs = list(zip(heard, term))
    if any(h == t for h, t in pairs):
        return all(h == t or fuzzy_readings(h) & fuzzy_readings(t) for h, t in pairs)
    return len(term) >= 3 and all(toneless_readings(h) & toneless_readings(t) for h, t in pairs)


def correct_terms(transcript: Transcript, terms: tuple[str, ...]) -> Transcript:
    """The transcript with every span that sounds like one of `terms` written as the term.

    Parameters
    ----------
    transcript : Transcript
        As the ASR (or a sidecar) gave it.
    terms : tuple of str
        The key terms, e.g. the company name and its aliases and 工号; terms shorter than two
        characters are ignored (one syllable has too many homophones).
    """
    wanted = tuple(dict.fromkeys(t for t in (normalize_phrase(term) for term in terms) if len(t) >= 2))
    if not wanted:
        return transcript
    utterances, corrections = [], list(transcript.corrections)
    for utterance in transcript.utterances:
        corrected, found = _correct(utterance, wanted)
        utterances.append(corrected)
        corrections += found
    if len(corrections) == len(transcript.corrections):
        return transcript
    return dataclasses.replace(transcript, utterances=tuple(utterances), corrections=tuple(corrections))


def _correct(utterance: Utterance, terms: tuple[str, ...]) -> tuple[Utterance, list[TermCorrection]]:
    norm = normalize(utterance.text)
    spans: list[tuple[int, int, str]] = []  # original-text spans and the term each is
    taken = [False] * len(norm.text)
    for term in terms:
        size = len(term)
        for start in range(len(norm.text) - size + 1):
            if any(taken[start: start + size]):
                continue
            # Digits come from numerals (零 -> 0): compare the characters that were spoken.
            heard = norm.with_numerals[start: start + size]
            if heard == term:
                taken[start: start + size] = [True] * size
            elif sounds_like(heard, term):
                taken[start: start + size] = [True] * size
                spans.append((*norm.span(start, start + size), term))
    if not spans:
        return utterance, []
    text, found = utterance.text, []
    for begin, end, term in sorted(spans, reverse=True):  # from the end, so earlier spans stay put
        found.append(TermCorrection(utterance.speaker, utterance.start, text[begin:end], term))
        text = text[:begin] + term + text[end:]
    return dataclasses.replace(utterance, text=text), found[::-1]
