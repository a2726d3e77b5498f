"""Read a CTranslate2 Whisper model (a faster-whisper model folder) and convert it to an
openai-whisper checkpoint.

A CTranslate2 `model.bin` is little-endian: a uint32 format version, the spec name and a uint32
revision, then a uint32 count of variables, each stored as its name, a uint8 rank, one uint32 per
dimension, a uint8 data type, a uint32 byte count and the bytes; last, a uint32 count of aliases
(name, name of the variable it shares). Strings are a uint16 length (with the closing NUL) and
the bytes.

The weights are OpenAI's, renamed and partly fused: self-attention `linear_0` holds query, key and
value stacked (the key has no bias in Whisper: its bias rows are zero), cross-attention `linear_0`
is the query and `linear_1` key and value stacked, layer norms are `gamma`/`beta`. The folder's
`config.json` lists the decoder's alignment heads (the cross-attention heads that follow the
audio, used for word times), which a checkpoint of openai-whisper does not carry: the converted
checkpoint keeps them under `alignment_heads`, and `audit.measure.models.load_openai_whisper` sets them.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUPPORTED_VERSIONS = (6,)  # the format version this reader was written against (CTranslate2 4.x)
SPEC_NAME = "WhisperSpec"
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # bfloat16 (5): none in Whisper
GELU = 3  # CTranslate2's ActivationType.GELU
# Scalars of the spec that fix the architecture: openai-whisper's is exactly this one.
ARCHITECTURE = {"decoder/activation": GELU, "decoder/alibi": 0, "decoder/pre_norm": 1,
                "decoder/scale_embeddings": 0, "decoder/start_from_zero_embedding": 0}
# Scalars CTranslate2 keeps for its own alignment search; config.json's heads are used instead.
IGNORED = ("decoder/alignment_heads", "decoder/alignment_layer")

_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/(.+)$")
_NORM = {"gamma": "weight", "beta": "bias"}
# Per-layer parts: CTranslate2 name (after layer_N/) -> openai-whisper name (after blocks.N.)
_ENCODER_PARTS = {"self_attention/layer_norm": "attn_ln", "self_attention/linear_1": "attn.out",
                  "ffn/layer_norm": "mlp_ln", "ffn/linear_0": "mlp.0", "ffn/linear_1": "mlp.2"}
_DECODER_PARTS = {**_ENCODER_PARTS, "attention/layer_norm": "cross_attn_ln",
                  "attention/linear_0": "cross_attn.query", "attention/linear_2": "cross_attn.out"}
_TOP = {"encoder/conv1": "encoder.conv1", "encoder/conv2": "encoder.conv2",
        "encoder/layer_norm": "encoder.ln_post", "decoder/layer_norm": "decoder.ln",
        "decoder/embeddings": "decoder.token_embedding"}
_POSITIONS = {"encoder/position_encodings/encodings": "encoder.positional_embedding",
              "decoder/position_encodings/encodings": "decoder.positional_embedding"}


class ConversionError(Exception):
    """The CTranslate2 model is unreadable or is not a Whisper model this converter knows."""


@dataclass(frozen=True)
class Ct2Model:
    """The contents of a CTranslate2 `model.bin`."""

    version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]  # alias -> the variable it shares (e.g. the output projection)


def read_model_bin(path: Path) -> Ct2Model:
    """Read a CTranslate2 `model.bin` into numpy arrays (in the dtypes stored).

    Parameters
    ----------
    path : Path
        The `model.bin` file.

    Raises
    ------
    ConversionError
        The file is cut short, has trailing bytes, an unknown format version or data type.
    """
    data = memoryview(bytearray(Path(path).read_bytes()))  # writable: torch shares it
    at = 0

    def take(count: int) -> memoryview:
        nonlocal at
        if at + count > len(data):
            raise ConversionError(f"{path}: cut short at byte {at} (wanted {count} more bytes of "
                                  f"{len(data)}); is a part of the model missing?")
        chunk = data[at: at + count]
        at += count
        return chunk

    def number(fmt: str) -> int:
        return struct.unpack("<" + fmt, take(struct.calcsize(fmt)))[0]

    def string() -> str:
        return bytes(take(number("H"))).rstrip(b"\0").decode("utf-8")

    version = number("I")
    if version not in SUPPORTED_VERSIONS:
        raise ConversionError(f"{path}: CTranslate2 format version {version} is not supported "
                              f"(this reader knows {SUPPORTED_VERSIONS})")
    spec, revision = string(), number("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(number("I")):
        name = string()
        shape = tuple(number("I") for _ in range(number("B")))
        code = number("B")
        if code not in DTYPES:
            raise ConversionError(f"{path}: variable {name} has unknown data type {code}")
        raw = take(number("I"))
        array = np.frombuffer(raw, dtype=DTYPES[code])
        if array.size != int(np.prod(shape)):
            raise ConversionError(f"{path}: variable {name} holds {array.size} values, "
                                  f"its shape {shape} needs {int(np.prod(shape))}")
        variables[name] = array.reshape(shape)
    aliases = {string(): string() for _ in range(number("I"))}
    if at != len(data):
        raise ConversionError(f"{path}: {len(data) - at} bytes after the last alias; not a model.bin")
    return Ct2Model(version, spec, revision, variables, aliases)


def read_alignment_heads(folder: Path) -> list[list[int]]:
    """The `[layer, head]` pairs of `config.json` in a CTranslate2 Whisper folder."""
    path = Path(folder) / "config.json"
    try:
        heads = json.loads(path.read_text(encoding="utf-8"))["alignment_heads"]
    except FileNotFoundError:
        raise ConversionError(f"{path}: missing (it carries the alignment heads)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ConversionError(f"{path}: no alignment_heads list ({error})") from None
    if not heads or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(i, int) for i in p)
                            for p in heads):
        raise ConversionError(f"{path}: alignment_heads must be a list of [layer, head] pairs")
    return heads


def convert_folder(folder: Path) -> dict:
    """An openai-whisper checkpoint from a CTranslate2 Whisper folder (`model.bin`, `config.json`).

    Parameters
    ----------
    folder : Path
        A faster-whisper model folder.

    Returns
    -------
    checkpoint : dict
        `dims` (whisper's ModelDimensions as a dict), `model_state_dict` (torch tensors, float16
        as stored) and `alignment_heads` (`[layer, head]` pairs), as `torch.save` writes it.

    Raises
    ------
    ConversionError
        An unreadable file, a variable this converter does not know, a missing one, or a shape
        that does not fit Whisper.
    """
    folder = Path(folder)
    model = read_model_bin(folder / "model.bin")
    if model.spec != SPEC_NAME:
        raise ConversionError(f"{folder / 'model.bin'}: a {model.spec}, not a {SPEC_NAME}")
    state, dims = to_state_dict(model, str(folder / "model.bin"))
    heads = read_alignment_heads(folder)
    for layer, head in heads:
        if not (0 <= layer < dims["n_text_layer"] and 0 <= head < dims["n_text_head"]):
            raise ConversionError(f"{folder / 'config.json'}: alignment head [{layer}, {head}] is "
                                  f"outside the decoder's {dims['n_text_layer']} x {dims['n_text_head']}")
    return {"dims": dims, "model_state_dict": state, "alignment_heads": heads}


def to_state_dict(model: Ct2Model, origin: str) -> tuple[dict, dict]:
    """openai-whisper's state dict (torch tensors) and model dimensions from a CTranslate2 Whisper."""
    import torch

    variables = dict(model.variables)
    for alias, target in model.aliases.items():
        if alias != "decoder/projection/weight" or target != "decoder/embeddings/weight":
            raise ConversionError(f"{origin}: unexpected alias {alias} -> {target}")
    state: dict[str, np.ndarray] = {}
    layers = {"encoder": set(), "decoder": set()}
    for name, value in variables.items():
        if name in IGNORED:
            continue
        if name in ARCHITECTURE:
            if int(value) != ARCHITECTURE[name]:
                raise ConversionError(f"{origin}: {name} = {int(value)}; openai-whisper's "
                                      f"architecture needs {ARCHITECTURE[name]}")
            continue
        if name in ("encoder/num_heads", "decoder/num_heads"):
            continue
        if name in _POSITIONS:
            state[_POSITIONS[name]] = value
            continue
        stem, leaf = name.rsplit("/", 1)
        leaf = _NORM.get(leaf, leaf)
        if stem in _TOP:
            state[f"{_TOP[stem]}.{leaf}"] = value
            continue
        match = _LAYER.match(stem)
        if not match:
            raise ConversionError(f"{origin}: unexpected variable {name}")
        side, index, part = match.group(1), int(match.group(2)), match.group(3)
        layers[side].add(index)
        prefix = f"{side}.blocks.{index}."
        parts = _ENCODER_PARTS if side == "encoder" else _DECODER_PARTS
        if part in parts:
            state[f"{prefix}{parts[part]}.{leaf}"] = value
        elif part == "self_attention/linear_0":
            _unfuse(state, f"{prefix}attn.", ("query", "key", "value"), leaf, value, name, origin)
        elif part == "attention/linear_1" and side == "decoder":
            _unfuse(state, f"{prefix}cross_attn.", ("key", "value"), leaf, value, name, origin)
        else:
            raise ConversionError(f"{origin}: unexpected variable {name}")
    for side in layers:
        if layers[side] != set(range(len(layers[side]))):
            raise ConversionError(f"{origin}: {side} layers {sorted(layers[side])} are not numbered 0..n-1")
    try:
        conv1, audio_pos = state["encoder.conv1.weight"], state["encoder.positional_embedding"]
        tokens, text_pos = state["decoder.token_embedding.weight"], state["decoder.positional_embedding"]
        dims = {"n_mels": conv1.shape[1], "n_audio_ctx": audio_pos.shape[0],
                "n_audio_state": audio_pos.shape[1], "n_audio_head": int(variables["encoder/num_heads"]),
                "n_audio_layer": len(layers["encoder"]), "n_vocab": tokens.shape[0],
                "n_text_ctx": text_pos.shape[0], "n_text_state": text_pos.shape[1],
                "n_text_head": int(variables["decoder/num_heads"]), "n_text_layer": len(layers["decoder"])}
    except KeyError as error:
        raise ConversionError(f"{origin}: no {error.args[0]} in the model") from None
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}
    return tensors, {name: int(value) for name, value in dims.items()}


def _unfuse(state: dict, prefix: str, names: tuple[str, ...], leaf: str, value: np.ndarray,
            variable: str, origin: str) -> None:
    """Split a fused projection (query/key/value stacked on the output axis); Whisper's key has
    no bias, so the key's part of a fused bias must be zero."""
    if value.shape[0] % len(names):
        raise ConversionError(f"{origin}: {variable} of shape {value.shape} does not split in {len(names)}")
    for name, part in zip(names, np.split(value, len(names), axis=0)):
        if leaf == "bias" and name == "key":
            if np.any(part):
                raise ConversionError(f"{origin}: {variable} has a key bias; Whisper's key has none")
            continue
        state[f"{prefix}{name}.{leaf}"] = part
