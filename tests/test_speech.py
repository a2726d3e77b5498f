"""Silero VAD on real Mandarin speech (fixtures/real), placed in a telephone-like call."""

import dataclasses

import numpy as np
import pytest
import soundfile

from audit.configload import load_config
from audit.measure.speech import assign_channels, detect_speech
from conftest import REAL_SPEECH

CONFIG = load_config()

RATE = 16000


def _energy_extent(speech: np.ndarray) -> tuple[float, float]:
    """Where the clean read recording's speech starts and ends: 10 ms frames 15 dB over its floor."""
    frames = np.lib.stride_tricks.sliding_window_view(speech, 320)[::160]
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > np.percentile(level, 5) + 15)
    return loud[0] * 0.01, loud[-1] * 0.01 + 0.02


@pytest.mark.parametrize("name", ["BAC009S0764W0121.wav", "rapidasr_asr_example_kuaile.wav"])
def test_real_speech_found_where_it_is(name):
    speech, rate = soundfile.read(REAL_SPEECH / name, dtype="float32")
    assert rate == RATE
    start, end = _energy_extent(speech)
    rng = np.random.default_rng(1)
    offset = 3.0
    t = np.arange(int(RATE * (offset + len(speech) / RATE + 3.0))) / RATE
    channel = (rng.standard_normal(t.size) * 10 ** (-60 / 20)).astype(np.float32)  # line noise
    ringback = 0.15 * np.sin(2 * np.pi * 450 * t) * (t < 1.0)  # one ring before the speech
    channel += ringback.astype(np.float32)
    channel[int(offset * RATE): int(offset * RATE) + speech.size] += speech

    found = detect_speech(channel, CONFIG.vad)

    assert len(found) >= 1
    onset, offset_end = found[0].start, found[-1].end
    assert abs(onset - (offset + start)) < 0.25, (onset, offset + start)
    assert abs(offset_end - (offset + end)) < 0.35, (offset_end, offset + end)
    assert all(i.start > 1.5 for i in found)  # the ringback tone is not speech
    voiced = sum(i.duration for i in found)
    assert abs(voiced - (end - start)) / (end - start) < 0.2


def test_silence_noise_and_tones_are_not_speech():
    rng = np.random.default_rng(0)
    t = np.arange(RATE * 12) / RATE
    signals = {
        "digital silence": np.zeros(t.size),
        "line noise": rng.standard_normal(t.size) * 0.003,
        "china ringback": 0.2 * np.sin(2 * np.pi * 450 * t) * ((t % 5) < 1),
        "us ringback": 0.1 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)) * ((t % 6) < 2),
    }
    for label, signal in signals.items():
        assert detect_speech(signal.astype(np.float32), CONFIG.vad) == (), label


def test_channel_roles_follow_config():
    assert [c.speaker for c in assign_channels(2, dataclasses.replace(CONFIG.channels, agent=0))] == ["agent", "customer"]
    assert [c.speaker for c in assign_channels(2, dataclasses.replace(CONFIG.channels, agent=1))] == ["customer", "agent"]
    assert [c.speaker for c in assign_channels(1, CONFIG.channels)] == ["unknown"]


@pytest.mark.parametrize("snr_db", [20, 30])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hold_music_after_real_words_is_not_speech(snr_db, seed):
    """The agent says something, 0.3 s later hold music starts: speech ends with the words."""
    import librosa

    from synthcalls import hold_music

    rng = np.random.default_rng(seed)
    speech, _ = soundfile.read(REAL_SPEECH / "BAC009S0764W0121.wav", dtype="float32")
    start, end = _energy_extent(speech)
    music_at = 1.0 + end + 0.3
    music = librosa.resample(hold_music(8.0, rng), orig_sr=8000, target_sr=RATE)
    channel = np.zeros(int((music_at + 9.0) * RATE), np.float32)
    channel[RATE: RATE + speech.size] += speech
    channel[int(music_at * RATE): int(music_at * RATE) + music.size] += music
    level = 10 * np.log10(np.mean(speech[int(start * RATE): int(end * RATE)] ** 2))
    channel += rng.standard_normal(channel.size).astype(np.float32) * 10 ** ((level - snr_db) / 20)

    found = detect_speech(channel, CONFIG.vad)

    assert found and abs(found[0].start - (1.0 + start)) < 0.25
    assert all(i.end <= 1.0 + end + 0.3 for i in found), found  # nothing of the tune is speech


