"""Find speech on each channel with Silero VAD.

Silero VAD is a trained voice-activity model that ships its weights inside the `silero-vad`
package, so it works offline. We use its batched ONNX "sequence" model: the same per-frame
probabilities as the streaming model, computed in a few block-level calls instead of a Python loop
per 32 ms frame (about six times faster on a CPU). Timing checks rely on these onsets rather than
on ASR segment starts, which drift by up to a second.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from audit.config import ChannelsConfig, VadConfig
from audit.records import Channel, ChannelSpeech, Interval

VAD_SAMPLE_RATE = 16000


def assign_channels(channel_count: int, channels: ChannelsConfig) -> tuple[Channel, ...]:
    """Say whose voice each channel carries: the agent's channel comes from config."""
    if channel_count == 1:
        return (Channel(0, channels.mono_speaker),)
    return tuple(
        Channel(index, "agent" if index == channels.agent else "customer")
        for index in range(channel_count)
    )


@lru_cache(maxsize=1)
def _model():
    from silero_vad import load_silero_vad

    return load_silero_vad(sequence=True)


def detect_speech(audio_16k: np.ndarray, vad: VadConfig) -> tuple[Interval, ...]:
    """Speech intervals (seconds) in one 16 kHz channel."""
    from silero_vad import get_speech_timestamps_sequence

    if audio_16k.size == 0:
        return ()
    stamps = get_speech_timestamps_sequence(
        audio_16k,
        _model(),
        threshold=vad.threshold,
        sampling_rate=VAD_SAMPLE_RATE,
        min_speech_duration_ms=int(vad.min_speech_s * 1000),
        min_silence_duration_ms=int(vad.min_silence_s * 1000),
        speech_pad_ms=int(vad.speech_pad_s * 1000),
    )
    return tuple(
        Interval(s["start"] / VAD_SAMPLE_RATE, s["end"] / VAD_SAMPLE_RATE) for s in stamps
    )


def find_speech(
    audio_16k: np.ndarray, channels: tuple[Channel, ...], vad: VadConfig
) -> tuple[ChannelSpeech, ...]:
    return tuple(
        ChannelSpeech(channel, detect_speech(audio_16k[channel.index], vad)) for channel in channels
    )
