"""Whether a call's transcript and metadata describe its audio, before anything is judged on them.

A sidecar transcript of another call, a recording of silence, noise or NaN, times past the end of
the audio: any of these would let the checks judge words nobody said in this recording (a
compliant transcript beside 60 s of silence passed with 100). A call is judged only when its
recording holds speech, every utterance lies inside the recording with voice activity under it,
and the metadata's times fall inside the recording.
"""

from __future__ import annotations

import numpy as np

from audit.config import AgreementConfig
from audit.records import CallMeta, ChannelSpeech, Transcript

SHOWN = 3  # disagreeing utterances named in the reason; the rest are counted


def disagreements(duration_s: float, speech: tuple[ChannelSpeech, ...], transcript: Transcript,
                  meta: CallMeta, settings: AgreementConfig) -> tuple[list[str], list[str]]:
    """Why the transcript and metadata do not describe this recording, and what is only odd.

    A few utterances with little voice activity under them (a short 好的 the VAD missed, a sidecar
    from another ASR system that pads its times) do not make the transcript another call's: up to
    `max_silent_share` of the transcript's time they are noted on the record and the call is judged.

    Parameters
    ----------
    duration_s : float
        The recording's length.
    speech : tuple of ChannelSpeech
        Voice activity found on each channel.
    transcript : Transcript
        The utterances the checks would judge (sidecar or Whisper).
    meta : CallMeta
        The call metadata (sidecar, manifest, file name).
    settings : AgreementConfig
        The tolerances (`[agreement]`).

    Returns
    -------
    problems : list of str
        One sentence per disagreement that stops the call from being judged.
    notes : list of str
        Disagreements small enough to judge the call anyway, for its record.
    """
    problems, notes = [], []
    speech_s = sum(channel.speech_s for channel in speech)
    if speech_s < settings.min_speech_s:
        problems.append(f"no measurable speech in the recording ({speech_s:.2f} s of voice activity, "
                        f"fewer than [agreement] min_speech_s = {settings.min_speech_s:g} s)")
    end = duration_s + settings.slack_s
    outside = [u for u in transcript.utterances if u.end > end]
    if outside:
        problems.append(_listed(outside, f"after the recording's end at {duration_s:.2f} s"))
    inside = [u for u in transcript.utterances if u.end <= end]
    if speech_s >= settings.min_speech_s and inside:
        covered = _covered(speech)
        starts = np.array([u.start - settings.slack_s for u in inside])
        ends = np.array([u.end + settings.slack_s for u in inside])
        lengths = np.array([u.end - u.start for u in inside])
        share = np.minimum(covered(ends) - covered(starts), lengths) / np.maximum(lengths, 1e-9)
        share[lengths == 0] = (covered(ends) - covered(starts))[lengths == 0] > 0
        quiet = share < settings.min_speech_share
        silent = [u for u, q in zip(inside, quiet) if q]
        if silent:
            silent_share = float(lengths[quiet].sum() / max(lengths.sum(), 1e-9))
            what = _listed(silent, f"with voice activity under less than "
                                   f"{settings.min_speech_share:.0%} of their time")
            if silent_share > settings.max_silent_share:
                problems.append(f"{what}, {silent_share:.0%} of the transcript's time")
            else:
                notes.append(f"{what}: judged anyway, they are {silent_share:.0%} of the transcript's time")
    for key in ("ring_start", "answer_at"):
        value = getattr(meta, key)
        if value is not None and value > end:
            problems.append(f"the metadata's {key} ({value:g} s) is after the recording's end "
                            f"({duration_s:.2f} s)")
    return problems, notes


def _listed(utterances: list, what: str) -> str:
    named = ", ".join(f"{u.speaker} {u.start:.2f}-{u.end:.2f} s" for u in utterances[:SHOWN])
    more = f" and {len(utterances) - SHOWN} more" if len(utterances) > SHOWN else ""
    return f"transcript utterances {what} ({len(utterances)}): {named}{more}"


def _covered(speech: tuple[ChannelSpeech, ...]):
    """`covered(t)`: seconds of voice activity (any channel) before each time in `t`, vectorised."""
    spans = sorted((i.start, i.end) for channel in speech for i in channel.intervals)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if not merged:
        return np.zeros_like
    starts = np.array([s for s, _ in merged])
    ends = np.array([e for _, e in merged])
    before = np.concatenate(([0.0], np.cumsum(ends - starts)))

    def covered(times: np.ndarray) -> np.ndarray:
        index = np.searchsorted(starts, times, side="right") - 1
        inside = np.where(index >= 0, np.minimum(times, ends[np.maximum(index, 0)])
                          - starts[np.maximum(index, 0)], 0.0)
        return np.where(index >= 0, before[np.maximum(index, 0)] + inside, 0.0)

    return covered
