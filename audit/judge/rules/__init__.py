"""The text rules: norms kept as data in a TOML rulebook, evaluated on one call.

Ops change phrase lists and windows without touching code, so every Text norm of the brief is a rule
in `configs/rulebook.toml`, built from the condition shapes the commercial QA suites share (anchors
1.3, 1.6): keywords any / all / at least N / none, a regex with an exclusion regex, who said it and
where (a time or utterance window), anchors (after X, within N s or K utterances, Y must or must not
happen; X may be a measured event such as a hold or a customer agitation moment), counts, and
and / or / not. A rule either `forbid`s its condition or `require`s it.

Matching survives ASR: it runs on normalised text (`audit.textnorm`), and a phrase only matches whole
words. jieba segments each utterance with a user dictionary of the rulebook's phrases, its
`[dictionary]` words and the company names; a phrase that would cut a word in two does not match
(应该 inside 应该的, 你 inside 迷你). A rulebook phrase never hides another one (你 still matches in
你搞错了). Rules may opt into homophones (pinyin-equal characters: 公号 for 工号) and near matches (a
similarity threshold), both off unless the rule asks.

Where wording varies, a condition asks for a meaning instead: `intent = "refusal"` names an entry of
the rulebook's `[intents]` (patterns, example sentences and a trained model, a threshold, whether
questions and negated clauses count), judged utterance by utterance by `audit.judge.intent`; `echo = N` holds where a
speaker takes up N characters of the other party's words just said (a restatement in the customer's
own words). Words inside quotation marks
are never the speaker's own: no phrase, pattern or intent matches there. Each finding keeps what
fired: the phrase, or the intent with its score and the pattern or example behind it
(`details["matches"]`, with the utterance index and the character span in the utterance).

The package, by concern: `model` (the compiled records), `loader` (TOML to records, validated),
`evaluate` (one call), `examples` (written dialogues and `audit rules test`), `training` (an
intent's trained model and its data, `audit rules train`); phrases are found,
counted and timed by `audit.phrases` (whole words, homophones, near matches, `more_than` in
utterances and `occurrences_more_than` in hits), the matcher of every stage; the meaning of an
utterance is `audit.judge.intent`'s.
"""

from audit.judge.rules.evaluate import Rulebook
from audit.judge.rules.examples import Dialogue, ExampleRow, dialogue_context, parse_dialogue, run_examples
from audit.judge.rules.loader import check_rulebook
from audit.judge.rules.model import EVENT_KINDS, Rule

__all__ = ["EVENT_KINDS", "Dialogue", "ExampleRow", "Rule", "Rulebook", "check_rulebook",
           "dialogue_context", "parse_dialogue", "run_examples"]
