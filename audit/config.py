"""The typed sections of the audit configuration (norms, thresholds, phrase lists, company name)
and how a TOML table becomes one.

`configs/default.toml` holds every default (the classes here carry none); a user file given with
`--config` is laid over it, so it only needs the keys it changes. Every value is checked against
the section classes below when loaded, and the first problem stops the run with the file and the
dotted key that is wrong. `audit.configload` builds the whole `Config` (with the checks'
parameters and the rulebook); this module imports nothing of the checks or the rules, so every
stage can read its own section from it.
"""

from __future__ import annotations

import math
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from audit.records import SPEAKERS, Severity, Status, Verdict

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.toml"


class ConfigError(Exception):
    """A config file is unreadable or a key in it is invalid."""

    def __init__(self, file: Path | str, key: str, reason: str):
        self.file, self.key, self.reason = str(file), key, reason
        where = f"[{key}] " if key else ""
        super().__init__(f"{file}: {where}{reason}")


def value_range(lo: float | None = None, hi: float | None = None) -> dict:
    return {"min": lo, "max": hi}


@dataclass(frozen=True)
class CompanyConfig:
    name: str = field(metadata={"nonempty": True})
    aliases: tuple[str, ...]  # other spellings a reviewer accepts (short forms, ASR variants)


@dataclass(frozen=True)
class ChannelsConfig:
    agent: int = field(metadata=value_range(0, 1))
    mono_speaker: Literal["agent", "customer", "unknown"]


@dataclass(frozen=True)
class VadConfig:
    threshold: float = field(metadata=value_range(0.05, 0.95))
    min_speech_s: float = field(metadata=value_range(0.0, 5.0))
    min_silence_s: float = field(metadata=value_range(0.0, 10.0))
    speech_pad_s: float = field(metadata=value_range(0.0, 1.0))
    edge_margin_db: float = field(metadata=value_range(3.0, 40.0))
    edge_search_s: float = field(metadata=value_range(0.0, 1.0))
    region_pad_s: float = field(metadata=value_range(0.1, 5.0))
    max_tonal_steadiness: float = field(metadata=value_range(0.5, 1.0))
    tune_edge_steadiness: float = field(metadata=value_range(0.3, 1.0))


@dataclass(frozen=True)
class AsrConfig:
    model: str  # a name (installed in models_dir, else the engine's download) or a path
    engine: Literal["openai-whisper", "faster-whisper"]
    models_dir: str  # where `audit models install` puts models; relative to the project root
    device: Literal["auto", "cpu", "cuda"]
    cpu_compute_type: Literal["int8", "int8_float32", "float32"]  # faster-whisper on a CPU
    cuda_compute_type: Literal["float16", "int8_float16", "float32"]  # ... on CUDA
    language: str
    initial_prompt: str
    hotwords: tuple[str, ...]  # terms to steer decoding to (faster-whisper's hotwords; before openai-whisper's prompt)
    beam_size: int = field(metadata=value_range(1, 10))
    clip_pad_s: float = field(metadata=value_range(0.0, 2.0))
    clip_merge_gap_s: float = field(metadata=value_range(0.0, 10.0))
    redecode_rounds: int = field(metadata=value_range(0, 5))  # decodings of pieces Whisper did not reach
    redecode_tail_min_s: float = field(metadata=value_range(0.1, 30.0))  # s of speech after a piece's last text
    no_speech_threshold: float = field(metadata=value_range(0.0, 1.0))
    logprob_threshold: float = field(metadata=value_range(-20.0, 0.0))
    compression_ratio_threshold: float = field(metadata=value_range(1.0, 10.0))
    min_speech_overlap: float = field(metadata=value_range(0.0, 1.0))
    max_repeats: int = field(metadata=value_range(1, 50))
    prompt_echo_min_chars: int = field(metadata=value_range(1, 50))
    min_word_probability: float = field(metadata=value_range(0.0, 1.0))
    sure_word_probability: float = field(metadata=value_range(0.0, 1.0))  # below: a finding goes to review
    confusable: tuple[str, ...]  # groups of characters the ASR mistakes for each other ("你您")
    sure_confusable_probability: float = field(metadata=value_range(0.0, 1.0))  # ... their bar
    confusable_min_sure: int = field(metadata=value_range(1, 20))  # sure confusable matches to fail
    omitted: tuple[str, ...]  # words the ASR leaves out of its text (嗯): they cannot be missed on it
    untranscribed_min_s: float = field(metadata=value_range(0.2, 30.0))  # agent speech with no text: a miss unproven
    blocklist: tuple[str, ...]
    cpu_batch_windows: int = field(metadata=value_range(1, 64))  # windows decoded together
    cuda_batch_windows: int = field(metadata=value_range(1, 64))
    share_model: Literal["auto", "always", "never"]  # one model process per device


