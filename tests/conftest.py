"""Shared test fixtures: the bundled sample calls, real speech, a tiny random Whisper model and the
real Whisper base that `make install` puts in models/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CALLS = ROOT / "fixtures" / "calls"
REAL_SPEECH = ROOT / "fixtures" / "real"
MODELS = ROOT / "models"


@pytest.fixture(scope="session")
def truth() -> dict:
    return json.loads((FIXTURE_CALLS / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A Whisper checkpoint with real structure and random weights.

    Real weights cannot be downloaded in CI; this exercises whisper's own load_model and transcribe
    code (mel, encoder, decoding with fallback, word timestamps) on output that is pure garbage.
    """
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
        n_vocab=51865, n_text_ctx=64, n_text_state=64, n_text_head=2, n_text_layer=2,
    )
    model = Whisper(dims)
    model.decoder.positional_embedding.data.normal_(0, 0.02)  # torch.empty: uninitialised memory
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def real_models() -> Path:
    """The models folder holding the real Whisper base (models/base.pt for openai-whisper,
    models/base/ for faster-whisper); tests that need it skip, saying why, where it is missing."""
    from audit.measure.models import installed

    if not installed("base", MODELS):
        pytest.skip(f"the real Whisper base is not installed in {MODELS} (`make install` installs it)")
    return MODELS


@pytest.fixture(scope="session")
def real_transcriber(real_models):
    """`real_transcriber(engine)`: the real Whisper base on that engine, loaded once per session."""
    from audit.measure.asr import load_transcriber
    from audit.configload import load_config

    loaded = {}

    def get(engine: str):
        if engine not in loaded:
            loaded[engine] = load_transcriber(load_config().asr, f"{engine}:base", "cpu")
        return loaded[engine]

    return get
