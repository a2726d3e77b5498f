"""The Whisper backend, run for real (whisper.load_model, decode, word timing) on a random-weight model."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audit import asr as asr_module
from audit import decode as decoding
from audit.asr import WHISPER_SAMPLE_RATE, WINDOW_SAMPLES, AsrUnavailable, WhisperTranscriber
from audit.batch import BatchOptions, run_batch
from audit.config import load_config
from audit.pipeline import AsrChoice, Job, audit_call
from audit.records import Interval
from audit.store import call_record
from conftest import FIXTURE_CALLS


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def transcriber(tiny_whisper, config):
    return WhisperTranscriber(config.asr, str(tiny_whisper), "auto")


@pytest.fixture(scope="module")
def short_call(tmp_path_factory) -> Path:
    """The first 20 s of the compliant call: ringing, the opening, the customer's first words."""
    samples, rate = soundfile.read(FIXTURE_CALLS / "compliant.wav", dtype="float32")
    folder = tmp_path_factory.mktemp("short")
    path = folder / "short.wav"
    soundfile.write(path, samples[: 20 * rate], rate, subtype="ULAW")
    return path


def test_device_auto_picks_cpu_without_gpu(transcriber):
    import torch

    assert transcriber.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_whisper_run_gives_a_well_formed_record(short_call, tiny_whisper, config, tmp_path):
    options = BatchOptions("whisper", str(tiny_whisper), "cpu")
    summary = run_batch([short_call], tmp_path, config, options).document
    assert summary["errors"] == []
    record = json.loads((tmp_path / "calls" / "short.json").read_text(encoding="utf-8"))
    assert record["schema"] == "call-audit/1"
    assert record["transcript_source"] == "whisper"
    assert set(record["recording"]) >= {"path", "duration_s", "sample_rate", "channels", "sha256"}
    assert record["recording"]["channels"] == 2
    for utterance in record["utterances"] + record["dropped_utterances"]:
        assert utterance["speaker"] in ("agent", "customer")
        assert 0 <= utterance["start"] <= utterance["end"] <= record["recording"]["duration_s"] + 0.5
    assert all(d["reason"] for d in record["dropped_utterances"])
    (opening,) = [r for r in record["results"] if r["rule_id"] == "opening.golden_30s"]
    assert opening["status"] in ("pass", "fail", "not_measurable")  # garbage text, no crash
    assert record["verdict"] in ("pass", "review", "fail")
    assert summary["asr"]["whisper_model"] == str(tiny_whisper)
    assert summary["calls"][0]["transcript_source"] == "whisper"


def padded_speech(audio, intervals, pad_s, merge_gap_s):
    """(start, samples) of each stretch of a channel the model should hear: speech widened by the
    pad, short gaps kept."""
    rate = WHISPER_SAMPLE_RATE
    spans = [(max(0, round((i.start - pad_s) * rate)), round((i.end + pad_s) * rate)) for i in intervals]
    mask = np.zeros(len(audio) + 1, bool)
    for (start, end), (following, _) in zip(spans, spans[1:] + [(len(audio), None)]):
        mask[start: following if following - end <= merge_gap_s * rate else end] = True
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask))))
    return [(start, audio[start: end]) for start, end in zip(edges[::2], edges[1::2])]