@dataclass(frozen=True)
class ProsodyConfig:
    """Thresholds of the prosody measures; `[prosody]` in the config, sources in the TOML."""

    rate_pause_min_s: float = field(metadata=value_range(0.05, 5.0))
    rate_min_chars: int = field(metadata=value_range(1, 50))
    rate_min_speech_s: float = field(metadata=value_range(0.05, 30.0))
    speaking_floor_db: float = field(metadata=value_range(5.0, 60.0))
    speaking_noise_percentile: float = field(metadata=value_range(1.0, 50.0))
    speaking_noise_share: float = field(metadata=value_range(0.0, 0.9))
    intensity_window_s: float = field(metadata=value_range(0.01, 0.2))
    nuclei_min_dip_db: float = field(metadata=value_range(0.1, 20.0))
    nuclei_floor_db: float = field(metadata=value_range(5.0, 60.0))
    nuclei_voicing_reach_s: float = field(metadata=value_range(0.0, 0.2))
    pitch_min_hz: float = field(metadata=value_range(30.0, 200.0))
    pitch_max_hz: float = field(metadata=value_range(150.0, 1000.0))
    pitch_voicing_threshold: float = field(metadata=value_range(0.01, 0.6))
    pitch_min_voiced_s: float = field(metadata=value_range(0.03, 10.0))
    level_window_s: float = field(metadata=value_range(0.1, 10.0))
    level_baseline_min_s: float = field(metadata=value_range(0.5, 600.0))
    quiet_level_dbfs: float = field(metadata=value_range(-90.0, 0.0))
    raised_level_db: float = field(metadata=value_range(1.0, 40.0))
    raised_min_s: float = field(metadata=value_range(0.1, 60.0))
    raised_merge_gap_s: float = field(metadata=value_range(0.0, 30.0))
    jump_level_db: float = field(metadata=value_range(1.0, 60.0))
    jump_pitch_level_db: float = field(metadata=value_range(0.0, 60.0))
    jump_pitch_st: float = field(metadata=value_range(0.5, 24.0))
    monotone_min_voiced_s: float = field(metadata=value_range(0.3, 60.0))
    monotone_max_range_st: float = field(metadata=value_range(0.5, 24.0))
    long_pause_s: float = field(metadata=value_range(0.3, 600.0))
    agitation_baseline_percentile: float = field(metadata=value_range(0.0, 50.0))
    agitation_level_db: float = field(metadata=value_range(1.0, 40.0))
    agitation_rate_ratio: float = field(metadata=value_range(1.01, 5.0))
    agitation_rate_min_s: float = field(metadata=value_range(0.3, 60.0))
    agitation_min_utterances: int = field(metadata=value_range(2, 100))


@dataclass(frozen=True)
class RingbackCadence:
    freqs_hz: tuple[float, ...] = field(metadata=value_range(100.0, 3000.0))
    cadence_s: tuple[float, ...] = field(metadata=value_range(0.05, 30.0))  # on, off[, on, off]

    def problems(self) -> list[tuple[str, str]]:
        if not self.freqs_hz:
            return [("freqs_hz", "must list at least one frequency")]
        if not self.cadence_s or len(self.cadence_s) % 2:
            return [("cadence_s", "must list on/off pairs in seconds, e.g. [1.0, 4.0]")]
        return []

    @property
    def cycle_s(self) -> float:
        return sum(self.cadence_s)


