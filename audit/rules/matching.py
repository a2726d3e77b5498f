"""Word boundaries (jieba with the rulebook's user dictionary) and tolerant phrase matching
(homophones by pinyin, near matches by similarity)."""

from __future__ import annotations

import logging
from functools import lru_cache

from audit.rules.model import MIN_TOLERANT_SIMILARITY
from audit.textnorm import normalize

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


def near_match(needle: str, text: str, threshold: float) -> list[tuple[int, int]]:
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
