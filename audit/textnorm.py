"""Normalise transcript text so that phrase matching survives ASR's spelling habits.

Whisper may print traditional characters, full-width letters and digits, punctuation in either
width, and numbers as digits or as Chinese numerals (工号0086 / 工号零零八六). Matching runs on a
normalised form; `Normalized.origin` maps every normalised character back to the original text so
evidence can quote and highlight what was really said.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Digit-by-digit readings, as IDs and phone numbers are spoken (幺 is "one" on the phone; Whisper
# writes its homophone 夭 for it: 工号六夭四八).
_DIGITS = str.maketrans("零〇一二三四五六七八九幺夭", "0012345678911")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


@dataclass(frozen=True)
class Normalized:
    text: str
    origin: tuple[int, ...]  # origin[i] = index in the original text of normalised char i
    # `text` with Chinese numerals left as characters (一直, not 1直): same length and positions,
    # for word segmentation and pinyin, which need the characters that were spoken
    with_numerals: str

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original-text [start, end) of the normalised slice [start, end)."""
        return self.origin[start], self.origin[end - 1] + 1


def _keep(char: str) -> bool:
    category = unicodedata.category(char)
    return not (category.startswith("P") or category.startswith("Z") or category in ("Cc", "Cf", "So"))


def normalize(text: str) -> Normalized:
    """Simplified, half-width, lower-case, no punctuation or spaces, Chinese digits as 0-9.

    OpenCC's t2s keeps the text's length for nearly all input, so positions line up with the
    original; when it does not, each character is converted on its own.
    """
    simplified = to_simplified(text)
    if len(simplified) == len(text):
        pieces = list(simplified)
    else:  # a rare phrase-level conversion changed the length: convert char by char instead
        pieces = [to_simplified(char) for char in text]
    chars: list[str] = []
    origin: list[int] = []
    for index, piece in enumerate(pieces):
        for char in unicodedata.normalize("NFKC", piece):
            if _keep(char):
                chars.append(char.lower())
                origin.append(index)
    with_numerals = "".join(chars)
    return Normalized(with_numerals.translate(_DIGITS), tuple(origin), with_numerals)


def normalize_phrase(phrase: str) -> str:
    return normalize(phrase).text


def normalize_pattern(pattern: str) -> str:
    """A regex for normalised text, written as people write Chinese: traditional characters and
    Chinese digits become what `normalize` makes of them (报一下 matches 报1下). Regex syntax is ASCII
    and passes through; width and punctuation are left alone, since they may be syntax."""
    return to_simplified(pattern).translate(_DIGITS)


@lru_cache(maxsize=8192)
def char_readings(char: str) -> frozenset[str]:
    """Every pinyin (with tone, e.g. "gong1") of a character; a non-Chinese character reads as itself."""
    from pypinyin import Style, pinyin

    found = pinyin(char, style=Style.TONE3, heteronym=True, errors=lambda text: [[text]])
    return frozenset(found[0]) if found else frozenset({char})
