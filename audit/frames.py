"""What the audio stages share: the pipeline's sample rate, frame levels in dB, and runs of True in
a per-frame track (speech, timing and prosody all turn frame masks into spans)."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000  # Hz: decoding resamples every recording to this; Whisper and Silero read it as is
SILENCE_POWER = 1e-12  # mean square of digital silence (-120 dBFS): log10 never sees zero


def power_db(power: np.ndarray | float) -> np.ndarray:
    """Level in dBFS (full scale = 1.0) of a mean-square power; -120 dBFS for digital silence."""
    return 10.0 * np.log10(np.asarray(power) + SILENCE_POWER)


def frame_db(frames: np.ndarray) -> np.ndarray:
    """Level in dBFS of each frame (samples along the last axis), from its mean square."""
    return power_db(np.einsum("...s,...s->...", frames, frames) / frames.shape[-1])


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) index of each run of True in a 1-D boolean array."""
    change = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(change == 1), np.flatnonzero(change == -1)