@dataclass(frozen=True)
class TimingConfig:
    ringback: str
    presets: dict[str, RingbackCadence]
    tone_min_ratio: float = field(metadata=value_range(0.1, 1.0))
    tone_min_level_dbfs: float = field(metadata=value_range(-90.0, 0.0))
    line_closed_dbfs: float = field(metadata=value_range(-140.0, -40.0))
    ring_cut_short_s: float = field(metadata=value_range(0.02, 1.0))
    min_silence_s: float = field(metadata=value_range(0.5, 60.0))
    hold_phrases: tuple[str, ...]
    announce_window_s: float = field(metadata=value_range(0.0, 120.0))
    vague_hold_s: float = field(metadata=value_range(1.0, 600.0))
    thanks_phrases: tuple[str, ...]
    thanks_window_s: float = field(metadata=value_range(0.0, 120.0))
    interruption_min_overlap_s: float = field(metadata=value_range(0.1, 10.0))
    interruption_min_chars: int = field(metadata=value_range(1, 50))
    customer_lead_s: float = field(metadata=value_range(0.0, 10.0))
    interruption_pause_s: float = field(metadata=value_range(0.0, 10.0))
    backchannel_chars: str

    def problems(self) -> list[tuple[str, str]]:
        if self.ringback not in self.presets:
            return [("ringback", f"{self.ringback!r} is not one of the presets {sorted(self.presets)}")]
        return []

    @property
    def cadence(self) -> RingbackCadence:
        return self.presets[self.ringback]


@dataclass(frozen=True)
class MetadataConfig:
    # A regex on the file name whose group `agent` is the agent id, e.g. '^(?P<agent>\d{4})_'
    # for 0086_20261122_0931.wav; empty = off. Sidecars and manifests take precedence.
    agent_id_from_name: str = field(metadata={"regex": True})

    def problems(self) -> list[tuple[str, str]]:
        if self.agent_id_from_name and "agent" not in re.compile(self.agent_id_from_name).groupindex:
            return [("agent_id_from_name", "needs a named group (?P<agent>...)")]
        return []


@dataclass(frozen=True)
class DecodeConfig:
    """What a recording must be to be audited at all (checked before its audio is read)."""

    min_sample_rate: int = field(metadata=value_range(1000, 384000))
    max_sample_rate: int = field(metadata=value_range(1000, 384000))
    max_duration_s: float = field(metadata=value_range(1.0, 86400.0))
    max_invalid_share: float = field(metadata=value_range(0.0, 1.0))  # NaN/inf samples


@dataclass(frozen=True)
class AgreementConfig:
    """How far a transcript (sidecar or Whisper) may disagree with the audio it describes."""

    min_speech_s: float = field(metadata=value_range(0.0, 60.0))  # voice activity in the call
    slack_s: float = field(metadata=value_range(0.0, 10.0))  # timing tolerance at the edges
    min_speech_share: float = field(metadata=value_range(0.0, 1.0))  # of each utterance
    max_silent_share: float = field(metadata=value_range(0.0, 1.0))  # of the transcript's time


@dataclass(frozen=True)
class TextConfig:
    rulebook: str  # the text rulebook, relative to the config file naming it
    key_terms: tuple[str, ...]  # besides the company names: read by sound in every transcript (audit.measure.terms)
    numbered_terms: tuple[str, ...]  # key terms a number follows (工号): the digits are read by sound too
    join_gap_s: float = field(metadata=value_range(0.0, 5.0))  # Whisper's pieces of one sentence joined (audit.measure.turns)


@dataclass(frozen=True)
class ReportConfig:
    """What the reviewer report shows and holds, and how it is built (`audit report`)."""

    mask_pii: bool  # phone, ID and bank card numbers keep only their last 4 digits in the report
    max_evidence: int = field(metadata=value_range(1, 1000))  # per finding; the rest counted
    audio_verdicts: tuple[Verdict, ...]  # the calls whose audio the report holds; () none
    audio_kbps: float = field(metadata=value_range(6.0, 256.0))  # Ogg Opus, kbit/s per channel
    workers: int = field(metadata=value_range(0, 256))  # processes building call pages; 0: one per core

    def problems(self) -> list[tuple[str, str]]:
        twice = sorted({v for v in self.audio_verdicts if self.audio_verdicts.count(v) > 1})
        return [("audio_verdicts", f"{twice[0]!r} is listed twice")] if twice else []


