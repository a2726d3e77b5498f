"""Transcribe each channel's speech with openai-whisper.

The model is loaded once per process and reused for every call. Only the speech the VAD found is
given to the model (as Whisper's own `clip_timestamps`), one channel at a time, so every utterance
knows its speaker and ringing, holds and silence cost nothing. Output that Whisper is known to
invent on silence or music (subtitle boilerplate, repetition loops, text with no speech under it)
is dropped before any check sees it, and kept in the record with the reason.
"""

from __future__ import annotations

import logging
import re
import zlib

import numpy as np

from audit.config import AsrConfig
from audit.records import ChannelSpeech, DroppedText, Interval, Transcript, Utterance, Word
from audit.textnorm import normalize, normalize_phrase, to_simplified

log = logging.getLogger(__name__)

WHISPER_SAMPLE_RATE = 16000
WINDOW_S = 30.0  # Whisper decodes 30-second windows


class AsrUnavailable(Exception):
    """The Whisper model cannot be loaded (unknown name, missing weights, no network, bad file)."""


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise AsrUnavailable("--device cuda was asked for but no CUDA GPU is available")
    return device


class WhisperTranscriber:
    """One loaded Whisper model and the settings to run it on call audio."""

    def __init__(self, asr: AsrConfig, model: str | None = None, device: str | None = None):
        import whisper

        self.asr = asr
        self.model_name = model or asr.model
        self.device = resolve_device(device or asr.device)
        try:
            self.model = whisper.load_model(self.model_name, device=self.device)
        except Exception as error:  # whisper raises RuntimeError, URLError, OSError, pickle errors
            raise AsrUnavailable(f"cannot load Whisper model {self.model_name!r}: {error}") from None
        self._blocklist = tuple(p for p in (normalize_phrase(b) for b in asr.blocklist) if p)
        self._repeat = re.compile(r"(.{1,16}?)\1{%d,}" % asr.max_repeats)

    def transcribe(self, audio_16k: np.ndarray, speech: tuple[ChannelSpeech, ...]) -> Transcript:
        if not any(channel.intervals for channel in speech):
            return Transcript(source="none", utterances=())
        kept: list[Utterance] = []
        dropped: list[DroppedText] = []
        for channel in speech:
            if not channel.intervals:
                continue
            for utterance, reason in self._transcribe_channel(audio_16k[channel.channel.index], channel):
                if reason:
                    dropped.append(DroppedText(utterance, reason))
                else:
                    kept.append(utterance)
        kept.sort(key=lambda u: (u.start, u.end))
        return Transcript(source="whisper", utterances=tuple(kept), dropped=tuple(dropped))

    def _transcribe_channel(self, audio: np.ndarray, channel: ChannelSpeech):
        import whisper

        asr = self.asr
        clips = speech_clips(channel.intervals, asr.clip_pad_s, asr.clip_merge_gap_s,
                             len(audio) / WHISPER_SAMPLE_RATE)
        result = whisper.transcribe(
            self.model,
            audio,
            language=asr.language,
            task="transcribe",
            initial_prompt=asr.initial_prompt or None,
            condition_on_previous_text=False,
            word_timestamps=True,
            clip_timestamps=[t for clip in clips for t in (clip.start, clip.end)],
            no_speech_threshold=asr.no_speech_threshold,
            logprob_threshold=asr.logprob_threshold,
            compression_ratio_threshold=asr.compression_ratio_threshold,
            beam_size=asr.beam_size if asr.beam_size > 1 else None,
            fp16=self.device == "cuda",
            verbose=None,
        )
        for segment in result["segments"]:
            utterance = _utterance(segment, channel.channel.speaker)
            yield utterance, self._hallucination(segment, utterance, channel.intervals)

    def _hallucination(self, segment: dict, utterance: Utterance, speech: tuple[Interval, ...]) -> str:
        """Why this segment is not believable as speech, or '' when it is."""
        text = normalize(utterance.text).text
        if not text:
            return "no text"
        if any(phrase in text for phrase in self._blocklist):
            return "known subtitle/boilerplate text"
        if self._repeat.search(text) or _compression_ratio(text) > self.asr.compression_ratio_threshold:
            return "repetition loop"
        if (segment["no_speech_prob"] > self.asr.no_speech_threshold
                and segment["avg_logprob"] < self.asr.logprob_threshold):
            return "model judged it non-speech"
        duration = max(utterance.end - utterance.start, 1e-3)
        if overlap_s(utterance.start, utterance.end, speech) / duration < self.asr.min_speech_overlap:
            return "no speech under the text"
        return ""


def _compression_ratio(text: str) -> float:
    """Whisper's own loop measure: repetitive text compresses far better than speech does."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def _utterance(segment: dict, speaker: str) -> Utterance:
    words = tuple(
        Word(float(w["start"]), float(w["end"]), to_simplified(w["word"]).strip())
        for w in segment.get("words") or ()
        if w["word"].strip()
    )
    start = words[0].start if words else float(segment["start"])
    end = words[-1].end if words else float(segment["end"])
    return Utterance(speaker, start, max(end, start), to_simplified(segment["text"]).strip(), words)


def speech_clips(
    intervals: tuple[Interval, ...], pad_s: float, merge_gap_s: float, duration_s: float
) -> list[Interval]:
    """Padded speech intervals, neighbours merged while the result fits one Whisper window."""
    clips: list[Interval] = []
    for interval in intervals:
        start = max(0.0, interval.start - pad_s)
        end = min(duration_s, interval.end + pad_s)
        if clips and start - clips[-1].end <= merge_gap_s and end - clips[-1].start <= WINDOW_S:
            clips[-1] = Interval(clips[-1].start, end)
        else:
            clips.append(Interval(max(start, clips[-1].end) if clips else start, end))
    return clips


def overlap_s(start: float, end: float, intervals: tuple[Interval, ...]) -> float:
    return sum(max(0.0, min(end, i.end) - max(start, i.start)) for i in intervals)
