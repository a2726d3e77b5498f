"""Read the files that may sit beside a recording: `NAME.transcript.json` and `NAME.meta.json`.

A transcript from another ASR system and the call metadata from the telephony system arrive as
JSON next to the audio. Both are validated field by field so a malformed sidecar is reported with
the file and the field, never half-used.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from audit.records import CallMeta, Transcript, Utterance, Word

SIDECAR_SPEAKERS = ("agent", "customer")


class SidecarError(Exception):
    """A sidecar file exists but cannot be used; the message names the file and field."""


def transcript_path(recording: Path) -> Path:
    return recording.with_name(recording.stem + ".transcript.json")


def meta_path(recording: Path) -> Path:
    return recording.with_name(recording.stem + ".meta.json")


def is_sidecar(path: Path) -> bool:
    return path.name.endswith((".transcript.json", ".meta.json"))


def read_transcript(recording: Path) -> Transcript | None:
    """The sidecar transcript, or None when the recording has none.

    Parameters
    ----------
    recording : Path
        The recording; its transcript is `NAME.transcript.json` beside it.

    Returns
    -------
    Transcript or None
        Source "sidecar", the utterances sorted by start (seconds from the recording start).

    Raises
    ------
    SidecarError
        Naming the file and the first bad key.
    """
    path = transcript_path(recording)
    if not path.exists():
        return None
    document = _load_json(path)
    items = _get(document, "utterances", list, path, "")
    utterances = [_utterance(item, path, f"utterances[{i}]") for i, item in enumerate(items)]
    utterances.sort(key=lambda u: (u.start, u.end))
    return Transcript(source="sidecar", utterances=tuple(utterances))


def read_meta(recording: Path) -> CallMeta:
    """The call metadata beside the recording (`NAME.meta.json`), or an empty `CallMeta`.

    Parameters
    ----------
    recording : Path
        The recording.

    Returns
    -------
    CallMeta
        `agent_id`, `direction`, and `ring_start` / `answer_at` in seconds from the recording
        start (negative when the ringing began before it); None where the file says nothing.

    Raises
    ------
    SidecarError
        Naming the file and the bad key.
    """
    path = meta_path(recording)
    if not path.exists():
        return CallMeta()
    return _meta(_load_json(path), path.name)


def _meta(document: dict, where: str) -> CallMeta:
    agent_id = document.get("agent_id")
    if agent_id is not None and not isinstance(agent_id, (str, int)):
        raise SidecarError(f"{where}: agent_id must be a string")
    direction = document.get("direction")
    if direction is not None and direction not in ("inbound", "outbound"):
        raise SidecarError(f"{where}: direction must be 'inbound' or 'outbound'")
    return CallMeta(
        agent_id=None if agent_id is None else str(agent_id),
        direction=direction,
        ring_start=_optional_time(document, "ring_start", where),
        answer_at=_optional_time(document, "answer_at", where),
    )


MANIFEST_FIELDS = ("call_id", "path", "agent_id", "direction", "ring_start", "answer_at")


def read_manifest(path: Path) -> dict[str, CallMeta]:
    """Call metadata from a CSV (`call_id` or `path`, then any of agent_id, direction, ring_start,
    answer_at), keyed by call id and by resolved recording path."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            unknown = [c for c in columns if c not in MANIFEST_FIELDS]
            if unknown or not {"call_id", "path"} & set(columns):
                raise SidecarError(f"{path.name}: columns must include call_id or path, and only "
                                   f"{', '.join(MANIFEST_FIELDS)} (found {', '.join(columns)})")
            found: dict[str, CallMeta] = {}
            for line, row in enumerate(reader, start=2):
                values = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
                for key in ("ring_start", "answer_at"):
                    if key in values:
                        try:
                            values[key] = float(values[key])
                        except ValueError:
                            raise SidecarError(f"{path.name} line {line}: {key} must be seconds, "
                                               f"got {values[key]!r}") from None
                meta = _meta(values, f"{path.name} line {line}")
                if "call_id" in values:
                    found[values["call_id"]] = meta
                if "path" in values:
                    found[str(Path(values["path"]).resolve())] = meta
            return found
    except OSError as error:
        raise SidecarError(f"{path}: cannot read: {error.strerror}") from None


def _load_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM, as the manifest allows
    except (OSError, UnicodeDecodeError) as error:
        raise SidecarError(f"{path.name}: cannot read: {error}") from None
    except json.JSONDecodeError as error:
        raise SidecarError(f"{path.name}: not valid JSON: {error}") from None
    except RecursionError:
        raise SidecarError(f"{path.name}: not valid JSON: nested too deeply") from None
    except ValueError as error:  # an integer of more than 4300 digits
        raise SidecarError(f"{path.name}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise SidecarError(f"{path.name}: must hold a JSON object")
    return document


def _get(table: Any, key: str, kind: type | tuple, path: Path, where: str) -> Any:
    field = f"{where}.{key}" if where else key
    if not isinstance(table, dict) or key not in table:
        raise SidecarError(f"{path.name}: {field} is missing")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SidecarError(f"{path.name}: {field} has the wrong type ({type(value).__name__})")
    if isinstance(value, (int, float)) and not _finite(value):
        raise SidecarError(f"{path.name}: {field} is not a finite number")
    return value


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False


def _span(item: Any, path: Path, where: str) -> tuple[float, float]:
    start = float(_get(item, "start", (int, float), path, where))
    end = float(_get(item, "end", (int, float), path, where))
    if start < 0 or end < start:
        raise SidecarError(f"{path.name}: {where} has start {start} and end {end}")
    return start, end


def _utterance(item: Any, path: Path, where: str) -> Utterance:
    speaker = _get(item, "speaker", str, path, where)
    if speaker not in SIDECAR_SPEAKERS:
        raise SidecarError(f"{path.name}: {where}.speaker is {speaker!r}, not agent or customer")
    start, end = _span(item, path, where)
    text = _get(item, "text", str, path, where)
    listed = item.get("words")
    if listed is not None and not isinstance(listed, list):
        raise SidecarError(f"{path.name}: {where}.words has the wrong type ({type(listed).__name__})")
    words = []
    for i, word in enumerate(listed or []):
        word_where = f"{where}.words[{i}]"
        word_start, word_end = _span(word, path, word_where)
        probability = word.get("probability")  # the ASR's confidence, when the sidecar's ASR gave one
        if probability is not None and (isinstance(probability, bool) or not isinstance(probability, (int, float))
                                        or not 0.0 <= probability <= 1.0):
            raise SidecarError(f"{path.name}: {word_where}.probability must be a number from 0 to 1")
        words.append(Word(word_start, word_end, _get(word, "text", str, path, word_where),
                          None if probability is None else float(probability)))
    return Utterance(speaker, start, end, text, tuple(words))


def _optional_time(document: dict, key: str, where: str) -> float | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise SidecarError(f"{where}: {key} must be a number of seconds")
    return float(value)