def test_only_speech_reaches_the_model(short_call, transcriber, config, monkeypatch):
    import whisper

    heard = []
    real = whisper.log_mel_spectrogram

    def spy(audio, n_mels, padding, device):
        heard.append(np.asarray(audio).copy())
        assert len(audio) + padding == WINDOW_SAMPLES  # one 30-s window each
        return real(audio, n_mels, padding=padding, device=device)

    monkeypatch.setattr(whisper, "log_mel_spectrogram", spy)
    audit = audit_call(Job(short_call, "short"), config, AsrChoice("whisper", transcriber))
    audio_16k = decoding.resample(decoding.decode(short_call), WHISPER_SAMPLE_RATE)
    stretches = sorted(
        (start, channel.channel.index, samples)
        for channel in audit.speech
        for start, samples in padded_speech(audio_16k[channel.channel.index], channel.intervals,
                                            config.asr.clip_pad_s, config.asr.clip_merge_gap_s))
    expected = np.concatenate([samples for _, _, samples in stretches])
    assert len(expected) <= WINDOW_SAMPLES and len({i for _, i, _ in stretches}) == 2
    assert len(heard) == 1  # both channels' speech of these 20 s, in the order spoken, in one window
    np.testing.assert_array_equal(heard[0], expected)
    assert len(heard[0]) < 0.75 * audit.recording.duration_s * WHISPER_SAMPLE_RATE
    utterances = audit.transcript.utterances + tuple(d.utterance for d in audit.transcript.dropped)
    assert any(u.words for u in utterances)  # word timestamps are on


def test_silent_recording_skips_the_model(tmp_path, transcriber, config, monkeypatch):
    import whisper

    path = tmp_path / "silent.wav"
    soundfile.write(path, np.zeros((8000 * 5, 2), np.float32), 8000, subtype="PCM_16")
    monkeypatch.setattr(whisper, "log_mel_spectrogram", lambda *a, **k: pytest.fail("ASR ran on silence"))
    monkeypatch.setattr(transcriber.model, "decode", lambda *a, **k: pytest.fail("ASR ran on silence"))
    audit = audit_call(Job(path, "silent"), config, AsrChoice("whisper", transcriber))
    assert audit.transcript.source == "none"
    record = call_record(audit)
    assert record["transcript_source"] == "none"
    assert record["results"][0]["status"] == "not_measurable"


SPEECH = (Interval(1.0, 4.0),)


def _segment(text, start=1.0, end=3.0, no_speech=0.1, logprob=-0.3):
    return {"text": text, "start": start, "end": end, "no_speech_prob": no_speech,
            "avg_logprob": logprob, "words": []}


@pytest.mark.parametrize(
    "segment, reason",
    [
        (_segment("您好，请问有什么可以帮您？"), ""),
        (_segment("字幕由Amara.org社群提供"), "boilerplate"),
        (_segment("請不吝點贊訂閱轉發打賞支持明鏡與點點欄目"), "boilerplate"),
        (_segment("谢谢谢谢谢谢谢谢谢谢谢谢"), "repetition"),
        (_segment("好的 好的 好的 好的 好的 好的"), "repetition"),
        (_segment("。。。"), "no text"),
        (_segment("您好", no_speech=0.9, logprob=-1.5), "non-speech"),
        (_segment("您好，这里是星河通信", start=6.0, end=9.0), "no speech under"),
    ],
)
def test_hallucinations_are_dropped(transcriber, segment, reason):
    utterance = asr_module._utterance(segment, "agent")
    found = transcriber._hallucination(segment, utterance, SPEECH)
    assert (reason in found) if reason else found == ""


def test_traditional_output_becomes_simplified():
    segment = _segment("您好，歡迎致電星河通信，工號零零八六為您服務")
    segment["words"] = [{"word": " 歡迎", "start": 1.0, "end": 1.4}, {"word": "致電", "start": 1.4, "end": 1.8}]
    utterance = asr_module._utterance(segment, "agent")
    assert utterance.text == "您好，欢迎致电星河通信，工号零零八六为您服务"
    assert [w.text for w in utterance.words] == ["欢迎", "致电"]
    assert (utterance.start, utterance.end) == (1.0, 1.8)


def test_unloadable_model_whisper_mode_and_auto_fallback(config, tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(AsrUnavailable, match="missing.pt"):
        AsrChoice.prepare("whisper", config, str(missing), "cpu")
    choice = AsrChoice.prepare("auto", config, str(missing), "cpu")
    assert choice.transcriber is None and "missing.pt" in choice.whisper_error
    audit = audit_call(Job(FIXTURE_CALLS / "missing_agent_id.wav", "m"), config, choice)
    assert audit.transcript.source == "sidecar"
