"""A call's audio in the report: the recording decoded once per page, each evidence segment written
once as a WAV clip with context around it, and the whole call copied losslessly."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from audit import decode as decoding
from audit.config import DecodeConfig
from audit.store import write_file


@dataclass(frozen=True)
class Audio:
    """A recording as 16-bit samples (frames, channels): what the clips and the call copy hold."""

    samples: np.ndarray
    sample_rate: int


def load_audio(record: dict, limits: DecodeConfig, path: str | None = None) -> tuple[Audio | None, str]:
    """Decode the call's recording once (at `path`, else where the record says: a masked record
    names it with its numbers masked); (None, why) when it is gone, unreadable or changed.

    A recording whose SHA-256 differs from the record's was replaced after the audit: its audio
    would not be the audio the findings point at.
    """
    path = Path(path or record["recording"]["path"])
    if not path.exists():
        return None, f"录音已不在 {path},本页没有音频。"
    try:
        recording = decoding.decode(path, limits)
    except decoding.DecodeError as error:
        return None, f"录音 {path} 无法解码({error}),本页没有音频。"
    if recording.info.sha256 != record["recording"]["sha256"]:
        return None, f"录音 {path} 在质检之后被改动过(SHA-256 不同),本页没有音频。"
    # decode() reads 16-bit and G.711 audio as int / 32768: this gives back the very same samples
    samples = np.clip(np.round(recording.samples.T * 32768.0), -32768, 32767).astype(np.int16)
    return Audio(samples, recording.sample_rate), ""


# --- audio files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    href: str  # relative to the call page
    start: float  # call time of the clip's first sample
    end: float


def clip_bounds(audio: Audio, start: float, end: float, context_s: float) -> tuple[int, int]:
    """First and last+1 frame of a segment with `context_s` on each side, inside the recording."""
    first = max(0, math.floor((start - context_s) * audio.sample_rate))
    last = min(len(audio.samples), math.ceil((end + context_s) * audio.sample_rate))
    return first, max(last, first + 1)


class ClipWriter:
    """Writes each distinct evidence segment of one call once, as a 16-bit WAV."""

    def __init__(self, audio: Audio, folder: Path, href_base: str, context_s: float):
        self.audio, self.folder, self.href_base, self.context_s = audio, folder, href_base, context_s
        self.written: dict[tuple[int, int], Clip] = {}

    def clip(self, start: float, end: float) -> Clip:
        bounds = clip_bounds(self.audio, start, end, self.context_s)
        if bounds not in self.written:
            first, last = bounds
            name = f"{first}-{last}.wav"
            self.folder.mkdir(parents=True, exist_ok=True)
            rate = self.audio.sample_rate
            write_audio(self.folder / name, self.audio.samples[first:last], rate, "WAV")
            self.written[bounds] = Clip(f"{self.href_base}/{name}", first / rate, last / rate)
        return self.written[bounds]


def write_audio(path: Path, samples: np.ndarray, sample_rate: int, fmt: str) -> None:
    """Encode in memory, then write through a temporary name (`store.write_file`): a full disk is
    then an OSError saying so, not a libsndfile error, and leaves no half file behind."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format=fmt, subtype="PCM_16")
    write_file(path, buffer.getvalue())

