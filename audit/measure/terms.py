"""Key terms read as they sound: the company name and 工号 spelled the way ASR hears them.

Whisper writes what it hears in characters that sound alike: 心和通信 or 星和通信 for 星河通信, 宫号 for
工号. The opening check (and every text rule) would then miss a name the agent said. Before any
check reads a transcript, a span that sounds like a key term is written as the term: same
characters count, characters that differ must share a reading once tones are dropped and the
distinctions Mandarin speakers and ASR often blur are folded (zh/z, ch/c, sh/s, n/l as initials;
-ing/-in, -eng/-en, -ang/-an as finals), and at least one character must be the term's own, so a
string of unrelated homophones is not taken for the name; a term of three or more characters is
also recognised with no character of its own when every syllable is exactly the term's but for
the tones (深分正 for 身份证). A term of four or more characters may have one syllable heard only
nearly (the same initial or the same final once folded: 亲和同性 for 星河通信, 内心等待 for 耐心等待),
since Whisper often gets one sound of a long set phrase wrong and the rest of the phrase leaves no
doubt; so may a term that a number follows (`numbered`: 孤号六夭四八 for 工号六幺四八, the staff number
leaves no doubt either), and after such a term, characters that sound like digits are the number
said (工号死要其三 is 工号四幺七三). Every correction is kept in the
transcript (`Transcript.corrections`) with what was heard, so a reviewer sees it; the words keep
their heard spelling and their times.
"""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache

from audit.records import Transcript, TermCorrection, Utterance
from audit.textnorm import Normalized, char_readings, normalize

_FOLDED_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FOLDED_FINALS = (("ing", "in"), ("eng", "en"), ("ang", "an"))
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x",
             "r", "z", "c", "s", "y", "w")
MIN_NEAR_TERM = 4  # a term this long may have one syllable heard only nearly
MIN_NUMBER_AFTER = 3  # ... and so may a numbered term followed by this many digits (a staff number after 工号)
MAX_NUMBER = 8  # the longest number read by sound after a numbered term (staff numbers are 2-8 digits)
# digits as they are read out one by one, by their toneless syllable (幺 is "one" on the phone)
_DIGIT_SOUNDS = {"ling": "零", "yi": "一", "yao": "幺", "er": "二", "san": "三", "si": "四", "wu": "五",
                 "liu": "六", "qi": "七", "ba": "八", "jiu": "九"}
_NUMERALS = frozenset(_DIGIT_SOUNDS.values())
_NUMBER_LINK = "是为"  # 工号是… / 工号为…: one of these may stand between the term and its number


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


@lru_cache(maxsize=8192)
def near_readings(char: str) -> frozenset[tuple[str, str]]:
    """The folded readings split into (initial, final): "xin" -> ("x", "in"), "an" -> ("", "an")."""
    return frozenset(_split(reading) for reading in fuzzy_readings(char))


def _split(syllable: str) -> tuple[str, str]:
    for initial in _INITIALS:
        if syllable.startswith(initial) and len(syllable) > len(initial):
            return initial, syllable[len(initial):]
    return "", syllable


def _near(heard: str, meant: str) -> bool:
    """Whether two characters share a folded initial or a folded final (qin / xin, nei / nai)."""
    return any(h[0] == m[0] or h[1] == m[1] for h in near_readings(heard) for m in near_readings(meant))


def _same_initial(heard: str, meant: str) -> bool:
    """Whether two characters share an initial as said, not folded (su / si; not shou / si)."""
    return any(_split(h)[0] and _split(h)[0] == _split(m)[0]
               for h in toneless_readings(heard) for m in toneless_readings(meant))


def sounds_like(heard: str, term: str, numbered: bool = False, near: bool = True) -> bool:
    """Whether `heard` (normalised, as long as `term`) is `term` said as ASR may write it: every
    character the term's or sounding like it once blurred sounds are folded, with one character
    the term's own; or, for a term of four or more, all but one syllable so and that one near (the
    same initial or final), as may a term of three with one of its own whose near syllable is a
    digit's, by its initial (后肃尾 for 后四位; not 百四十: 十 shares only the final of 位; not 联系你
    for 联系您) and a term a
    number follows (`numbered`) with half its characters its own (`near = False` leaves these out);
    or, for a term of three or more, or a term a number follows, every syllable exactly the term's
    but for the tones (深分正 for 身份证, 公好 before 七幺零四 for 工号)."""
    if heard == term or len(heard) != len(term):
        return False
    pairs = list(zip(heard, term))
    own = sum(h == t for h, t in pairs)
    unlike = [(h, t) for h, t in pairs if h != t and not fuzzy_readings(h) & fuzzy_readings(t)]
    if own and not unlike:
        return True
    # one syllable only near: in a long term the other three or more leave no doubt, even with no
    # character of its own (亲和同性); a numbered term needs half its characters as well
    if near and len(unlike) == 1 and _near(*unlike[0]) and (
            len(term) >= MIN_NEAR_TERM or (numbered and 2 * own >= len(term))
            or (len(term) == 3 and own and unlike[0][1] in _NUMERALS and _same_initial(*unlike[0]))):
        return True
    return (len(term) >= 3 or numbered) and _toneless_equal(heard, term)


def _toneless_equal(heard: str, term: str) -> bool:
    return all(toneless_readings(h) & toneless_readings(t) for h, t in zip(heard, term))