def test_hold_music_after_a_pause_is_cut_from_the_words():
    """Eight espeak-ng sentences, each followed 0.3 s later by hold music, at 10, 20 and 30 dB SNR:
    the VAD's hangover must not carry the speech into the tune (the issue's 0.3 s for holds).
    With Silero hearing the tune, 9 of the 24 ran 0.4-0.9 s into the music."""
    import librosa

    from synthcalls import SPEECH_DBFS, hold_music, speech_clips

    clips = speech_clips()["agent"]
    overruns = []
    for seed in range(8):
        for snr_db in (10, 20, 30):
            rng = np.random.default_rng(seed)
            words = librosa.resample(clips[seed % len(clips)], orig_sr=8000, target_sr=RATE)
            words_end = 1.0 + words.size / RATE
            music = librosa.resample(hold_music(8.0, rng), orig_sr=8000, target_sr=RATE)
            channel = np.zeros(int((words_end + 9.5) * RATE), np.float32)
            channel[RATE: RATE + words.size] += words
            channel[int((words_end + 0.3) * RATE):][: music.size] += music
            channel += rng.standard_normal(channel.size).astype(np.float32) * 10 ** ((SPEECH_DBFS - snr_db) / 20)
            found = detect_speech(channel, CONFIG.vad)
            assert found and abs(found[0].start - 1.0) < 0.25
            overruns.append(max(i.end for i in found) - words_end)
    assert all(o <= 0.3 for o in overruns), np.round(overruns, 2)


def test_words_after_long_hold_music_start_on_time():
    """The agent comes back after 20-40 s of hold music (0.3 s after the last note): the onset of
    the words ends the hold, within the issue's 0.3 s. Espeak-ng and real AISHELL speech at 10, 20
    and 30 dB SNR: all within 0.07 s. With Silero hearing the tune first, 14 of the 18 started
    0.31-0.6 s late (its state after a long tune holds back the first words)."""
    import librosa

    from synthcalls import SPEECH_DBFS, hold_music, speech_clips

    real, _ = soundfile.read(REAL_SPEECH / "rapidasr_asr_example_kuaile.wav", dtype="float32")
    start, end = _energy_extent(real)
    real = real[int(start * RATE): int(end * RATE)]
    espeak = [librosa.resample(clip, orig_sr=8000, target_sr=RATE) for clip in speech_clips()["agent"]]
    lates = []
    for seed in range(6):
        for snr_db in (10, 20, 30):
            rng = np.random.default_rng(100 + seed)
            words = real if seed % 3 == 0 else espeak[seed % len(espeak)]
            words = words * 10 ** ((SPEECH_DBFS - 10 * np.log10(np.mean(words ** 2))) / 20)
            music = librosa.resample(hold_music(20.0 + 4 * seed, rng), orig_sr=8000, target_sr=RATE)
            words_at = 1.0 + music.size / RATE + 0.3
            channel = np.zeros(int((words_at + words.size / RATE + 1.0) * RATE), np.float32)
            channel[RATE: RATE + music.size] += music
            channel[int(words_at * RATE):][: words.size] += words
            channel += rng.standard_normal(channel.size).astype(np.float32) * 10 ** ((SPEECH_DBFS - snr_db) / 20)
            found = detect_speech(channel, CONFIG.vad)
            lates.append(found[0].start - words_at if found else np.inf)
    assert all(abs(late) <= 0.3 for late in lates), np.round(lates, 2)
