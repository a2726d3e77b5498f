"""Decode a recording into float channels, or say exactly why it cannot be.

libsndfile (through soundfile) reads everything call-centre systems write: WAV with 16-bit PCM,
G.711 mu-law or A-law, FLAC, OGG/Vorbis and MP3, at any sample rate. Files are hashed from the same
bytes that are decoded, so the hash always describes the audio that was audited.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
from pathlib import Path

import numpy as np
import soundfile

from audit.records import Recording, RecordingInfo

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MAX_CHANNELS = 2


class DecodeError(Exception):
    """The file cannot be audited as a recording; the message says why."""


def decode(path: Path) -> Recording:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DecodeError(f"cannot read file: {error.strerror}") from None
    if not data:
        raise DecodeError("empty file (0 bytes)")
    if data[:4] in (b"RIFF", b"RF64"):
        _check_wav_complete(data)
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            fmt = f"{sound.format}/{sound.subtype}"
            samples = sound.read(dtype="float32", always_2d=True)
            sample_rate, declared = sound.samplerate, sound.frames
    except soundfile.LibsndfileError as error:
        reason = _reason(error)
        if "lost sync" in reason or "truncated" in reason.lower():
            raise DecodeError(f"audio data is corrupt or truncated ({reason})") from None
        raise DecodeError(f"not a readable audio file ({reason})") from None
    except (RuntimeError, ValueError) as error:  # codec errors part-way through a stream
        raise DecodeError(f"audio data is corrupt or truncated ({error})") from None
    if samples.shape[0] == 0:
        raise DecodeError("the file holds no audio frames")
    if samples.shape[0] < declared:  # e.g. an MP3 whose header counts more frames than arrived
        raise DecodeError(
            f"truncated: the header declares {declared / sample_rate:.2f} s of audio but only "
            f"{samples.shape[0] / sample_rate:.2f} s could be decoded"
        )
    channels = samples.shape[1]
    if channels > MAX_CHANNELS:
        raise DecodeError(f"{channels} channels; expected mono or two-channel (agent + customer)")
    info = RecordingInfo(
        path=path,
        duration_s=samples.shape[0] / sample_rate,
        sample_rate=sample_rate,
        channels=channels,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
    )
    return Recording(info=info, samples=np.ascontiguousarray(samples.T))


def _reason(error: soundfile.LibsndfileError) -> str:
    text = str(error)
    return text.split(": ", 1)[-1] if ": " in text else text


def _check_wav_complete(data: bytes) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says (an interrupted copy).

    libsndfile quietly returns the frames that are present, which would audit half a call as if it
    were whole.
    """
    position = 12
    while position + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, position)
        if chunk_id == b"data":
            available = len(data) - position - 8
            if size != 0xFFFFFFFF and size > available:
                raise DecodeError(
                    f"truncated: the header declares {size} bytes of audio but only "
                    f"{available} are present"
                )
            return
        position += 8 + size + (size & 1)
    raise DecodeError("truncated or malformed WAV: no data chunk")


def resample(recording: Recording, sample_rate: int) -> np.ndarray:
    """All channels at `sample_rate` (the VAD and Whisper both work at 16 kHz)."""
    if recording.sample_rate == sample_rate:
        return recording.samples
    import soxr

    # soxr's HQ filter (what librosa.resample uses), streamed in 10-s blocks straight into the
    # result: resampling the whole call at once holds two more copies of it (0.9 GB for an hour).
    channels, frames = recording.samples.shape
    resampled = np.empty((channels, math.ceil(frames * sample_rate / recording.sample_rate)), np.float32)
    stream = soxr.ResampleStream(recording.sample_rate, sample_rate, channels, dtype="float32", quality="HQ")
    block = 10 * recording.sample_rate
    written = 0
    for start in range(0, frames, block):
        chunk = stream.resample_chunk(np.ascontiguousarray(recording.samples[:, start: start + block].T),
                                      last=start + block >= frames)
        resampled[:, written: written + len(chunk)] = chunk.T[:, : resampled.shape[1] - written]
        written += len(chunk)
    resampled[:, written:] = 0.0
    return resampled
