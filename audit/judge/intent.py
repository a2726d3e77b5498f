"""Utterance-level judgements: does this utterance *mean* a restatement, a refusal, a guarantee...?

An intent (declared in the rulebook's `[intents]`, compiled here) recognises a meaning in two ways:

- **patterns**: regular expressions over the normalised utterance (`audit.textnorm`) that describe
  the shape of the meaning (`您是……对吗`: a restatement put as a question), scoring 1.0; each also
  runs on every clause alone, so `^` and `$` match at a clause's edges too;
- **examples**: sentences that say it; a clause scores the share of an example's character pairs it
  contains (`遇到这样的事谁都会生气` holds 7 of the 9 pairs of `遇到这种事谁都会生气`: 0.78), the best example
  wins, and the clause counts when the score reaches the intent's threshold;
- **model**: a classifier trained on labelled utterances (`audit.judge.textmodel`) scores the whole
  utterance; at its threshold the hit is placed on the clause that scores highest.

What a plain phrase search cannot see is judged for each hit on the clause it stands in (`Reading`):

- **mood**: a question (`？`, or a clause ending in 吗/呢 or holding 对吗/是吧/是不是/多少..., or
  followed by a tag question: `您当时应该是在APP里取消的，对吗`) is not a statement (a bare 吧
  softens a statement: 差不多下周能好吧); an exclamation (`！`) is a mood of its own, seen only
  where the transcript is punctuated; an intent may count statements only (a hedge in the agent's
  question is no vague answer), questions only, or exclamations only;
- **negation**: a negator (不要, 不用, 没有, 切勿...) shortly before the hit in the same clause turns
  it round (`不用帮您转接` is no transfer, `请不要把验证码告诉任何人` is no request for it); a
  phrase list may ask for the same (`skip_negated`);
- **quoted speech**: words inside quotation marks are somebody else's, and so is a clause after
  one that ends in a third party's saying (`对方说的 你要是不配合就冻结你的卡`).

Exclusion patterns drop a hit that overlaps them (`可能我们之前沟通有些误会` is an apology, not a
guess); clause exclusions drop a hit whose clause holds them anywhere (`我们会在明天下午三点前联系您`
names its time, so it is no promise without one, while `明天修好，我们会尽快联系您` still is), and a
lead-clause pattern lets a clause that only leads into the hit's be read with it (`最晚下周五下午六点前，
我们会给您回电话`); an utterance exclusion drops every hit of the utterance (a customer who says
they are in no hurry, `也不着急，就是想问问`, is not upset by the rest of the same turn). The module
knows nothing of rules or speakers: `audit.judge.rules` asks it about one utterance. It sits below
`audit.judge.rules` and imports only `audit.textnorm` and `audit.judge.textmodel`.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from typing import Literal

from audit.judge.textmodel import TextModel
from audit.textnorm import Normalized

Mood = Literal["any", "statement", "question", "exclamation"]
MOODS: tuple[str, ...] = typing.get_args(Mood)
DEFAULT_THRESHOLD = 0.75  # share of an example's character pairs a clause must hold
MIN_EXAMPLE_PAIRS = 3  # an example shorter than four characters says too little to be compared
NEGATION_REACH = 8  # characters before a hit (negator included) in which a negator turns it round

# Clause boundaries in the written transcript: punctuation, or the spaces Whisper leaves instead.
_CLAUSE_END = re.compile(r"[，。？！；：,.?!;:…、\s]+")
_QUESTION_MARK = re.compile(r"[？?]")
_EXCLAMATION_MARK = re.compile(r"[！!]")
# A clause asks when it ends in a question particle or in V的没有 / V了没有, or holds a question
# frame (normalised text).
_QUESTION = re.compile(r"(?:吗|么|呢)$|(?:的|了)没有$|对吗|是吗|对吧|是吧|好吗|行吗|可以吗|是不是|有没有|能不能|可不可以"
                       r"|要不要|多少|(?<!没)什么|哪|(?<![过好这那十])几|怎么|为什么|如何")  # 过几天 / 好几次 / 没什么 tell
# A clause that is only a tag question makes the clause before it a question too (您当时应该是在APP里取消的，对吗).
_TAG = re.compile(r"^(?:对吗|是吗|对吧|是吧|对不对|是不是|好吗|行吗|可以吗|没错吧)$")
# A clause asking whether the agent understood (我理解得对吗 / 我这么理解没错吧) puts everything said
# before it in the utterance to the caller: a restatement of their words, not the agent's answer.
_UNDERSTOOD = re.compile(r"^(?:我)?(?:这么|这样)?(?:理解|说)(?:得|的)?(?:对|没错|没有错)(?:吗|吧|不对)$"
                         r"|^(?:我)?没(?:有)?(?:理解|听)错(?:吧|吗)$")
# A question word asks nothing when 都/也 answers it in the next clause or 不管/无论 opens its own
# (往后您什么时候看，都不会再多扣 / 不管哪天都行): it means "whichever", and the clause is a statement.
_FREE_CHOICE_AFTER = re.compile(r"^(?:都|也|全都|一律)")
_FREE_CHOICE_OPENER = re.compile(r"^(?:不管|无论|不论)")


def _free_choice(text: str, clauses: list, marked: list[bool]) -> list:
    """`clauses` with the free-choice ones (see `_FREE_CHOICE_AFTER`) no questions, unless a
    question mark (`marked`) says they ask."""
    result = list(clauses)
    for index, clause in enumerate(clauses):
        if not clause.question or marked[index]:
            continue
        following = clauses[index + 1] if index + 1 < len(clauses) else None
        if (_FREE_CHOICE_OPENER.match(text[clause.start:clause.end])
                or (following and _FREE_CHOICE_AFTER.match(text[following.start:following.end]))):
            result[index] = dataclasses.replace(clause, question=False)
    return result


# 别 alone is a negator (别着急), not inside 特别 / 区别 / 识别 nor as 别的 / 别人 ("other")
_NEGATOR = re.compile(r"不要|不用|不需要|无需|无须|不必|(?<![特区分个类级差告识辨性派鉴离道])别(?![的人处家样])"
                      r"|切勿|请勿|千万别|千万不要|不会|不能|不可以|没有|没|并非|不是|绝不")
# a new predication between a negator and the hit ends the negator's reach (您没收到那是您自己的问题)
_COPULA = re.compile(r"(?:那|这|就|而|但|可|都|也)是")
# Whisper may print every word apart (好 的 您 是 想 查 一下): its spaces are no clause boundaries.
# Such an utterance is cut into clauses after a sentence-final particle and before a word that opens
# a clause (请问, 麻烦, 谢谢, 好的 ...), so a clause is still a clause and not a word.
_WORD_SPLIT_MEAN = 3.0  # mean characters per space-separated piece below which spaces split words
_FINAL_PARTICLE = re.compile(r"(?:吗|呢|吧|啊|呀|嘛|啦|哦|嘞|哈|嗯)$")  # not 么: 这么, 什么
_OPENERS = frozenset({"请问", "麻烦", "请", "谢谢", "感谢", "为了", "不过", "但是", "另外", "然后", "所以",
                      "您好", "你好", "嗯", "好的", "好嘞", "明白", "没问题", "如果", "要是", "因为", "不客气"})
_BACKCHANNELS = frozenset({"嗯", "好的", "好嘞", "明白", "明白了", "没问题", "是的", "对的"})
_POTENTIAL = frozenset({"不了", "得了"})  # 动不了您的号码: a verb's complement, not the particle 了
_PRONOUNS = frozenset({"我", "我们", "您", "你", "他", "她", "这", "那", "这个", "那个"})
# A clause that ends in a third party's saying: the next clause is their words, not the speaker's.
_REPORTED = re.compile(r"(?:对方|他|她|他们|骗子|那人|那个人|人家|短信(?:上|里)?|上面|电话里)"
                       r"(?:跟(?:您|你)|对(?:您|你))?(?:说的?|讲的?|称|说什么)$")
_QUOTES = {"“": "”", "「": "」", "『": "』", '"': '"', "‘": "’"}


@dataclass(frozen=True)
class Example:
    written: str
    pairs: frozenset[str]  # character pairs of the normalised example


@dataclass(frozen=True)
class Intent:
    """A meaning a rule can ask for; see the module docstring for how it is judged."""

    name: str
    label: str  # what a reviewer reads (中文)
    patterns: tuple[re.Pattern, ...]
    examples: tuple[Example, ...]
    exclude: tuple[re.Pattern, ...]
    threshold: float
    mood: Mood
    negated: bool  # True: a negated hit counts too; False (default): it is turned round
    clause_exclude: tuple[re.Pattern, ...] = ()  # a hit whose clause matches one of these is dropped
    lead_clause: re.Pattern | None = None  # a clause before the hit's that matches this is read with it
    utterance_exclude: tuple[re.Pattern, ...] = ()  # an utterance that matches one of these holds no hit
    model: TextModel | None = None  # trained on labelled utterances (`audit.judge.textmodel`)


@dataclass(frozen=True)
class Clause:
    start: int  # [start, end) in the normalised utterance text
    end: int
    question: bool
    exclaimed: bool  # written with ！ (only punctuated transcripts show it)


@dataclass(frozen=True)
class IntentHit:
    start: int  # [start, end) in the normalised utterance text
    end: int
    score: float  # 1.0 for a pattern, the example similarity or the model's probability otherwise
    reason: str  # the pattern or example that matched, for the reviewer


def char_pairs(text: str) -> frozenset[str]:
    """The set of adjacent character pairs of `text` (its bigrams)."""
    return frozenset(text[i:i + 2] for i in range(len(text) - 1))


def make_example(written: str, normalised: str) -> Example:
    """An intent example sentence, ready for comparison.

    Parameters
    ----------
    written : str
        The example as the rulebook gives it (shown to the reviewer when it fires).
    normalised : str
        Its normalised text (``audit.textnorm.normalize(written).text``).

    Returns
    -------
    Example

    Raises
    ------
    ValueError
        When it has fewer than ``MIN_EXAMPLE_PAIRS`` character pairs.
    """
    pairs = char_pairs(normalised)
    if len(pairs) < MIN_EXAMPLE_PAIRS:
        raise ValueError(f"{written!r} is too short to compare: an example needs at least "
                         f"{MIN_EXAMPLE_PAIRS + 1} characters (write a pattern instead)")
    return Example(written, pairs)


@dataclass(frozen=True)
class Reading:
    """One utterance prepared for judging: normalised text, clauses, quoted positions."""

    norm: Normalized
    clauses: tuple[Clause, ...]
    quoted: frozenset[int]  # normalised positions inside quotation marks

    @classmethod
    def read(cls, original: str, norm: Normalized) -> Reading:
        """Split an utterance into clauses and find its quotations.

        Parameters
        ----------
        original : str
            The utterance as transcribed (its punctuation, or Whisper's spaces, end the clauses).
        norm : Normalized
            ``audit.textnorm.normalize(original)``; positions are given in its text.

        Returns
        -------
        Reading
            Clauses (with question and exclamation marks) and quoted positions of ``norm.text``.
        """
        boundaries, quoted_original = [], set()
        position, closing = 0, None
        for index, char in enumerate(original):
            if closing is not None and char == closing:
                closing = None
            elif closing is None and char in _QUOTES:
                closing = _QUOTES[char]
            elif closing is not None:
                quoted_original.add(index)
        pieces = [(m.start(), m.end()) for m in _CLAUSE_END.finditer(original)]
        if _word_split(original):
            pieces = _clause_gaps(original)
        for start, end in pieces:
            marks = original[start:end]
            boundaries.append((position, start, bool(_QUESTION_MARK.search(marks)),
                               bool(_EXCLAMATION_MARK.search(marks))))
            position = end
        boundaries.append((position, len(original), False, False))
        origin = norm.origin
        clauses, marked, cursor = [], [], 0
        for first, last, asked, exclaimed in boundaries:
            begin = cursor
            while cursor < len(origin) and origin[cursor] < last:
                cursor += 1
            if cursor > begin and origin[begin] >= first:
                text = norm.text[begin:cursor]
                if _TAG.match(text) and clauses:
                    clauses[-1] = dataclasses.replace(clauses[-1], question=True)
                elif _UNDERSTOOD.match(text):
                    clauses = [dataclasses.replace(c, question=True) for c in clauses]
                clauses.append(Clause(begin, cursor, asked or bool(_QUESTION.search(text)), exclaimed))
                marked.append(asked)
        clauses = _free_choice(norm.text, clauses, marked)
        quoted = {i for i, o in enumerate(origin) if o in quoted_original}
        # speech reported without quotation marks (对方说的 你要是不配合就冻结你的卡): the clause after
        # a clause that ends in someone else's saying is theirs
        for reporting, reported in zip(clauses, clauses[1:]):
            if _REPORTED.search(norm.text[reporting.start:reporting.end]):
                quoted.update(range(reported.start, reported.end))
        return cls(norm, tuple(clauses), frozenset(quoted))

    def clause_at(self, position: int) -> Clause:
        for clause in self.clauses:
            if clause.start <= position < clause.end:
                return clause
        return self.clauses[-1]

    def in_mood(self, mood: Mood, start: int, end: int) -> bool:
        """Whether the span [start, end) is said in `mood`: a statement touches no question, a
        question or an exclamation touches at least one clause of that kind."""
        touched = [c for c in self.clauses if c.start < end and start < c.end]
        if mood == "any":
            return True
        if mood == "exclamation":
            return any(c.exclaimed for c in touched)
        return any(c.question for c in touched) == (mood == "question")

    def clause_holds(self, patterns: tuple[re.Pattern, ...], start: int, end: int,
                     lead: re.Pattern | None = None) -> bool:
        """Whether one of `patterns` matches in a clause the span [start, end) touches.

        Parameters
        ----------
        patterns : tuple of re.Pattern
            Searched in each touched clause on its own.
        start, end : int
            The span, in the normalised text.
        lead : re.Pattern, optional
            A clause just before the first touched one that matches this is searched too: it only
            leads into the span's clause (最晚下周五下午六点前，我们会给您回电话).

        Returns
        -------
        bool
        """
        text = self.norm.text
        touched = [i for i, c in enumerate(self.clauses) if c.start < end and start < c.end]
        if touched and touched[0] > 0 and lead is not None:
            before = self.clauses[touched[0] - 1]
            if lead.search(text, before.start, before.end):
                touched.insert(0, touched[0] - 1)
        # on the clause's own text: with a start position, ^ would still mean the utterance's start
        return any(p.search(text[self.clauses[i].start:self.clauses[i].end])
                   for i in touched for p in patterns)

    def negated(self, start: int, straddling: bool = False) -> bool:
        """Whether a negator stands shortly before `start` in the same clause.

        Parameters
        ----------
        start : int
            Position in the normalised text.
        straddling : bool
            Count a negator that `start` cuts in two as well (不|是来电显示: a run of shared
            characters may begin inside the negator).

        Returns
        -------
        bool
        """
        clause = self.clause_at(start)
        text, first = self.norm.text, max(clause.start, start - NEGATION_REACH)
        found = list(_NEGATOR.finditer(text, first, start))
        if found and not _COPULA.search(text, found[-1].end(), start):
            return True
        return straddling and any(m.start() < start < m.end() for m in _NEGATOR.finditer(
            text, first, min(clause.end, start + NEGATION_REACH)))


def _word_split(original: str) -> bool:
    """Whether an unpunctuated utterance prints its words apart (spaces between words, not clauses)."""
    if re.search(r"[，。？！；：,.?!;:…、]", original):
        return False
    words = original.split()
    return len(words) >= 4 and sum(map(len, words)) / len(words) < _WORD_SPLIT_MEAN


def _clause_gaps(original: str) -> list[tuple[int, int]]:
    """The spaces of a word-split utterance that end a clause: after a sentence-final particle or a
    backchannel (嗯, 好的, 明白), before a word that opens a clause (`_OPENERS`), and after a 了
    that a new subject follows (核实 通过 了 我 看 到; not 动 不 了 您 的 号码)."""
    gaps = [(m.start(), m.end()) for m in re.finditer(r"\s+", original)]
    words = original.split()
    kept = []
    for index, gap in enumerate(gaps):
        before, after = words[index], words[index + 1]
        two_before = (words[index - 1] if index else "") + before
        two_after = after + (words[index + 2] if index + 2 < len(words) else "")
        if (_FINAL_PARTICLE.search(before) or before in _BACKCHANNELS or two_before in _BACKCHANNELS
                or after in _OPENERS or two_after in _OPENERS
                or (before == "了" and after in _PRONOUNS and two_before not in _POTENTIAL)):
            kept.append(gap)
    return kept


def judge(intent: Intent, utterance: Reading) -> list[IntentHit]:
    """Every place in an utterance that says an intent.

    Parameters
    ----------
    intent : Intent
        The meaning looked for (patterns, examples, exclusions, mood, negation).
    utterance : Reading
        The utterance, read by `Reading.read`.

    Returns
    -------
    list of IntentHit
        Non-overlapping hits in text order; where hits overlap the best score is kept. A hit in
        quoted words, overlapping an exclusion, in a clause holding a clause exclusion, in the wrong
        mood or (unless ``intent.negated``) turned round by a negator is dropped; an utterance holding
        an utterance exclusion has none.
    """
    text = utterance.norm.text
    if any(p.search(text) for p in intent.utterance_exclude):
        return []
    # a pattern runs on the whole utterance and on each clause, so ^ and $ also mean a clause's edges
    pieces = [(0, text)] + [(c.start, text[c.start:c.end]) for c in utterance.clauses]
    found = [IntentHit(offset + m.start(), offset + m.end(), 1.0, f"句式 {pattern.pattern}")
             for pattern in intent.patterns for offset, piece in pieces
             for m in pattern.finditer(piece) if m.end() > m.start()]
    if intent.examples:
        for clause in utterance.clauses:
            pairs = char_pairs(text[clause.start:clause.end])
            best, example = max(((len(e.pairs & pairs) / len(e.pairs), e) for e in intent.examples),
                                key=lambda pair: pair[0])
            if best >= intent.threshold:
                found.append(IntentHit(clause.start, clause.end, round(best, 2),
                                       f"近似例句“{example.written}”"))
    if intent.model is not None and utterance.clauses:
        said = intent.model.score(text)
        if said >= intent.model.threshold:
            # placed on the clause that says it most, so mood, negation and exclusions judge that clause
            clause = max(utterance.clauses, key=lambda c: intent.model.score(text[c.start:c.end]))
            found.append(IntentHit(clause.start, clause.end, round(said, 2), f"模型 {said:.2f}"))
    excluded = [(m.start(), m.end()) for p in intent.exclude for m in p.finditer(text)]
    kept: list[IntentHit] = []
    for hit in sorted(found, key=lambda h: (-h.score, h.start)):
        if hit.start in utterance.quoted:
            continue
        if any(s < hit.end and hit.start < e for s, e in excluded):
            continue
        if intent.clause_exclude and utterance.clause_holds(intent.clause_exclude, hit.start, hit.end,
                                                            intent.lead_clause):
            continue
        if not utterance.in_mood(intent.mood, hit.start, hit.end):
            continue
        if not intent.negated and utterance.negated(hit.start):
            continue
        if any(k.start < hit.end and hit.start < k.end for k in kept):
            continue
        kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def shared_run(text: str, other: str) -> tuple[int, int]:
    """The longest run of characters of one text that also occurs in another.

    An agent who takes up the customer's own words (`联系不上家人确实让人揪心` after `现在联系不上她`)
    shows that they listened; the rule says how long a run counts.

    Parameters
    ----------
    text, other : str
        Normalised texts.

    Returns
    -------
    (int, int)
        [start, end) of the first longest shared run in ``text``; (0, 0) when none.
    """
    best = (0, 0)
    for start in range(len(text)):
        end = start + (best[1] - best[0]) + 1
        while end <= len(text) and text[start:end] in other:
            best = (start, end)
            end += 1
    return best
