"""Every supported format and layout decodes to the same audio; bad files get a clear reason."""

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audit.configload import load_config
from audit.measure.decode import DecodeError, decode, resample
from conftest import FIXTURE_CALLS

CONFIG = load_config()

SOURCE_RATE = 8000


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    """Ten seconds of the compliant sample call: (frames, 2) float32 at 8 kHz."""
    samples, rate = soundfile.read(FIXTURE_CALLS / "compliant.wav", dtype="float32", always_2d=True)
    assert rate == SOURCE_RATE and samples.shape[1] == 2
    return samples[: 10 * rate]


FORMATS = [
    ("pcm16.wav", "WAV", "PCM_16", 1e-3),
    ("mulaw.wav", "WAV", "ULAW", 0.05),
    ("alaw.wav", "WAV", "ALAW", 0.05),
    ("call.flac", "FLAC", "PCM_16", 1e-3),
    ("call.ogg", "OGG", "VORBIS", None),
    ("call.mp3", "MP3", "MPEG_LAYER_III", None),
]


def _level_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-12)


@pytest.mark.parametrize("name, container, subtype, tolerance", FORMATS)
@pytest.mark.parametrize("layout", ["stereo", "mono"])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_formats_layouts_and_rates(tmp_path, source, name, container, subtype, tolerance, layout, rate):
    audio = source if layout == "stereo" else source[:, :1]
    if rate != SOURCE_RATE:
        import librosa

        audio = librosa.resample(audio.T, orig_sr=SOURCE_RATE, target_sr=rate, axis=-1).T
    path = tmp_path / name
    soundfile.write(path, audio, rate, format=container, subtype=subtype)

    recording = decode(path, CONFIG.decode)

    assert recording.info.sample_rate == rate
    assert recording.info.channels == audio.shape[1]
    assert recording.samples.shape[0] == audio.shape[1]
    assert recording.samples.dtype == np.float32
    assert recording.info.format == f"{container}/{subtype}"
    assert abs(recording.info.duration_s - 10.0) < 0.1
    assert len(recording.info.sha256) == 64
    for channel in range(audio.shape[1]):
        decoded, original = recording.samples[channel], audio[:, channel]
        if tolerance is not None:  # lossless or G.711: sample for sample
            assert np.max(np.abs(decoded - original)) < tolerance
        else:  # lossy codecs: same loudness
            assert abs(_level_db(decoded) - _level_db(original)) < 1.5


def test_resample_to_16k_keeps_duration_and_level(source, tmp_path):
    path = tmp_path / "call.wav"
    soundfile.write(path, source, SOURCE_RATE, subtype="PCM_16")
    recording = decode(path, CONFIG.decode)
    audio = resample(recording, 16000)
    assert audio.shape == (2, 160000)
    assert abs(_level_db(audio[0]) - _level_db(recording.samples[0])) < 0.5


def _encoded(source, container, subtype) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, source, SOURCE_RATE, format=container, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda s: b"", "empty file"),
        (lambda s: "这不是录音,只是一段文字。\n".encode() * 50, "not a readable audio file"),
        (lambda s: b"RIFF\x24\x00\x00\x00WAVEfmt ", "truncated or malformed WAV"),
        (lambda s: _encoded(s, "WAV", "PCM_16")[:20000], "truncated: the header declares"),
        (lambda s: _encoded(s, "FLAC", "PCM_16")[:20000], "corrupt or truncated"),
        (lambda s: _encoded(s, "MP3", "MPEG_LAYER_III")[:8000], "truncated"),
        (lambda s: _encoded(s[:0], "WAV", "PCM_16"), "no audio frames"),
        (lambda s: _encoded(np.zeros((800, 3), np.float32), "WAV", "PCM_16"), "3 channels"),
    ],
    ids=["empty", "text", "header-only", "truncated-wav", "truncated-flac", "truncated-mp3",
         "no-frames", "three-channels"],
)
def test_bad_files_are_refused_with_reason(tmp_path, source, make, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(make(source))
    with pytest.raises(DecodeError, match=reason):
        decode(path, CONFIG.decode)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.wav"
    path.write_bytes(b"RIFF")
    real_read = Path.read_bytes

    def deny(self):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(DecodeError, match="cannot read file: Permission denied"):
        decode(path, CONFIG.decode)


def test_header_limits_are_checked_before_the_audio_is_read(tmp_path, source):

    path = tmp_path / "call.wav"
    soundfile.write(path, source, 4000, subtype="PCM_16")  # 20 s at 4 kHz
    with pytest.raises(DecodeError, match=r"sample rate 4000 Hz is outside the accepted 8000-48000 Hz"):
        decode(path, CONFIG.decode)
    assert decode(path, dataclasses.replace(CONFIG.decode, min_sample_rate=4000)).info.duration_s == 20.0  # configurable
    with pytest.raises(DecodeError, match=r"declares 20 s of audio, more than the 10 s accepted"):
        decode(path, dataclasses.replace(CONFIG.decode, min_sample_rate=4000, max_duration_s=10.0))


def test_nan_samples_up_to_the_configured_share_are_silenced(tmp_path, source):

    dotted = source.copy()
    dotted[::50] = np.inf  # 2 %
    path = tmp_path / "float.wav"
    soundfile.write(path, dotted, SOURCE_RATE, subtype="FLOAT")
    recording = decode(path, CONFIG.decode)
    assert np.isfinite(recording.samples).all() and recording.samples[:, ::50].max() == 0.0
    assert recording.info.notes == ("3200 NaN or infinite samples (2.00%) were replaced by silence",)
    with pytest.raises(DecodeError, match=r"2.0% of the samples are NaN or infinite, more than the 1.0%"):
        decode(path, dataclasses.replace(CONFIG.decode, max_invalid_share=0.01))


def test_a_wav_never_finalised_is_read_whole(tmp_path, source):
    data = bytearray(_encoded(source, "WAV", "PCM_16"))
    data[4:8] = data[40:44] = bytes(4)
    path = tmp_path / "open.wav"
    path.write_bytes(bytes(data))
    recording = decode(path, CONFIG.decode)
    assert recording.info.duration_s == 10.0
    assert np.max(np.abs(recording.samples.T - source)) < 1e-3
    assert recording.info.notes == ("the WAV header was never finalised (data size 0); read the "
                                    "320000 bytes of audio that follow it",)


def test_a_folder_named_like_a_recording(tmp_path):
    (tmp_path / "x.wav").mkdir()
    with pytest.raises(DecodeError, match="is a folder, not a recording"):
        decode(tmp_path / "x.wav", CONFIG.decode)