def correct_terms(transcript: Transcript, terms: tuple[str, ...],
                  numbered: tuple[str, ...] = ()) -> Transcript:
    """The transcript with every span that sounds like one of `terms` written as the term.

    Parameters
    ----------
    transcript : Transcript
        As the ASR (or a sidecar) gave it.
    terms : tuple of str
        The key terms, e.g. the company name and its aliases and 工号; terms shorter than two
        characters are ignored (one syllable has too many homophones).
    numbered : tuple of str, default ()
        Those of `terms` a number follows (`[text] numbered_terms`: 工号): the number after them is
        read by sound as well.
    """
    # compared with the characters spoken (后四位, not 后4位: 后思维 sounds like the one, not the other)
    wanted = tuple(sorted(dict.fromkeys(t for t in (normalize(term).with_numerals for term in terms) if len(t) >= 2),
                          key=len, reverse=True))  # the longest first: 感谢您的来电 before 来电
    if not wanted:
        return transcript
    counted = frozenset(normalize(term).with_numerals for term in numbered)
    utterances, corrections = [], list(transcript.corrections)
    for utterance in transcript.utterances:
        corrected, found = _correct(utterance, wanted, counted)
        utterances.append(corrected)
        corrections += found
    if len(corrections) == len(transcript.corrections):
        return transcript
    return dataclasses.replace(transcript, utterances=tuple(utterances), corrections=tuple(corrections))


def _number_after(norm: Normalized, start: int) -> tuple[int, str]:
    """(length, the number as numerals) of the digits said from `start` on: digits, numerals, or
    characters whose toneless reading is a digit's (死要其三 -> 四幺七三), one 是/为 allowed first;
    inside the number (digits on both sides), one character heard only near a digit (七央零四:
    央 for 幺, the same initial and the final's first letter); and a first digit misheard as any
    character when three digits follow it, kept as heard (爱七一四 for 二七幺四)."""
    begin = start + 1 if start < len(norm.text) and norm.text[start] in _NUMBER_LINK else start
    said, near_used = [], False
    chars = norm.with_numerals[begin: begin + MAX_NUMBER]
    for position, char in enumerate(chars):
        digit = _digit_of(char)
        if digit is None and not near_used and position + 1 < len(chars) \
                and _digit_of(chars[position + 1]) is not None:
            if said:
                digit, near_used = _near_digit(char), True
            elif all(_digit_of(c) is not None for c in chars[1: 1 + MIN_NUMBER_AFTER]) \
                    and len(chars) > MIN_NUMBER_AFTER:
                digit, near_used = char, True
        if digit is None:
            break
        said.append(digit)
    if len(said) < MIN_NUMBER_AFTER:
        return 0, ""
    return begin - start + len(said), norm.with_numerals[start:begin] + "".join(said)


def _digit_of(char: str) -> str | None:
    """The numeral a character says: itself, or the digit its toneless reading is (要 -> 幺)."""
    if char.isdigit() or char in _NUMERALS:
        return char
    return next((_DIGIT_SOUNDS[r] for r in sorted(toneless_readings(char)) if r in _DIGIT_SOUNDS), None)


@lru_cache(maxsize=4096)
def _near_digit(char: str) -> str | None:
    """The one digit a character's usual reading sounds nearly like (央 yang -> 幺 yao), or None
    when none or several."""
    from pypinyin import Style, lazy_pinyin

    initial, final = _split(lazy_pinyin(char, style=Style.NORMAL)[0])
    found = {numeral for sound, numeral in _DIGIT_SOUNDS.items()
             if initial and _split(sound)[0] == initial and _split(sound)[1][:1] == final[:1]}
    return found.pop() if len(found) == 1 else None


def _correct(utterance: Utterance, terms: tuple[str, ...],
             numbered: frozenset[str]) -> tuple[Utterance, list[TermCorrection]]:
    norm = normalize(utterance.text)
    spans: list[tuple[int, int, str]] = []  # original-text spans and what each is
    taken = [False] * len(norm.text)
    # every term as heard closely first, then with one syllable near: 行和通讯 is the alias 星河通讯,
    # not 星河通信 with 讯 heard nearly
    for near, term in [(near, term) for near in (False, True) for term in terms]:
        size = len(term)
        for start in range(len(norm.text) - size + 1):
            if any(taken[start: start + size]):
                continue
            # Digits come from numerals (零 -> 0): compare the characters that were spoken.
            heard = norm.with_numerals[start: start + size]
            matched = heard == term or sounds_like(heard, term, False, near)
            length, number = 0, ""
            # the number is read only where the term may stand: heard as it is, or (near, with a
            # character of its own) once the number after it leaves no doubt
            if term in numbered and (matched or (near and (any(c in heard for c in term)
                                                         or _toneless_equal(heard, term)))):
                length, number = _number_after(norm, start + size)
                matched = matched or (length > 0 and sounds_like(heard, term, True, near))
            if not matched:
                continue
            end = start + size + length
            taken[start: end] = [True] * (end - start)
            meant = term + number
            if norm.with_numerals[start: end] != meant:
                spans.append((*norm.span(start, end), meant))
    if not spans:
        return utterance, []
    text, found = utterance.text, []
    for begin, end, term in sorted(spans, reverse=True):  # from the end, so earlier spans stay put
        found.append(TermCorrection(utterance.speaker, utterance.start, text[begin:end], term))
        text = text[:begin] + term + text[end:]
    return dataclasses.replace(utterance, text=text), found[::-1]
