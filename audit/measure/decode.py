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

from audit.config import DecodeConfig
from audit.records import Recording, RecordingInfo

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MAX_CHANNELS = 2
# No codec a recorder uses packs more samples into a byte (Opus at 6 kbit/s, 48 kHz: 64): a header
# declaring more describes audio the file cannot hold, and reading it would allocate for nothing.
MAX_SAMPLES_PER_BYTE = 128
UNCOMPRESSED = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW")


class DecodeError(Exception):
    """The file cannot be audited as a recording; the message says why."""


def decode(path: Path, limits: DecodeConfig) -> Recording:
    """Decode a recording into float32 channels, refusing what cannot be a real call.

    Parameters
    ----------
    path : Path
        The recording.
    limits : DecodeConfig
        The sample-rate range, the longest duration and the share of NaN/inf samples accepted
        (`[decode]`). The header is checked against them and against the file's size before any
        audio is read, so memory is bounded by what the file really holds.

    Returns
    -------
    Recording
        The samples, and what decoding had to repair in `info.notes` (a WAV header never
        finalised, NaN or infinite samples silenced).

    Raises
    ------
    DecodeError
        With the reason the file cannot be audited.
    """
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DecodeError("is a folder, not a recording") from None
    except OSError as error:
        raise DecodeError(f"cannot read file: {error.strerror}") from None
    if not data:
        raise DecodeError("empty file (0 bytes)")
    notes: list[str] = []
    audio = data
    if data[:4] in (b"RIFF", b"RF64"):
        audio = _check_wav_complete(data, notes)
    try:
        with soundfile.SoundFile(io.BytesIO(audio)) as sound:
            fmt = f"{sound.format}/{sound.subtype}"
            sample_rate, declared, channels = sound.samplerate, sound.frames, sound.channels
            _check_header(sample_rate, declared, channels, sound.subtype, len(data), limits)
            samples = sound.read(dtype="float32", always_2d=True)
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
    _silence_invalid(samples, limits.max_invalid_share, notes)
    info = RecordingInfo(
        path=path,
        duration_s=samples.shape[0] / sample_rate,
        sample_rate=sample_rate,
        channels=channels,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        notes=tuple(notes),
    )
    return Recording(info=info, samples=np.ascontiguousarray(samples.T))


def _check_header(sample_rate: int, frames: int, channels: int, subtype: str, size: int,
                  limits: DecodeConfig) -> None:
    """Refuse a header no real call has, before its audio is allocated."""
    if not limits.min_sample_rate <= sample_rate <= limits.max_sample_rate:
        raise DecodeError(f"sample rate {sample_rate} Hz is outside the accepted "
                          f"{limits.min_sample_rate}-{limits.max_sample_rate} Hz "
                          "([decode] min_sample_rate, max_sample_rate)")
    if channels > MAX_CHANNELS:
        raise DecodeError(f"{channels} channels; expected mono or two-channel (agent + customer)")
    if frames / sample_rate > limits.max_duration_s:
        raise DecodeError(f"the header declares {frames / sample_rate:.0f} s of audio, more than "
                          f"the {limits.max_duration_s:g} s accepted ([decode] max_duration_s)")
    if subtype not in UNCOMPRESSED and frames * channels > size * MAX_SAMPLES_PER_BYTE:
        raise DecodeError(f"the header declares {frames / sample_rate:.0f} s of audio, more than "
                          f"a file of {size} bytes can hold")


def _silence_invalid(samples: np.ndarray, max_share: float, notes: list[str]) -> None:
    """Set NaN and infinite samples (float WAVs from a faulty recorder) to silence, in place.

    A few of them would otherwise turn every level they take part in into NaN and erase the
    channel's voice activity; many mean the recording is not audio at all.
    """
    invalid = ~np.isfinite(samples)
    count = int(np.count_nonzero(invalid))
    if not count:
        return
    share = count / samples.size
    if share > max_share:
        raise DecodeError(f"{share:.1%} of the samples are NaN or infinite, more than the "
                          f"{max_share:.1%} accepted ([decode] max_invalid_share)")
    samples[invalid] = 0.0
    notes.append(f"{count} NaN or infinite samples ({share:.2%}) were replaced by silence")


def _reason(error: soundfile.LibsndfileError) -> str:
    text = str(error)
    return text.split(": ", 1)[-1] if ": " in text else text


def _check_wav_complete(data: bytes, notes: list[str]) -> bytes:
    """Refuse a WAV whose data chunk is shorter than its header says (an interrupted copy).

    libsndfile quietly returns the frames that are present, which would audit half a call as if it
    were whole. A data chunk whose size says 0 with audio after it is a recording the recorder
    never finalised: its sizes are set to what the file holds, and `notes` says so.

    Returns
    -------
    bytes
        The file, with the sizes of an unfinalised header filled in.
    """
    position = 12
    block_align = 1
    while position + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, position)
        if chunk_id == b"fmt " and position + 22 <= len(data):
            block_align = max(1, struct.unpack_from("<H", data, position + 20)[0])
        if chunk_id == b"data":
            available = len(data) - position - 8
            if size == 0 and available >= block_align:
                size = available - available % block_align
                repaired = bytearray(data)
                struct.pack_into("<I", repaired, 4, min(len(data) - 8, 0xFFFFFFFF))
                struct.pack_into("<I", repaired, position + 4, size)
                notes.append(f"the WAV header was never finalised (data size 0); read the {size} "
                             "bytes of audio that follow it")
                return bytes(repaired)
            if size != 0xFFFFFFFF and size > available:
                raise DecodeError(
                    f"truncated: the header declares {size} bytes of audio but only "
                    f"{available} are present"
                )
            return data
        position += 8 + size + (size & 1)
    raise DecodeError("truncated or malformed WAV: no data chunk")


def resample(recording: Recording, sample_rate: int) -> np.ndarray:
    """All channels at `sample_rate` (the VAD and Whisper both work at 16 kHz).

    Parameters
    ----------
    recording : Recording
        The decoded call, any sample rate.
    sample_rate : int
        The rate wanted, in Hz (`audit.frames.SAMPLE_RATE`, 16000, for every later stage).

    Returns
    -------
    np.ndarray
        float32, shape (channels, frames at `sample_rate`); the recording's own samples when the
        rate is already right (no copy).
    """
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