@dataclass(frozen=True)
class ReviewConfig:
    """What a reviewer picks from when confirming or dismissing a finding (report, `audit review`)."""

    reasons: tuple[str, ...] = field(metadata={"nonempty": True})

    def problems(self) -> list[tuple[str, str]]:
        if not self.reasons:
            return [("reasons", "must list at least one reason")]
        twice = sorted({r for r in self.reasons if self.reasons.count(r) > 1})
        return [("reasons", f"{twice[0]!r} is listed twice")] if twice else []


@dataclass(frozen=True)
class RuleLabel:
    name: str = field(metadata={"nonempty": True})  # what a reviewer reads, in Chinese
    category: str = field(metadata={"nonempty": True})  # one of [labels] categories


@dataclass(frozen=True)
class LabelsConfig:
    """Each rule's Chinese name and category: the one place the report and `audit status` read them."""

    categories: tuple[str, ...] = field(metadata={"nonempty": True})
    rules: dict[str, RuleLabel]
    verdicts: dict[str, str] = field(metadata={"nonempty": True})
    severities: dict[str, str] = field(metadata={"nonempty": True})
    statuses: dict[str, str] = field(metadata={"nonempty": True})
    speakers: dict[str, str] = field(metadata={"nonempty": True})

    def problems(self) -> list[tuple[str, str]]:
        for name, words in (("verdicts", typing.get_args(Verdict)), ("severities", typing.get_args(Severity)),
                            ("statuses", typing.get_args(Status)), ("speakers", SPEAKERS)):
            given = getattr(self, name)
            if set(given) != set(words):
                return [(name, f"must name exactly {list(words)}, got {sorted(given)}")]
        for rule_id, label in self.rules.items():
            if label.category not in self.categories:
                return [(f"rules.{rule_id}.category",
                         f"{label.category!r} is not one of the categories {list(self.categories)}")]
        return []


@dataclass(frozen=True)
class PrivacyConfig:
    """What the shared outputs hold (audit/privacy.py); the report has its own `[report] mask_pii`."""

    # records (calls/*.json, file names included), summary.json, `audit export` and the logs with
    # phone, ID and bank card numbers masked; the results database keeps them in clear
    mask_outputs: bool


RAY_ADDRESS = re.compile(r"(ray://)?[A-Za-z0-9.\-]+:\d{1,5}")  # ray://host:port or host:port


@dataclass(frozen=True)
class ClusterConfig:
    """Where `audit run --ray` audits the calls (audit/run/cluster.py); none of it changes a verdict."""

    ray: str  # "", "auto", "ray://host:port" or "host:port"
    auditors_per_node: int = field(metadata=value_range(0, 1024))  # 0: one per CPU
    calls_per_auditor: int = field(metadata=value_range(1, 64))

    def problems(self) -> list[tuple[str, str]]:
        reason = ray_address_problem(self.ray)
        return [("ray", reason)] if reason else []


def ray_address_problem(address: str) -> str | None:
    """Why `address` is no Ray cluster address `audit run --ray` takes, or None when it is one."""
    if address in ("", "auto") or RAY_ADDRESS.fullmatch(address):
        return None
    return (f"{address!r} is not a Ray cluster address: use \"auto\", \"ray://host:port\" (Ray Client) "
            "or \"host:port\" (a head node's address)")


@dataclass(frozen=True)
class ScoringConfig:
    fail_below: float = field(metadata=value_range(0.0, 100.0))
    # an unsure finding (on words the ASR doubted) of these severities sends the call to review
    unsure_review: tuple[Literal["critical", "major", "minor"], ...]


@dataclass(frozen=True)
class RuleConfig:
    """One rule's settings, a built-in check's or a rulebook rule's alike: `[rules."<id>"]`."""

    enabled: bool
    severity: Literal["critical", "major", "minor"]
    weight: float  # points off the score of 100 when the rule fails
    params: Any  # the check's own parameter dataclass; None for a rulebook rule (its conditions are its parameters)


