"""Speech the ASR heard and wrote nothing for.

Whisper sometimes returns no text for a stretch the VAD found to be speech (a closing, the tail
of a hold announcement). What was said there is unknown: a check must not take it for silence
or for words that were not said (`audit.judge.confidence`, `timing.dead_air`).
"""

from __future__ import annotations

import bisect

from audit.records import ChannelSpeech, Interval, Transcript


def untranscribed(speech: tuple[ChannelSpeech, ...], transcript: Transcript, min_s: float,
                  speaker: str = "agent") -> tuple[Interval, ...]:
    """The stretches of a speaker's voice activity that no utterance of theirs with text covers,
    each at least `min_s` seconds long (the ASR heard speech there and wrote nothing).

    Parameters
    ----------
    speech : tuple of ChannelSpeech
        The voice activity per channel (only the channel carrying `speaker` is read).
    transcript : Transcript
        The utterances, in time order per speaker.
    min_s : float
        Shortest stretch kept, in seconds (`[asr] untranscribed_min_s`, default 1.0).
    speaker : str
        Whose speech, default "agent".
    """
    covered = sorted((u.start, u.end) for u in transcript.utterances if u.speaker == speaker and u.text.strip())
    stretches = []
    for channel in speech:
        if channel.channel.speaker != speaker:
            continue
        for interval in channel.intervals:
            # from the utterance just before the interval's start (one speaker's utterances do not overlap)
            start, index = interval.start, max(0, bisect.bisect_left(covered, (interval.start,)) - 1)
            while index < len(covered) and covered[index][0] < interval.end:
                begin, end = covered[index]
                if begin - start >= min_s:  # speech before this utterance that no text covers
                    stretches.append(Interval(start, begin))
                start, index = max(start, end), index + 1
            if interval.end - start >= min_s:
                stretches.append(Interval(start, interval.end))
    return tuple(stretches)


def from_asr(transcript: Transcript) -> bool:
    """Whether the transcript is an ASR's: its words carry probabilities (a sidecar's do not, unless
    it holds an ASR's output)."""
    return any(w.probability is not None for u in transcript.utterances for w in u.words)
