"""One model process per device shared by the workers: same results, and a dead model costs one call."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audit.measure.asr import AsrUnavailable, WhisperTranscriber
from audit.measure.asr_service import ModelService, RemoteTranscriber, TranscriptionFailed, model_devices
from audit.run.batch import BatchOptions, run_batch
from audit.configload import load_config
from audit.measure.decode import decode, resample
from audit.measure.speech import assign_channels, find_speech
from conftest import FIXTURE_CALLS


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Path:
    """The first 20 s of three sample calls, with no sidecar transcripts: Whisper must run."""
    folder = tmp_path_factory.mktemp("night")
    for name in ("compliant", "fast_agent", "customer_cut_off"):
        samples, rate = soundfile.read(FIXTURE_CALLS / f"{name}.wav", dtype="float32")
        soundfile.write(folder / f"{name}.wav", samples[: 20 * rate], rate, subtype="ULAW")
    return folder


@pytest.fixture(scope="module")
def sharing_config(tmp_path_factory):
    overlay = tmp_path_factory.mktemp("config") / "share.toml"
    overlay.write_text('[asr]\nshare_model = "always"\n', encoding="utf-8")
    return load_config(overlay)


def test_workers_sharing_one_model_match_a_single_worker(night, sharing_config, tiny_whisper, tmp_path):
    alone = run_batch([night], tmp_path / "alone", load_config(),
                      BatchOptions("whisper", str(tiny_whisper), "cpu", workers=1))
    shared = run_batch([night], tmp_path / "shared", sharing_config,
                       BatchOptions("whisper", str(tiny_whisper), "cpu", workers=2))
    assert shared.document["asr"]["shared_model"] is True
    assert alone.document["asr"]["shared_model"] is False
    assert shared.count("audited") == alone.count("audited") == 3
    assert sharing_config.sha256 == load_config().sha256  # where the model runs changes no verdict
    for path in (tmp_path / "alone" / "calls").glob("*.json"):
        mine = json.loads(path.read_text(encoding="utf-8"))
        theirs = json.loads((tmp_path / "shared" / "calls" / path.name).read_text(encoding="utf-8"))
        assert mine["transcript_source"] == theirs["transcript_source"] == "whisper"
        assert mine["utterances"] == theirs["utterances"]
        assert mine["results"] == theirs["results"]


def _speech(path: Path):
    audio = resample(decode(path, load_config().decode), 16000)
    return audio, _speech_of(audio)


def test_a_model_process_that_dies_fails_only_the_call_in_hand(night, tiny_whisper):
    config = load_config()
    audio, speech = _speech(night / "compliant.wav")
    expected = WhisperTranscriber(config.asr, str(tiny_whisper), "cpu").transcribe(audio, speech)
    long_audio = np.tile(audio, 6)  # two minutes: long enough to be caught mid-transcription
    long_speech = _speech_of(long_audio)
    with ModelService(get_context("spawn"), config.asr, str(tiny_whisper), ["cpu"], 2, 2) as service:
        remote = RemoteTranscriber(service.handle)
        assert remote.transcribe(audio, speech) == expected
        failure: list[Exception] = []

        def transcribe_long():
            try:
                RemoteTranscriber(service.handle).transcribe(long_audio, long_speech)
            except TranscriptionFailed as error:
                failure.append(error)

        waiting = threading.Thread(target=transcribe_long)
        waiting.start()
        deadline = time.monotonic() + 60
        while service.busy(0) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.busy(0) is not None, "the model process never took the call"
        os.kill(service.pids()[0], signal.SIGKILL)
        waiting.join(timeout=120)
        assert not waiting.is_alive()
        assert failure and "died" in str(failure[0]) and "exit code -9" in str(failure[0])
        assert remote.transcribe(audio, speech) == expected  # a new model process took over


def _speech_of(audio: np.ndarray):
    config = load_config()
    return find_speech(audio, assign_channels(audio.shape[0], config.channels), config.vad)


def test_which_devices_get_a_shared_model(monkeypatch):
    assert model_devices("cpu", "auto", 4) == []  # each CPU worker keeps its own (small) model
    assert model_devices("cpu", "always", 4) == ["cpu"]
    assert model_devices("cpu", "always", 1) == []
    with pytest.raises(AsrUnavailable, match="cuda"):
        model_devices("cuda", "auto", 4)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert model_devices("auto", "auto", 6) == ["cuda:0", "cuda:1"]
    assert model_devices("auto", "auto", 2) == ["cuda:0", "cuda:1"]
    assert model_devices("cuda:1", "auto", 6) == ["cuda:1"]
    assert model_devices("auto", "never", 6) == []


def test_a_model_that_cannot_load_is_reported_before_any_call(night, sharing_config, tmp_path):
    options = BatchOptions("whisper", str(tmp_path / "missing.pt"), "cpu", workers=2)
    with pytest.raises(AsrUnavailable, match="missing.pt"):
        run_batch([night], tmp_path / "out", sharing_config, options)
    options.asr_mode = "auto"  # auto falls back to sidecars: there are none, so every call fails with why
    report = run_batch([night], tmp_path / "out", sharing_config, options)
    assert report.count("failed") == 3
    assert all("missing.pt" in error["reason"] for error in report.document["errors"])