@dataclass(frozen=True)
class Config:
    company: CompanyConfig
    channels: ChannelsConfig
    decode: DecodeConfig
    agreement: AgreementConfig
    vad: VadConfig
    asr: AsrConfig
    timing: TimingConfig
    prosody: ProsodyConfig
    metadata: MetadataConfig
    text: TextConfig
    report: ReportConfig
    privacy: PrivacyConfig
    review: ReviewConfig
    labels: LabelsConfig
    cluster: ClusterConfig
    scoring: ScoringConfig
    rules: dict[str, RuleConfig]  # every rule by id: the built-in checks', then the rulebook's
    rulebook: Any  # audit.judge.rules.Rulebook, the text rules (built by audit.configload: config sits below the rules)
    files: tuple[str, ...]  # the files this config was built from, defaults first
    sha256: str  # of the merged settings and the rulebook, to tell whether two runs used the same norms

    @property
    def company_names(self) -> tuple[str, ...]:
        return (self.company.name, *self.company.aliases)

    @property
    def key_terms(self) -> tuple[str, ...]:
        """Terms written as the term wherever a transcript spells them by sound (audit.measure.terms)."""
        return (*self.company_names, *self.text.key_terms)

    @property
    def weights(self) -> dict[str, float]:
        """Points each rule takes off the score when it fails: function checks and rulebook rules."""
        return {rule_id: rule.weight for rule_id, rule in self.rules.items()}


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, "", f"not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(path, "", f"not UTF-8 text (byte {error.start}): save it as UTF-8") from None
    except IsADirectoryError:
        raise ConfigError(path, "", "is a folder, not a TOML file") from None
    except OSError as error:
        raise ConfigError(path, "", f"cannot read: {error.strerror}") from None


