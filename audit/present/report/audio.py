"""A call's audio in the report: the recording decoded once per page and written as one Ogg Opus
file at a speech bit rate, for the calls whose verdict is in `[report] audio_verdicts` (the
flagged ones by default: nobody listens to a call that passed). The evidence buttons and time
stamps of a page seek this one file; there is no file per clip.

Why Opus through libsndfile: the soundfile wheel that already reads the recordings bundles
libsndfile 1.2 with the Opus encoder, so encoding needs no subprocess and no system package, and
Chromium plays Ogg Opus. Two channels of telephone speech at `[report] audio_kbps` = 12 kbit/s per
channel take about 0.18 MB a minute (the lossless FLAC copy took about 1 MB).

libsndfile draws each Ogg stream's serial number at random; it is set here from the recording's
SHA-256, so a page's audio is the same bytes in every build and in every worker process.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile

from audit.measure import decode as decoding
from audit.config import DecodeConfig
from audit.records import Recording
from audit.present.store import write_file

SUFFIX = ".ogg"
# Where `audit run`'s workers leave the flagged calls' audio, encoded while the recording is at hand
# (OUT/report/<this>/<key digest>.ogg); the next build moves each into place, so a night's report
# costs no encoding (the build removes what is left).
PENDING_FOLDER = ".audio-pending"
REPORT_FOLDER = "report"  # OUT/report
# Input rates libsndfile's Opus encoder takes at or below wideband speech; a recording at another
# rate is resampled to the next one up (16 kHz at most: Opus at a speech bit rate codes no more
# than 8 kHz of audio bandwidth, so a higher rate would only cost encoding time).
OPUS_RATES = (8000, 12000, 16000)
# libsndfile maps its compression level c (0-1) to an Opus bit rate per channel of
# 6 + (1 - c) * 250 kbit/s (src/ogg_opus.c)
OPUS_MIN_KBPS, OPUS_SPAN_KBPS = 6.0, 250.0


class AudioError(Exception):
    """The call's audio cannot be written for the report; the message names the file and why."""


@dataclass(frozen=True)
class CallAudio:
    """What a page gets: where its audio is (relative to the page), or why it has none."""

    href: str = ""
    problem: str = ""  # shown on the page, in Chinese, when there is no audio


@lru_cache(maxsize=1)
def encoder_problem() -> str:
    """Why this machine cannot write Ogg Opus, or "" when it can (libsndfile 1.0.29 or later)."""
    if "OPUS" in soundfile.available_subtypes("OGG"):
        return ""
    return (f"libsndfile {soundfile.__libsndfile_version__} cannot write Ogg Opus (1.0.29 or later "
            "can; the soundfile wheels bundle 1.2)")


def load_recording(record: dict, limits: DecodeConfig, path: str | None = None) -> tuple[Recording | None, str]:
    """Decode the call's recording (at `path`, else where the record says: a masked record names
    it with its numbers masked); (None, why, for the page) when it is gone, unreadable or changed.

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
    return recording, ""


def audio_key(sha256: str, kbps: float) -> str:
    """What a call's Ogg Opus file is made of: the recording, the bit rate and the encoder. A file
    written under the same key is the same bytes, so a page built again keeps it (report/audio.json)."""
    return f"{sha256}/{kbps:g}/libsndfile-{soundfile.__libsndfile_version__}"


def pending_file(report_folder: Path, key: str) -> Path:
    """Where a worker leaves the audio made of `key` (`audio_key`) for the next build."""
    return report_folder / PENDING_FOLDER / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}{SUFFIX}"


def encode_ahead(record: dict, limits: DecodeConfig, report_folder: Path, audio_verdicts: tuple[str, ...],
                 kbps: float) -> Path | None:
    """In an audit worker: the call's audio for the report, when its verdict asks for it; the file
    written (see `pending_file`), or None when nothing is due, this machine cannot encode Opus or
    the recording is gone or changed (the build's page then says why).

    Raises AudioError or OSError as `write_call_audio`; the caller logs them: the build encodes again.
    """
    if record["verdict"] not in audio_verdicts or encoder_problem():
        return None
    recording, _ = load_recording(record, limits)
    if recording is None:
        return None
    path = pending_file(report_folder, audio_key(record["recording"]["sha256"], kbps))
    write_call_audio(path, recording, kbps)
    return path


def opus_rate(sample_rate: int) -> int:
    """The rate a recording is encoded at: its own where Opus takes it, else the next one up."""
    return next((rate for rate in OPUS_RATES if rate >= sample_rate), OPUS_RATES[-1])


def compression_level(kbps: float) -> float:
    """libsndfile's compression level for an Opus bit rate per channel in kbit/s (6-256)."""
    return min(max(1.0 - (kbps - OPUS_MIN_KBPS) / OPUS_SPAN_KBPS, 0.0), 1.0)


def encode_opus(recording: Recording, kbps: float) -> bytes:
    """The recording as Ogg Opus at `kbps` per channel, with a stream serial taken from its SHA-256.

    Raises AudioError with libsndfile's reason when it cannot be encoded.
    """
    rate = opus_rate(recording.sample_rate)
    samples = decoding.resample(recording, rate) if rate != recording.sample_rate else recording.samples
    buffer = io.BytesIO()
    try:
        soundfile.write(buffer, np.clip(samples.T, -1.0, 1.0), rate, format="OGG", subtype="OPUS",
                        compression_level=compression_level(kbps))
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError) as error:
        raise AudioError(f"libsndfile cannot encode it as Ogg Opus at {rate} Hz: {error}") from None
    return with_serial(buffer.getvalue(), int(recording.info.sha256[:8], 16))


def write_call_audio(path: Path, recording: Recording, kbps: float) -> None:
    """Encode in memory, then write through a temporary name (`store.write_file`): a full disk is
    then an OSError saying so, not a libsndfile error, and leaves no half file behind."""
    problem = encoder_problem()
    if problem:
        raise AudioError(f"{recording.info.path}: {problem}")
    try:
        data = encode_opus(recording, kbps)
    except AudioError as error:
        raise AudioError(f"{recording.info.path}: {error}") from None
    write_file(path, data)


# --- Ogg pages ----------------------------------------------------------------------------------


_BITS_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def ogg_crc(page: bytes) -> int:
    """Ogg's page checksum: CRC-32 with polynomial 0x04C11DB7, unreflected, no initial or final XOR.

    zlib computes the reflected CRC-32 with both XORs: fed the page with each byte's bits reversed,
    and with the XORs' share (zlib's CRC of as many zero bytes) taken off, it gives the bit-reversed
    Ogg checksum, at zlib's speed.
    """
    reflected = zlib.crc32(page.translate(_BITS_REVERSED)) ^ zlib.crc32(bytes(len(page)))
    return int(f"{reflected:032b}"[::-1], 2)


def with_serial(stream: bytes, serial: int) -> bytes:
    """An Ogg stream with every page's serial number set to `serial` and its checksum recomputed."""
    pages, at = bytearray(stream), 0
    while at < len(pages):
        if pages[at:at + 4] != b"OggS" or at + 27 > len(pages):
            raise AudioError(f"libsndfile wrote no Ogg page at byte {at}")
        segments = pages[at + 26]
        end = at + 27 + segments + sum(pages[at + 27:at + 27 + segments])
        pages[at + 14:at + 18] = serial.to_bytes(4, "little")
        pages[at + 22:at + 26] = bytes(4)
        pages[at + 22:at + 26] = ogg_crc(bytes(pages[at:end])).to_bytes(4, "little")
        at = end
    return bytes(pages)
