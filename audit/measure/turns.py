"""Whisper's segments joined back into the sentences they cut.

Whisper ends a segment where its timestamps fall, not where the speaker's sentence ends: one
promise comes back as 我会在今天下午两点, and 之前给您回电话, and a reply as three pieces. Rules that
read a sentence (a promise and its time) or count a speaker's turns (empathy within six of the
agent's turns) would judge the pieces. A segment is joined to the one before it when the same
speaker says both with no one in between, the first does not end a sentence (。？！…) and the pause
is short. Sidecar transcripts are left as their author wrote them.
"""

from __future__ import annotations

import dataclasses
import re

from audit.records import Transcript, Utterance

_SENTENCE_END = re.compile(r"[。？！?!…]\s*$")


def join_continuations(transcript: Transcript, max_gap_s: float) -> Transcript:
    """The transcript with each segment that continues the one before it joined to it.

    Parameters
    ----------
    transcript : Transcript
        As the ASR gave it, utterances in time order.
    max_gap_s : float
        The longest pause, in seconds, between two pieces of one sentence (`[text] join_gap_s`,
        default 1.0); 0 joins nothing.

    Returns
    -------
    Transcript
        The same transcript when nothing was joined; words keep their own times.
    """
    if max_gap_s <= 0 or len(transcript.utterances) < 2:
        return transcript
    joined: list[Utterance] = []
    for utterance in transcript.utterances:
        previous = joined[-1] if joined else None
        if (previous is not None and previous.speaker == utterance.speaker
                and not _SENTENCE_END.search(previous.text)
                and 0.0 <= utterance.start - previous.end <= max_gap_s):
            joined[-1] = Utterance(previous.speaker, previous.start, max(previous.end, utterance.end),
                                   previous.text + utterance.text, previous.words + utterance.words)
        else:
            joined.append(utterance)
    if len(joined) == len(transcript.utterances):
        return transcript
    return dataclasses.replace(transcript, utterances=tuple(joined))