def merge_tables(base: dict, overlay: dict) -> dict:
    """`base` with `overlay` laid over it, table by table: a site file states only what it changes."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


SECTIONS: dict[str, type] = {
    "company": CompanyConfig,
    "channels": ChannelsConfig,
    "decode": DecodeConfig,
    "agreement": AgreementConfig,
    "vad": VadConfig,
    "asr": AsrConfig,
    "timing": TimingConfig,
    "prosody": ProsodyConfig,
    "metadata": MetadataConfig,
    "text": TextConfig,
    "report": ReportConfig,
    "privacy": PrivacyConfig,
    "review": ReviewConfig,
    "labels": LabelsConfig,
    "cluster": ClusterConfig,
    "scoring": ScoringConfig,
}


def build_sections(table: dict, origin: str) -> dict[str, Any]:
    """Every typed section of a merged config table (all but `[rules]`), by name; an unknown
    section raises `ConfigError`."""
    known = {*SECTIONS, "rules"}
    for key in table:
        if key not in known:
            raise ConfigError(origin, key, f"unknown section; expected one of {sorted(known)}")
    return {name: build_section(cls, table.get(name, {}), origin, name) for name, cls in SECTIONS.items()}


RULE_KEYS = ("enabled", "severity", "weight")  # every rule's, built-in or rulebook


def build_rule(table: dict, params_cls: type | None, origin: str, key: str) -> RuleConfig:
    """A rule's `[rules."id"]` table: enabled, severity, weight and, for a built-in check, its
    parameters (`params_cls`); None for a rulebook rule, which takes no other key here."""
    common = set(RULE_KEYS)
    if params_cls is None:
        for name in table:
            if name not in common:
                raise ConfigError(origin, f"{key}.{name}",
                                  f"unknown key; a rulebook rule takes {list(RULE_KEYS)} here "
                                  "(its conditions and messages are in its rulebook)")
    for name in ("severity", "weight"):
        if name not in table:
            raise ConfigError(origin, f"{key}.{name}", "missing")
    enabled = _convert(bool, table.get("enabled", True), origin, f"{key}.enabled", {})
    severity = _convert(
        Literal["critical", "major", "minor"], table["severity"], origin, f"{key}.severity", {}
    )
    weight = _convert(float, table["weight"], origin, f"{key}.weight", value_range(0.0, 100.0))
    params = None
    if params_cls is not None:
        params = build_section(params_cls, {k: v for k, v in table.items() if k not in common}, origin, key)
    return RuleConfig(enabled=enabled, severity=severity, weight=weight, params=params)


def build_section(cls: type, table: Any, origin: str, prefix: str) -> Any:
    """Build dataclass `cls` from a TOML table, rejecting unknown, missing and ill-typed keys."""
    if not isinstance(table, dict):
        raise ConfigError(origin, prefix, "must be a table")
    names = {f.name for f in fields(cls)}
    for key in table:
        if key not in names:
            raise ConfigError(origin, f"{prefix}.{key}", f"unknown key; expected one of {sorted(names)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for spec in fields(cls):
        key = f"{prefix}.{spec.name}"
        if spec.name not in table:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ConfigError(origin, key, "missing")
            continue
        values[spec.name] = _convert(hints[spec.name], table[spec.name], origin, key, spec.metadata)
    section = cls(**values)
    for name, reason in [*inverted_bands(section), *getattr(section, "problems", lambda: [])()]:
        raise ConfigError(origin, f"{prefix}.{name}", reason)
    return section


def inverted_bands(section: Any) -> list[tuple[str, str]]:
    """Each `..min..` setting above its `..max..` partner (`min_cpm` and `max_cpm`,
    `pitch_min_hz` and `pitch_max_hz`): a band nothing can fall inside.

    Parameters
    ----------
    section : dataclass instance
        A built config section.

    Returns
    -------
    list of (str, str)
        The `min` key and the reason, for each inverted pair.
    """
    values = {spec.name: getattr(section, spec.name) for spec in fields(section)}
    problems = []
    for name, low in values.items():
        parts = name.split("_")
        for index in (i for i, part in enumerate(parts) if part == "min"):
            partner = "_".join([*parts[:index], "max", *parts[index + 1:]])
            high = values.get(partner)
            if _is_number(low) and _is_number(high) and low > high:
                problems.append((name, f"{low!r} is above {partner} = {high!r}: the band is empty"))
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _convert(kind: Any, value: Any, origin: str, key: str, meta: typing.Mapping) -> Any:
    origin_type = typing.get_origin(kind)
    if is_dataclass(kind):
        return build_section(kind, value, origin, key)
    if origin_type is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise ConfigError(origin, key, f"{value!r} is not one of {list(choices)}")
        return value
    if origin_type in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _convert(options[0], value, origin, key, meta)
    if origin_type is dict:
        item_kind = typing.get_args(kind)[1]
        if not isinstance(value, dict) or not value:
            raise ConfigError(origin, key, "must be a non-empty table")
        return {name: _convert(item_kind, v, origin, f"{key}.{name}", meta) for name, v in value.items()}
    if origin_type is tuple:
        item_kind = typing.get_args(kind)[0]
        if not isinstance(value, list):
            raise ConfigError(origin, key, f"must be a list, got {type(value).__name__}")
        return tuple(_convert(item_kind, v, origin, f"{key}[{i}]", meta) for i, v in enumerate(value))
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(origin, key, f"must be true or false, got {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(origin, key, f"must be a number, got {value!r}")
        if kind is int and not isinstance(value, int):
            raise ConfigError(origin, key, f"must be a whole number, got {value!r}")
        if not math.isfinite(value):  # TOML has nan and inf, and every comparison with nan is false
            raise ConfigError(origin, key, f"must be a finite number, got {value!r}")
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(origin, key, f"{value!r} is outside the allowed range [{lo}, {hi}]")
        return kind(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(origin, key, f"must be a string, got {value!r}")
        if meta.get("nonempty") and not value.strip():
            raise ConfigError(origin, key, "must not be empty")
        if meta.get("regex"):
            try:
                re.compile(value)
            except re.error as error:
                raise ConfigError(origin, key, f"not a valid regular expression: {error}") from None
        return value
    raise TypeError(f"unsupported config type {kind!r} for {key}")  # a bug in a section class
