"""The reviewer's report: static HTML in `OUT/report/` that opens from the file system, offline.

- `index.html`: the run's counts, fails by rule and by agent, and every call, filterable by
  verdict, rule and agent and sortable (a little plain JS over a server-rendered table).
- `calls/<call>.html`: one call. Each finding with its message and, for each piece of evidence, a
  WAV clip of exactly that segment with `clip_context_s` around it (`clips/<call>/`); the transcript
  with the matched words highlighted and time stamps that seek a player of the whole call
  (`audio/<call>.flac`, lossless); inline SVG pictures of the call's timing and of the agent's
  rate, level and pitch per utterance against the configured bands.

Safety: every string that comes from a record (transcripts, messages, metadata, file names) reaches
the pages through Jinja2's autoescaping, and each page's Content-Security-Policy runs only the
page's own script, so markup in a transcript is shown as text and could not run even if it slipped
through. Privacy: phone, ID and bank card numbers in the text keep only their last four digits
(`mask_pii`); the audio is copied unaltered. Speed: a recording is decoded once per build, and a
call whose record, options and templates have not changed since the last build is skipped
(`report/build.json`). Faults: the build holds the output folder's lock (one writer at a time,
runs included); a call record that is missing or corrupt is written again from the results
database first; a full disk stops the build with `OutputFull` and leaves no temporary file.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import io
import json
import logging
import math
import re
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import numpy as np
import soundfile
from jinja2 import DictLoader, Environment, StrictUndefined

from audit import decode as decoding
from audit.config import Config, DecodeConfig, ScoringConfig, load_config
from audit.privacy import mask_numbers, worker_logging
from audit.store import (DB_NAME, OutputFull, OutputLock, ResultsDB, output_full, read_record,
                         record_path, write_file, write_text)

log = logging.getLogger(__name__)


class ReportError(Exception):
    """The output folder holds nothing a report can be built from; the message says why."""


MANIFEST_NAME = "build.json"
SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}
FLAGGED = ("fail", "unsure")  # findings a reviewer looks at: failures, and failures resting on unsure words
VERDICT_RANK = {"fail": 0, "review": 1, "pass": 2}
SPEAKER_CLASSES = {"agent", "customer", "unknown"}  # CSS classes; anything else shows as unknown


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bands:
    """The configured norms the prosody pictures draw (from the config the run audited with)."""

    rate_cpm: tuple[float, float]  # the call's average
    utterance_rate_cpm: tuple[float, float]  # one utterance
    quiet_level_dbfs: float
    raised_level_db: float  # above the agent's own baseline in the call
    pitch_hz: tuple[float, float]  # the range pitch is measured in
    monotone_max_range_st: float

    @classmethod
    def of(cls, config: Config) -> "Bands":
        rate = config.rules["prosody.rate"].params
        prosody = config.prosody
        return cls((rate.min_cpm, rate.max_cpm), (rate.utterance_min_cpm, rate.utterance_max_cpm),
                   prosody.quiet_level_dbfs, prosody.raised_level_db,
                   (prosody.pitch_min_hz, prosody.pitch_max_hz), prosody.monotone_max_range_st)


def run_config(summary: dict) -> Config:
    """The config a run audited with: the defaults with the run's own file laid over them."""
    files = summary["config"]["files"]
    return load_config(files[1] if len(files) > 1 else None)


@dataclass(frozen=True)
class Audio:
    """A recording as 16-bit samples (frames, channels): what the clips and the call copy hold."""

    samples: np.ndarray
    sample_rate: int


def load_audio(record: dict, limits: DecodeConfig, path: str | None = None) -> tuple[Audio | None, str]:
    """Decode the call's recording once (at `path`, else where the record says: a masked record
    names it with its numbers masked); (None, why) when it is gone, unreadable or changed.

    A recording whose SHA-256 differs from the record's was replaced after the audit: its audio
    would not be the audio the findings point at.
    """
    path = Path(path or record["recording"]["path"])
    if not path.exists():
        return None, f"The recording is not at {path} any more; no audio in this page."
    try:
        recording = decoding.decode(path, limits)
    except decoding.DecodeError as error:
        return None, f"The recording {path} cannot be decoded ({error}); no audio in this page."
    if recording.info.sha256 != record["recording"]["sha256"]:
        return None, (f"The recording {path} has changed since it was audited (its SHA-256 differs); "
                      "no audio in this page.")
    # decode() reads 16-bit and G.711 audio as int / 32768: this gives back the very same samples
    samples = np.clip(np.round(recording.samples.T * 32768.0), -32768, 32767).astype(np.int16)
    return Audio(samples, recording.sample_rate), ""


# --- audio files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    href: str  # relative to the call page
    start: float  # call time of the clip's first sample
    end: float


def clip_bounds(audio: Audio, start: float, end: float, context_s: float) -> tuple[int, int]:
    """First and last+1 frame of a segment with `context_s` on each side, inside the recording."""
    first = max(0, math.floor((start - context_s) * audio.sample_rate))
    last = min(len(audio.samples), math.ceil((end + context_s) * audio.sample_rate))
    return first, max(last, first + 1)


class ClipWriter:
    """Writes each distinct evidence segment of one call once, as a 16-bit WAV."""

    def __init__(self, audio: Audio, folder: Path, href_base: str, context_s: float):
        self.audio, self.folder, self.href_base, self.context_s = audio, folder, href_base, context_s
        self.written: dict[tuple[int, int], Clip] = {}

    def clip(self, start: float, end: float) -> Clip:
        bounds = clip_bounds(self.audio, start, end, self.context_s)
        if bounds not in self.written:
            first, last = bounds
            name = f"{first}-{last}.wav"
            self.folder.mkdir(parents=True, exist_ok=True)
            rate = self.audio.sample_rate
            _write_audio(self.folder / name, self.audio.samples[first:last], rate, "WAV")
            self.written[bounds] = Clip(f"{self.href_base}/{name}", first / rate, last / rate)
        return self.written[bounds]


def _write_audio(path: Path, samples: np.ndarray, sample_rate: int, fmt: str) -> None:
    """Encode in memory, then write through a temporary name (`store.write_file`): a full disk is
    then an OSError saying so, not a libsndfile error, and leaves no half file behind."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format=fmt, subtype="PCM_16")
    write_file(path, buffer.getvalue())


# --- text with highlights -----------------------------------------------------------------------


@dataclass(frozen=True)
class Highlight:
    start: int  # character positions in the text
    end: int
    kind: str  # "fail" or "pass": the result the match belongs to
    title: str


def text_pieces(text: str, highlights: list[Highlight]) -> list[tuple[str, Highlight | None]]:
    """The text cut into plain and highlighted pieces; failed findings win where matches overlap."""
    chosen: list[Highlight] = []
    for mark in sorted(highlights, key=lambda h: (h.kind != "fail", h.start)):
        if all(mark.end <= other.start or mark.start >= other.end for other in chosen):
            chosen.append(mark)
    pieces, position = [], 0
    for mark in sorted(chosen, key=lambda h: h.start):
        if mark.start > position:
            pieces.append((text[position:mark.start], None))
        pieces.append((text[mark.start:mark.end], mark))
        position = mark.end
    if position < len(text):
        pieces.append((text[position:], None))
    return pieces


def match_position(text: str, match: str, share: float) -> tuple[int, int] | None:
    """Where `match` sits in `text`: of several occurrences, the one nearest `share` of the way in.

    Evidence carries the time of the match, not its position; in a sentence that says 你 twice the
    time tells which one was meant.
    """
    starts = [m.start() for m in re.finditer(re.escape(match), text)] if match else []
    if not starts:
        return None
    best = min(starts, key=lambda s: abs(s - share * len(text)))
    return best, best + len(match)


# --- the call page's content --------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceView:
    start: float
    end: float
    speaker: str
    pieces: list
    clip: Clip | None
    utterance: int | None  # index in the transcript, for the "in transcript" link


@dataclass(frozen=True)
class ResultView:
    number: int
    rule_id: str
    status: str
    severity: str
    message: str
    evidence: list[EvidenceView]
    more: int = 0  # evidence found beyond what the record (or the page) keeps


@dataclass(frozen=True)
class UtteranceView:
    index: int
    start: float
    end: float
    speaker: str
    pieces: list


class CallContent:
    """What a call page shows, with every text masked (when asked) and matches located."""

    def __init__(self, record: dict, shown: Callable[[str], str], clips: ClipWriter | None,
                 max_evidence: int | None = None):
        self.record, self.shown, self.clips = record, shown, clips
        self.max_evidence = max_evidence  # per finding: a record audited before the cap holds more
        self.utterances = record["utterances"]
        self._by_text: dict[tuple[str, str], list[int]] = {}
        for index, utterance in enumerate(self.utterances):
            self._by_text.setdefault((utterance["speaker"], utterance["text"]), []).append(index)
        self.highlights: dict[int, list[Highlight]] = {}
        ordered = sorted(record["results"], key=lambda r: (r["status"] not in FLAGGED,
                                                           SEVERITY_ORDER.get(r["severity"], 3)))
        self.results = [self._result(number, result) for number, result in enumerate(ordered, 1)]

    @property
    def findings(self) -> list[ResultView]:
        return [r for r in self.results if r.status in FLAGGED]

    @property
    def other_results(self) -> list[ResultView]:
        return [r for r in self.results if r.status not in FLAGGED]

    def transcript(self) -> list[UtteranceView]:
        return [UtteranceView(i, u["start"], u["end"], _speaker_class(u["speaker"]),
                              self._pieces(u["text"], self.highlights.get(i, [])))
                for i, u in enumerate(self.utterances)]

    def corrections(self) -> list[dict]:
        return [{"utterance_start": c["utterance_start"], "speaker": _speaker_class(c["speaker"]),
                 "heard": self.shown(c["heard"]), "term": self.shown(c["term"])}
                for c in self.record.get("term_corrections", [])]

    def dropped(self) -> list[dict]:
        return [{"start": d["start"], "end": d["end"], "speaker": _speaker_class(d["speaker"]),
                 "text": self.shown(d["text"]), "reason": self.shown(d["reason"])}
                for d in self.record.get("dropped_utterances", [])]

    def _result(self, number: int, result: dict) -> ResultView:
        failed = result["status"] in FLAGGED
        title = f"{result['rule_id']}: {self.shown(result['message'])}"
        items = result["evidence"][:self.max_evidence]
        evidence = [self._evidence(item, "fail" if failed else "pass", title, failed) for item in items]
        found = (result.get("details") or {}).get("evidence_total", len(result["evidence"]))
        more = found - len(items) if isinstance(found, int) else 0
        return ResultView(number, result["rule_id"], result["status"], result["severity"],
                          self.shown(result["message"]), evidence, max(more, 0))

    def _evidence(self, item: dict, kind: str, title: str, with_clip: bool) -> EvidenceView:
        utterance = self._utterance_of(item)
        marks = []
        if item.get("match"):
            share = self._share(item, utterance)
            span = match_position(item["text"], item["match"], share)
            if span:
                marks.append(Highlight(*span, kind, title))
                if utterance is not None:
                    self.highlights.setdefault(utterance, []).append(Highlight(*span, kind, title))
        clip = self.clips.clip(item["start"], item["end"]) if self.clips and with_clip else None
        return EvidenceView(item["start"], item["end"], _speaker_class(item["speaker"]),
                            self._pieces(item["text"], marks), clip, utterance)

    def _utterance_of(self, item: dict) -> int | None:
        """The transcript utterance an evidence item quotes: same speaker and text, nearest in time.

        The candidates are in transcript (start) order: the one starting last before the item and
        the next are the nearest, found by bisection (thousands of identical short utterances stay
        cheap).
        """
        candidates = self._by_text.get((item["speaker"], item["text"]), [])
        if not candidates:
            return None
        middle = (item["start"] + item["end"]) / 2
        at = bisect.bisect_right(candidates, item["start"], key=lambda i: self.utterances[i]["start"])
        near = candidates[max(0, at - 2): at + 1]
        return min(near, key=lambda i: abs((self.utterances[i]["start"] + self.utterances[i]["end"]) / 2
                                           - middle))

    def _share(self, item: dict, utterance: int | None) -> float:
        if utterance is None:
            return 0.0
        u = self.utterances[utterance]
        return min(max((item["start"] - u["start"]) / max(u["end"] - u["start"], 1e-6), 0.0), 1.0)

    def _pieces(self, text: str, highlights: list[Highlight]) -> list:
        return text_pieces(self.shown(text), highlights)


def _speaker_class(speaker: str) -> str:
    return speaker if speaker in SPEAKER_CLASSES else "unknown"


# --- pictures: inline SVG -----------------------------------------------------------------------

CHART_WIDTH = 1000.0
CHART_LEFT = 118.0  # room for the lane and axis labels
CHART_RIGHT = 990.0
LANE_HEIGHT = 16.0
LANE_GAP = 6.0
PANEL_HEIGHT = 130.0
PLOT_TOP = 22.0
PLOT_HEIGHT = 86.0
TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


@dataclass(frozen=True)
class TimeAxis:
    """Call time in seconds -> x in the charts' viewBox, shared by every picture of a call."""

    duration_s: float

    def x(self, seconds: float) -> float:
        share = min(max(seconds, 0.0), self.duration_s) / max(self.duration_s, 1e-6)
        return round(CHART_LEFT + (CHART_RIGHT - CHART_LEFT) * share, 1)

    def width(self, start: float, end: float) -> float:
        return max(round(self.x(end) - self.x(start), 1), 1.5)  # an instant stays visible

    def ticks(self) -> list[tuple[float, str]]:
        step = next((s for s in TICK_STEPS_S if self.duration_s / s <= 12), TICK_STEPS_S[-1])
        return [(self.x(t), _clock(t, decimals=False))
                for t in np.arange(0.0, self.duration_s + 1e-9, step)]


@dataclass(frozen=True)
class Span:
    x: float
    width: float
    kind: str
    title: str
    href: str = ""


@dataclass(frozen=True)
class Lane:
    label: str
    spans: list[Span]


def timeline(record: dict, findings: list[ResultView], axis: TimeAxis) -> list[Lane]:
    """Ringing, each channel's speech, overlaps, holds and dead air, and the flagged spans."""
    details = _details(record)

    def spans(intervals, kind: str, what: str) -> list[Span]:
        return [Span(axis.x(start), axis.width(start, end), kind, f"{what} {_clock(start)}-{_clock(end)}")
                for start, end in intervals]

    lanes = [_ringing_lane(record["metrics"], axis)]
    channels = [(c["speaker"], c["intervals"]) for c in record["speech"]]
    for speaker, intervals in channels:
        label = speaker if speaker in ("agent", "customer") else "speech"
        lanes.append(Lane(label, spans(intervals, _speaker_class(speaker), speaker)))
    if len(channels) == 2:
        both = overlaps(channels[0][1], channels[1][1])
        lanes.append(Lane("overlap", spans(both, "overlap", "both talking")))
    holds = [(h["start"], h["end"]) for h in details.get("timing.hold_overrun", {}).get("holds", [])]
    dead_air = [(d["start"], d["end"]) for d in details.get("timing.dead_air", {}).get("dead_air", [])]
    silences = spans(holds, "hold", "hold") + spans(dead_air, "dead-air", "dead air")
    lanes.append(Lane("hold / dead air", silences))
    flagged = [Span(axis.x(e.start), axis.width(e.start, e.end), "flag", f"{f.rule_id} {_clock(e.start)}",
                    f"#finding-{f.number}") for f in findings for e in f.evidence]
    lanes.append(Lane("flagged", flagged))
    return lanes


def _ringing_lane(metrics: dict, axis: TimeAxis) -> Lane:
    """From the first ring to the answer, where the recording holds it."""
    ring_start, answer = metrics.get("ring_start_s"), metrics.get("answer_s")
    if ring_start is None or answer is None or answer <= max(ring_start, 0.0):
        return Lane("ringing", [])
    before = f", from {-ring_start:g} s before the recording" if ring_start < 0 else ""
    title = f"ringing: {metrics.get('ring_count')} rings until {_clock(answer)}{before}"
    return Lane("ringing", [Span(axis.x(ring_start), axis.width(ring_start, answer), "ring", title)])


def overlaps(first: list, second: list) -> list[tuple[float, float]]:
    """Where two sorted lists of [start, end] intervals intersect."""
    found, i, j = [], 0, 0
    while i < len(first) and j < len(second):
        start, end = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        if end > start:
            found.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return found


@dataclass(frozen=True)
class Scale:
    """Values -> y in a panel; logarithmic for pitch, which is heard in ratios."""

    low: float
    high: float
    log: bool = False

    def y(self, value: float) -> float:
        if self.log:
            share = math.log(value / self.low) / math.log(self.high / self.low)
        else:
            share = (value - self.low) / (self.high - self.low)
        return round(PLOT_TOP + PLOT_HEIGHT * (1.0 - min(max(share, 0.0), 1.0)), 1)


@dataclass(frozen=True)
class Guide:
    y: float
    label: str
    kind: str


@dataclass(frozen=True)
class Mark:
    """One utterance: a bar at its value over its time, a whisker for its pitch range."""

    x1: float
    x2: float
    y: float
    kind: str  # "ok" or "out" of its band
    title: str
    whisker: tuple[float, float] | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    band: tuple[float, float] | None  # y of the top and bottom of the shaded in-band area
    guides: list[Guide]
    ticks: list[tuple[float, str]]
    marks: list[Mark]
    spans: list[Span]


def prosody_panels(record: dict, bands: Bands, axis: TimeAxis, shown: Callable[[str], str]) -> list[Panel]:
    """The agent's rate, level and pitch per utterance; empty when the record has no such values."""
    measured = [u for u in record["utterances"] if u["speaker"] == "agent" and u.get("prosody")]
    if not measured:
        return []
    details = _details(record)
    source = details.get("prosody.rate", {}).get("source", "transcript")
    return [_rate_panel(measured, "rate_cpm" if source == "transcript" else "rate_audio_cpm",
                        record["metrics"].get("agent_rate_cpm"), bands, axis, shown),
            _level_panel(measured, details.get("prosody.raised_voice", {}), bands, axis, shown),
            _pitch_panel(measured, record["metrics"].get("agent_pitch_median_hz"), bands, axis, shown)]


def _rate_panel(measured: list[dict], key: str, average: float | None, bands: Bands, axis: TimeAxis,
                shown: Callable[[str], str]) -> Panel:
    values = [u["prosody"].get(key) for u in measured]
    low, high = bands.utterance_rate_cpm
    call_low, call_high = bands.rate_cpm
    scale = Scale(0.0, max([high * 1.25, *[v * 1.1 for v in values if v is not None]]))
    guides = [Guide(scale.y(call_low), f"call minimum {call_low:g}", "limit"),
              Guide(scale.y(call_high), f"call maximum {call_high:g}", "limit")]
    legend = (f"Speech rate, 字/分. Green: the band for one utterance, {low:g}-{high:g}; "
              f"red dashes: the band for the call, {call_low:g}-{call_high:g}")
    if average is not None:
        guides.append(Guide(scale.y(average), f"call average {average:g}", "average"))
        legend += f"; grey dashes: this call's average, {average:g}"
    marks = [_mark(u, v, scale, axis, "out" if not low <= v <= high else "ok", f"{v:.0f} 字/分", shown)
             for u, v in zip(measured, values) if v is not None]
    return Panel(legend, (scale.y(high), scale.y(low)), guides, _value_ticks(scale, 100.0), marks, [])


def _level_panel(measured: list[dict], raised: dict, bands: Bands, axis: TimeAxis,
                 shown: Callable[[str], str]) -> Panel:
    values = [u["prosody"].get("level_dbfs") for u in measured]
    scale = Scale(min([-50.0, *[v - 3.0 for v in values if v is not None]]), 0.0)
    quiet, baseline = bands.quiet_level_dbfs, raised.get("baseline_dbfs")
    loud = baseline + bands.raised_level_db if baseline is not None else None
    guides = [Guide(scale.y(quiet), f"too quiet below {quiet:g}", "limit")]
    legend = f"Level, dBFS. Red dashes: too quiet below {quiet:g}"
    if loud is not None:
        guides += [Guide(scale.y(baseline), f"the agent's usual level {baseline:g}", "average"),
                   Guide(scale.y(loud), f"raised above {loud:g}", "limit")]
        legend += (f", raised above {loud:g} ({bands.raised_level_db:g} dB over the agent's usual "
                   f"{baseline:g}, grey dashes); pink: raised-voice episodes")
    marks = [_mark(u, v, scale, axis, "out" if v < quiet or (loud is not None and v >= loud) else "ok",
                   f"{v:.1f} dBFS", shown)
             for u, v in zip(measured, values) if v is not None]
    episodes = [Span(axis.x(e["start"]), axis.width(e["start"], e["end"]), "raised",
                     f"raised voice {_clock(e['start'])}-{_clock(e['end'])}, +{e['rise_db']:g} dB")
                for e in raised.get("episodes", [])]
    band = (scale.y(loud if loud is not None else 0.0), scale.y(quiet))
    return Panel(legend, band, guides, _value_ticks(scale, 10.0), marks, episodes)


def _pitch_panel(measured: list[dict], median: float | None, bands: Bands, axis: TimeAxis,
                 shown: Callable[[str], str]) -> Panel:
    scale = Scale(*bands.pitch_hz, log=True)
    marks = []
    for u in measured:
        hz, spread = u["prosody"].get("pitch_median_hz"), u["prosody"].get("pitch_range_st")
        if hz is None:
            continue
        whisker = None
        if spread is not None:  # the 5-95 % range, drawn around the median
            whisker = (scale.y(hz * 2 ** (spread / 24)), scale.y(hz * 2 ** (-spread / 24)))
        flat = u["prosody"].get("monotone") is True
        label = f"{hz:.0f} Hz" + (f", range {spread:.1f} st" if spread is not None else "")
        label += ", flat" if flat else ""
        marks.append(_mark(u, hz, scale, axis, "out" if flat else "ok", label, shown, whisker))
    legend = (f"Pitch, Hz (log scale). Bar: median, whisker: 5-95 % range; red: flat, a range of at most "
              f"{bands.monotone_max_range_st:g} semitones")
    guides = []
    if median:
        guides.append(Guide(scale.y(median), f"the agent's median {median:g} Hz", "average"))
        legend += f"; grey dashes: the agent's median, {median:g}"
    low, high = bands.pitch_hz
    ticks = [(scale.y(hz), f"{hz:g}") for hz in (60, 100, 200, 400) if low <= hz <= high]
    return Panel(legend, None, guides, ticks, marks, [])


def _mark(utterance: dict, value: float, scale: Scale, axis: TimeAxis, kind: str, label: str,
          shown: Callable[[str], str], whisker: tuple[float, float] | None = None) -> Mark:
    title = f"{_clock(utterance['start'])} {label}: {shown(utterance['text'])}"
    return Mark(axis.x(utterance["start"]), axis.x(utterance["end"]), scale.y(value), kind, title, whisker)


def _value_ticks(scale: Scale, step: float) -> list[tuple[float, str]]:
    first = math.ceil(scale.low / step) * step
    return [(scale.y(v), f"{v:g}") for v in np.arange(first, scale.high + 1e-9, step)]


def _details(record: dict) -> dict[str, dict]:
    return {r["rule_id"]: r.get("details") or {} for r in record["results"]}


def _clock(seconds: float | None, decimals: bool = True) -> str:
    """mm:ss.s, the way the player shows time."""
    if seconds is None:
        return "-"
    minutes, rest = divmod(max(float(seconds), 0.0), 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}" if decimals else f"{int(minutes):02d}:{int(rest):02d}"


# --- pages --------------------------------------------------------------------------------------

STYLE = """
:root { --pass: #1a7f37; --review: #9a6700; --fail: #cf222e; --agent: #0969da; --customer: #8250df;
  --line: #d0d7de; --muted: #57606a; font-family: system-ui, "PingFang SC", "Noto Sans CJK SC", sans-serif; }
body { margin: 0 auto; max-width: 1200px; padding: 0 16px 48px; color: #1f2328; }
h1 { font-size: 1.4rem; word-break: break-all; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 4px 8px;
  border-bottom: 1px solid var(--line); vertical-align: top; } td.num, th.num { text-align: right; }
.muted, .facts { color: var(--muted); } .facts dt { font-weight: 600; } .facts dd { margin: 0 0 4px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
.verdict { font-weight: 700; text-transform: uppercase; } .v-pass { color: var(--pass); }
.v-review { color: var(--review); } .v-fail { color: var(--fail); }
.counts { display: flex; gap: 12px; flex-wrap: wrap; } .count { border: 1px solid var(--line);
  border-radius: 6px; padding: 8px 16px; } .count b { display: block; font-size: 1.5rem; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
button.link { background: none; border: 0; padding: 0; color: var(--agent); cursor: pointer; font: inherit; }
.filters { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; margin-bottom: 8px; }
th button { background: none; border: 0; font: inherit; font-weight: 600; cursor: pointer; padding: 0; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
.finding { border-left: 4px solid var(--fail); padding: 4px 12px; margin: 12px 0; background: #fff8f8; }
.finding.sev-minor { border-color: var(--review); background: #fffbf0; }
.finding h3 { margin: 4px 0; font-size: 1rem; } .severity { color: var(--muted); font-weight: 400; }
.points { margin-left: 6px; color: var(--muted); font-weight: 400; } .why { margin: 4px 0 12px; }
.unsure { margin-left: 6px; padding: 0 4px; border: 1px solid var(--muted); border-radius: 3px; font-size: .8rem; }
.evidence { list-style: none; padding: 0; } .evidence li { margin: 8px 0; }
.evidence audio { display: block; height: 32px; margin-top: 4px; }
.when { font-variant-numeric: tabular-nums; color: var(--muted); }
.speaker { font-weight: 600; } .speaker.agent { color: var(--agent); }
.speaker.customer { color: var(--customer); }
mark.fail { background: #ffcecb; } mark.pass { background: #d2f4d3; }
.player { position: sticky; top: 0; background: #fff; padding: 8px 0; z-index: 1;
  border-bottom: 1px solid var(--line); }
.player audio { width: 100%; }
.transcript { list-style: none; padding: 0; } .transcript li { padding: 3px 0; display: grid;
  grid-template-columns: 4.5rem 5rem 1fr; gap: 8px; } .transcript li:target { background: #fff8c5; }
button.seek { font: inherit; font-variant-numeric: tabular-nums; background: #f6f8fa;
  border: 1px solid var(--line); border-radius: 4px; cursor: pointer; padding: 0 4px; }
.chart { width: 100%; height: auto; display: block; font-size: 11px; }
.chart .lane-label, .chart .tick, .chart .panel-title { fill: var(--muted); }
.chart .ring { fill: #bf8700; } .chart .agent { fill: var(--agent); }
.chart .customer { fill: var(--customer); }
.chart .unknown { fill: #6e7781; } .chart .overlap { fill: #fb8500; } .chart .hold { fill: #8c959f; }
.chart .dead-air { fill: #24292f; } .chart .flag { fill: var(--fail); } .chart .lane-bg { fill: #f6f8fa; }
.chart .grid { stroke: #eaeef2; } .chart .band { fill: #dafbe1; } .chart .raised { fill: #ffebe9; }
.chart .guide { stroke-dasharray: 4 3; stroke: #8c959f; } .chart .guide.limit { stroke: var(--fail); }
.chart .mark line { stroke-width: 3; stroke: var(--agent); } .chart .mark.out line { stroke: var(--fail); }
.chart .mark line.whisker { stroke-width: 1; }
.note { background: #f6f8fa; border: 1px solid var(--line); padding: 8px 12px; border-radius: 6px; }
"""

INDEX_SCRIPT = """
"use strict";
const table = document.getElementById("calls");
const rows = Array.from(table.tBodies[0].rows);
const pick = {verdict: document.getElementById("filter-verdict"),
  rule: document.getElementById("filter-rule"), agent: document.getElementById("filter-agent")};
const shown = document.getElementById("shown");
const numeric = new Set(["rank", "score", "fails"]);
let order = {key: "", descending: false};

function keep(row) {
  return (!pick.verdict.value || row.dataset.verdict === pick.verdict.value)
    && (!pick.agent.value || row.dataset.agent === pick.agent.value)
    && (!pick.rule.value || JSON.parse(row.dataset.rules).includes(pick.rule.value));
}

function filter() {
  let count = 0;
  for (const row of rows) {
    row.hidden = !keep(row);
    count += row.hidden ? 0 : 1;
  }
  shown.textContent = count + " of " + rows.length + " calls";
}

function sortBy(key) {
  order = {key, descending: order.key === key ? !order.descending : false};
  const sign = order.descending ? -1 : 1;
  const value = (row) => numeric.has(key) ? Number(row.dataset[key]) : row.dataset[key];
  rows.sort((a, b) => sign * (value(a) < value(b) ? -1 : value(a) > value(b) ? 1 : 0));
  table.tBodies[0].append(...rows);
  for (const header of table.tHead.querySelectorAll("th")) {
    const button = header.querySelector("[data-sort]");
    header.setAttribute("aria-sort", button && button.dataset.sort === key
      ? (order.descending ? "descending" : "ascending") : "none");
  }
}

for (const select of Object.values(pick)) select.addEventListener("change", filter);
for (const button of document.querySelectorAll("[data-sort]")) {
  button.addEventListener("click", () => sortBy(button.dataset.sort));
}
for (const button of document.querySelectorAll("[data-pick]")) {
  button.addEventListener("click", () => {
    pick[button.dataset.pick].value = button.dataset.value;
    filter();
    table.scrollIntoView();
  });
}
document.getElementById("clear").addEventListener("click", () => {
  for (const select of Object.values(pick)) select.value = "";
  filter();
});
filter();
"""

CALL_SCRIPT = """
"use strict";
const player = document.getElementById("call-audio");
for (const button of document.querySelectorAll("[data-seek]")) {
  button.addEventListener("click", () => {
    player.currentTime = Number(button.dataset.seek);
    player.play();
  });
}
// one voice at a time: starting a clip pauses the call and the other clips
document.addEventListener("play", (event) => {
  for (const audio of document.querySelectorAll("audio")) {
    if (audio !== event.target) audio.pause();
  }
}, true);
"""

TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{% block title %}{% endblock %}</title>
<style>{{ style|safe }}</style>
</head>
<body>
{% block body %}{% endblock %}
<script>{{ script|safe }}</script>
</body>
</html>
""",
    "index.html": """{% extends "base.html" %}
{% macro choices(id, label, values) -%}
<label>{{ label }} <select id="{{ id }}"><option value="">all</option>
{%- for value in values %}<option value="{{ value }}">{{ value }}</option>{% endfor -%}
</select></label>
{%- endmacro %}
{% macro pick(what, value) -%}
<button type="button" class="link" data-pick="{{ what }}" data-value="{{ value }}">{{ value }}</button>
{%- endmacro %}
{% block title %}Call audit report{% endblock %}
{% block body %}
<h1>Call audit report</h1>
<p class="muted">Run {{ run.run_id }}: {{ run.files }} recordings, {{ run.elapsed }} s;
transcripts: {{ run.asr }}; config: {{ run.config }}.
Numbers that look like phone, ID or bank card numbers are {{ "masked" if masked else "NOT masked" }}.</p>
<section class="counts">
{% for label, value, kind in counts %}<div class="count {{ kind }}"><b>{{ value }}</b>{{ label }}</div>
{% endfor %}</section>
<div class="columns">
<section><h2>Fails by rule</h2>
<table><thead><tr><th>rule</th><th class="num">calls</th></tr></thead><tbody>
{% for rule, count in fails_by_rule %}<tr><td>{{ pick("rule", rule) }}</td><td class="num">{{ count }}</td></tr>
{% else %}<tr><td colspan="2" class="muted">no rule failed</td></tr>
{% endfor %}</tbody></table></section>
<section><h2>Fails by agent</h2>
<table><thead><tr><th>agent</th><th class="num">calls</th><th class="num">fails</th><th>most failed</th></tr>
</thead><tbody>
{% for agent in fails_by_agent %}<tr><td>{{ pick("agent", agent.name) }}</td><td class="num">{{ agent.calls }}</td>
<td class="num">{{ agent.fails }}</td><td>{{ agent.top }}</td></tr>
{% endfor %}</tbody></table></section>
</div>
<section><h2>Calls</h2>
<div class="filters">
{{ choices("filter-verdict", "Verdict", verdicts) }}
{{ choices("filter-rule", "Rule", rules) }}
{{ choices("filter-agent", "Agent", agents) }}
<button type="button" id="clear">clear filters</button>
<output id="shown">{{ calls|length }} calls</output>
</div>
<table id="calls"><thead><tr>
{% for key, label in (("call", "call"), ("agent", "agent"), ("rank", "verdict"), ("score", "score"),
                      ("fails", "failed rules")) -%}
<th aria-sort="none"><button type="button" data-sort="{{ key }}">{{ label }}</button></th>
{% endfor %}<th>transcript</th></tr></thead>
<tbody>
{% for call in calls %}<tr data-call="{{ call.name }}" data-agent="{{ call.agent }}" data-verdict="{{ call.verdict }}"
 data-rank="{{ call.rank }}" data-score="{{ call.score }}" data-fails="{{ call.failed_rules|length }}"
 data-rules='{{ call.failed_rules|tojson }}'>
<td>{% if call.href %}<a href="{{ call.href }}">{{ call.name }}</a>
{%- else %}{{ call.name }} <span class="muted">(no page: {{ call.problem }})</span>{% endif %}</td>
<td>{{ call.agent }}</td><td class="verdict v-{{ call.verdict }}">{{ call.verdict }}</td>
<td class="num">{{ call.score }}</td><td>{{ call.failed_rules|join(", ") }}</td><td>{{ call.transcript_source }}</td>
</tr>
{% endfor %}</tbody></table>
</section>
{% if errors %}<section><h2>Recordings that could not be audited ({{ errors|length }})</h2>
<table><thead><tr><th>call</th><th>file</th><th>reason</th></tr></thead><tbody>
{% for e in errors %}<tr><td>{{ e.name }}</td><td>{{ e.path }}</td><td>{{ e.reason }}</td></tr>
{% endfor %}</tbody></table></section>{% endif %}
{% endblock %}
""",
    "call.html": """{% extends "base.html" %}
{% macro pieces(items) -%}
{% for text, mark in items %}{% if mark %}<mark class="{{ mark.kind }}" title="{{ mark.title }}">{{ text }}</mark>
{%- else %}{{ text }}{% endif %}{% endfor %}
{%- endmacro %}
{% macro seek(start) -%}
{% if audio %}<button type="button" class="seek" data-seek="{{ start }}">{{ start|clock }}</button>
{%- else %}<span class="when">{{ start|clock }}</span>{% endif %}
{%- endmacro %}
{% macro time_lines(top, height) -%}
{% for x, label in ticks %}<line class="grid" x1="{{ x }}" x2="{{ x }}" y1="{{ top }}" y2="{{ height - 14 }}"/>
<text class="tick" x="{{ x }}" y="{{ height - 3 }}" text-anchor="middle">{{ label }}</text>
{% endfor %}
{%- endmacro %}
{% block title %}{{ name }}: {{ record.verdict }}{% endblock %}
{% block body %}
<p><a href="../index.html">&larr; all calls</a></p>
<h1>{{ name }}</h1>
<p><span class="verdict v-{{ record.verdict }}">{{ record.verdict }}</span> score {{ record.score }}
{% for category, value in record.subscores.items() %} &middot; {{ category }} {{ value }}{% endfor %}</p>
<p class="why">{{ why }}</p>
<dl class="facts">
{% for label, value in facts %}<dt>{{ label }}</dt><dd>{{ value }}</dd>
{% endfor %}</dl>
{% if audio_problem %}<p class="note">{{ audio_problem }}</p>{% endif %}

<h2>Timeline</h2>
<svg class="chart" viewBox="0 0 {{ chart.width }} {{ timeline_height }}" role="img" aria-label="timeline of the call">
{{ time_lines(0, timeline_height) }}
{% for lane in lanes %}{% set y = loop.index0 * chart.step %}
<text class="lane-label" x="4" y="{{ y + chart.lane - 4 }}">{{ lane.label }}</text>
<rect class="lane-bg" x="{{ chart.left }}" y="{{ y }}" width="{{ chart.right - chart.left }}" height="{{ chart.lane }}"/>
{% for s in lane.spans %}{% if s.href %}<a href="{{ s.href }}">{% endif -%}
<rect class="{{ s.kind }}" x="{{ s.x }}" y="{{ y }}" width="{{ s.width }}" height="{{ chart.lane }}">
<title>{{ s.title }}</title></rect>{% if s.href %}</a>{% endif %}
{% endfor %}{% endfor %}</svg>

<h2>The agent's speech rate, level and pitch</h2>
{% for panel in panels %}
<svg class="chart" viewBox="0 0 {{ chart.width }} {{ chart.panel }}" role="img" aria-label="{{ panel.title }}">
<text class="panel-title" x="{{ chart.left }}" y="12">{{ panel.title }}</text>
{% for s in panel.spans %}<rect class="{{ s.kind }}" x="{{ s.x }}" y="{{ chart.top }}" width="{{ s.width }}"
 height="{{ chart.plot }}"><title>{{ s.title }}</title></rect>
{% endfor %}
{%- if panel.band %}<rect class="band" x="{{ chart.left }}" y="{{ panel.band[0] }}" width="{{ chart.right - chart.left }}"
 height="{{ panel.band[1] - panel.band[0] }}"/>{% endif %}
{{ time_lines(chart.top, chart.panel) }}
{% for y, label in panel.ticks %}<text class="tick" x="{{ chart.left - 4 }}" y="{{ y + 4 }}" text-anchor="end">{{ label }}</text>
{% endfor %}
{%- for g in panel.guides %}<line class="guide {{ g.kind }}" x1="{{ chart.left }}" x2="{{ chart.right }}"
 y1="{{ g.y }}" y2="{{ g.y }}"><title>{{ g.label }}</title></line>
{% endfor %}
{%- for m in panel.marks %}<g class="mark {{ m.kind }}"><title>{{ m.title }}</title>
<line x1="{{ m.x1 }}" x2="{{ m.x2 }}" y1="{{ m.y }}" y2="{{ m.y }}"/>
{%- if m.whisker %}{% set middle = (m.x1 + m.x2) / 2 %}
<line class="whisker" x1="{{ middle }}" x2="{{ middle }}" y1="{{ m.whisker[0] }}" y2="{{ m.whisker[1] }}"/>{% endif %}</g>
{% endfor %}</svg>
{% else %}{% if prosody_recorded %}<p class="note">No agent utterance has measured prosody (no agent speech,
or a mono recording whose transcript does not say who speaks).</p>
{% else %}<p class="note">This record has no per-utterance prosody (it was audited by a version that did not
store it); audit the call again to see the agent's rate, level and pitch over time.</p>{% endif %}
{% endfor %}

<h2>Findings ({{ findings|length }})</h2>
{% for f in findings %}<article class="finding sev-{{ f.severity }}" id="finding-{{ f.number }}">
<h3>{{ f.rule_id }} <span class="severity">{{ f.severity }}</span>
{%- if f.status == "fail" and points[f.rule_id] is not none %} <span class="points">&minus;{{ "%g"|format(points[f.rule_id]) }} points</span>{% endif %}{% if f.status == "unsure" %}
<span class="unsure" title="the words it rests on were heard with low confidence: listen before deciding">unsure</span>{% endif %}</h3>
<p>{{ f.message }}</p>
{% if f.evidence %}<ul class="evidence">
{% for e in f.evidence %}<li><span class="when">{{ e.start|clock }}-{{ e.end|clock }}</span>
<span class="speaker {{ e.speaker }}">{{ e.speaker }}</span> <q>{{ pieces(e.pieces) }}</q>
{%- if e.utterance is not none %} <a href="#u-{{ e.utterance }}">in transcript</a>{% endif %}
{% if e.clip %}<audio controls preload="none" src="{{ e.clip.href }}" data-start="{{ e.start }}" data-end="{{ e.end }}"
 data-clip-start="{{ e.clip.start }}" data-clip-end="{{ e.clip.end }}"></audio>{% endif %}</li>
{% endfor %}</ul>
{%- else %}<p class="muted">No segment to play: the call lacks something rather than saying something.</p>{% endif %}
{% if f.more %}<p class="muted">And {{ f.more }} more like these, not shown ([report] max_evidence).</p>{% endif %}
</article>
{% else %}<p class="muted">No rule failed.</p>
{% endfor %}
<details><summary>Other results ({{ others|length }}: passed or not measurable)</summary>
<table><thead><tr><th>rule</th><th>status</th><th>message</th><th>where</th></tr></thead><tbody>
{% for r in others %}<tr><td>{{ r.rule_id }}</td><td>{{ r.status }}</td><td>{{ r.message }}</td>
<td>{% for e in r.evidence %}{{ seek(e.start) }} {% endfor %}</td></tr>
{% endfor %}</tbody></table></details>

<h2 id="transcript">Transcript <span class="muted">({{ record.transcript_source }}{% if record.asr_model %}, {{ record.asr_model }}{% endif %})</span></h2>
{% if audio %}<div class="player"><audio id="call-audio" controls preload="metadata" src="{{ audio }}"></audio></div>
{% endif %}
<ol class="transcript">
{% for u in transcript %}<li id="u-{{ u.index }}" title="{{ u.start|clock }}-{{ u.end|clock }}">
<span>{{ seek(u.start) }}</span><span class="speaker {{ u.speaker }}">{{ u.speaker }}</span>
<span class="text">{{ pieces(u.pieces) }}</span></li>
{% else %}<li class="muted">No transcript.</li>
{% endfor %}</ol>
{% if corrections %}<details><summary>Key terms read by sound ({{ corrections|length }})</summary><ul>
{% for c in corrections %}<li><span class="when">{{ c.utterance_start|clock }}</span>
<span class="speaker {{ c.speaker }}">{{ c.speaker }}</span> heard {{ c.heard }}, read as {{ c.term }}</li>
{% endfor %}</ul></details>{% endif %}
{% if dropped %}<details><summary>Text left out of the checks ({{ dropped|length }})</summary><ul>
{% for d in dropped %}<li><span class="when">{{ d.start|clock }}-{{ d.end|clock }}</span>
<span class="speaker {{ d.speaker }}">{{ d.speaker }}</span> {{ d.text }} <span class="muted">({{ d.reason }})</span></li>
{% endfor %}</ul></details>{% endif %}
{% endblock %}
""",
}

CHART = {"width": CHART_WIDTH, "left": CHART_LEFT, "right": CHART_RIGHT, "lane": LANE_HEIGHT,
         "step": LANE_HEIGHT + LANE_GAP, "panel": PANEL_HEIGHT, "top": PLOT_TOP, "plot": PLOT_HEIGHT}


def _source_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(script: str) -> str:
    """Nothing loads or runs but the page's own script and style and the report's own audio."""
    return (f"default-src 'none'; script-src {_source_hash(script)}; style-src {_source_hash(STYLE)}; "
            "media-src 'self'; base-uri 'none'; form-action 'none'")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    environment = Environment(loader=DictLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
    environment.filters["clock"] = _clock
    return environment


# --- building -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildSettings:
    """Everything a call page depends on besides its record; small, so worker processes get it."""

    folder: Path  # OUT/report
    mask_pii: bool
    clip_context_s: float
    bands: Bands
    decode: DecodeConfig  # the recordings the run accepted ([decode] of its config)
    max_evidence: int = 20  # evidence items (and clips) per finding on a page
    weights: tuple[tuple[str, float], ...] = ()  # points each rule takes off when it fails
    scoring: ScoringConfig = ScoringConfig()

    @property
    def shown(self) -> Callable[[str], str]:
        return mask_numbers if self.mask_pii else str

    def key(self) -> bytes:
        """What, beside the record, makes a page differ: options, bands, templates and scripts."""
        return json.dumps({"mask_pii": self.mask_pii, "clip_context_s": self.clip_context_s,
                           "max_evidence": self.max_evidence, "weights": self.weights,
                           "scoring": self.scoring.__dict__,
                           "bands": self.bands.__dict__, "decode": self.decode.__dict__, "templates": TEMPLATES, "style": STYLE,
                           "scripts": [INDEX_SCRIPT, CALL_SCRIPT]}, sort_keys=True).encode()


@dataclass(frozen=True)
class PagePlan:
    record_path: Path
    stem: str
    fingerprint: str  # of the record and the settings: unchanged means the page is up to date
    audio_path: str | None = None  # the recording in clear, from the database, for a masked record

    @property
    def href(self) -> str:
        return f"calls/{quote(self.stem)}.html"


def page_stem(call_id: str, audio_sha256: str, shown: Callable[[str], str]) -> str:
    """The file name of a call's page, clips and audio: its id as shown, safe in paths and URLs.

    When that changes the id (masked digits, odd characters, great length) a short hash keeps
    calls apart. It hashes the audio's SHA-256 with the id, which the report never shows, so a
    masked phone number cannot be recovered by hashing candidate numbers.
    """
    stem = re.sub(r"[^\w.-]", "_", shown(call_id)).lstrip(".")
    if stem != call_id or len(stem.encode()) > 120:
        digest = hashlib.sha256(f"{audio_sha256}/{call_id}".encode()).hexdigest()[:10]
        stem = f"{stem[:40]}-{digest}"
    return stem


def plan_pages(out: Path, summary: dict, settings: BuildSettings,
               audio_paths: dict[str, str] | None = None) -> tuple[dict[str, PagePlan], dict[str, str]]:
    """A page for each call of the run with a readable record; why not, for each call without.

    `audio_paths` gives the recording of each call (by the id the summary names it with) where the
    record names it masked (`[privacy] mask_outputs`)."""
    key, plans, problems = settings.key(), {}, {}
    for row in summary["calls"]:
        path = record_path(out, row["call_id"])
        record = read_record(path)
        if record is None or record.get("call_id") != row["call_id"]:
            problems[row["call_id"]] = f"its record {path.name} is missing or unreadable"
            continue
        stem = page_stem(record["call_id"], record["recording"]["sha256"], settings.shown)
        raw = path.read_bytes()
        audio = (audio_paths or {}).get(row["call_id"]) if record.get("masked") else None
        digest = hashlib.sha256(key + raw + (audio or "").encode()).hexdigest()
        plans[row["call_id"]] = PagePlan(path, stem, digest, audio)
    return plans, problems


def build_call_page(settings: BuildSettings, plan: PagePlan) -> None:
    """Write one call's page, its clips and its audio, decoding the recording once."""
    record = json.loads(plan.record_path.read_text(encoding="utf-8"))
    folder, stem, shown = settings.folder, plan.stem, settings.shown
    shutil.rmtree(folder / "clips" / stem, ignore_errors=True)  # clips of an earlier audit
    audio, problem = load_audio(record, settings.decode, plan.audio_path)
    clips, audio_href = None, ""
    if audio is not None:
        clips = ClipWriter(audio, folder / "clips" / stem, f"../clips/{quote(stem)}",
                           settings.clip_context_s)
        (folder / "audio").mkdir(parents=True, exist_ok=True)
        _write_audio(folder / "audio" / f"{stem}.flac", audio.samples, audio.sample_rate, "FLAC")
        audio_href = f"../audio/{quote(stem)}.flac"
    content = CallContent(record, shown, clips, settings.max_evidence)
    weights = dict(settings.weights)
    axis = TimeAxis(record["recording"]["duration_s"])
    lanes = timeline(record, content.findings, axis)
    html = _environment().get_template("call.html").render(
        csp=content_security_policy(CALL_SCRIPT), style=STYLE, script=CALL_SCRIPT,
        name=shown(record["call_id"]), record=record, facts=_facts(record, shown),
        audio=audio_href, audio_problem=shown(problem), chart=CHART, ticks=axis.ticks(),
        lanes=lanes, timeline_height=len(lanes) * (LANE_HEIGHT + LANE_GAP) + 14,
        panels=prosody_panels(record, settings.bands, axis, shown),
        prosody_recorded=any("prosody" in u for u in record["utterances"]),
        findings=content.findings, others=content.other_results,
        why=why_verdict(record, weights, settings.scoring),
        points={f.rule_id: weights.get(f.rule_id) for f in content.findings},
        transcript=content.transcript(), dropped=content.dropped(), corrections=content.corrections())
    write_text(folder / "calls" / f"{stem}.html", html)


def why_verdict(record: dict, weights: dict[str, float], scoring: ScoringConfig) -> str:
    """The reason for the call's verdict, as `audit.scoring` decided it, in one sentence."""
    failed = [r for r in record["results"] if r["status"] == "fail"]
    critical = [r["rule_id"] for r in failed if r["severity"] == "critical"]
    unsure = [r["rule_id"] for r in record["results"]
              if r["status"] == "unsure" and r["severity"] in scoring.unsure_review]
    if record["verdict"] == "fail" and critical:
        return f"Fail: the critical rule {', '.join(critical)} failed (a critical rule fails the call whatever the score)."
    if record["verdict"] == "fail":
        return (f"Fail: the score {record['score']:g} is under fail_below {scoring.fail_below:g} "
                f"({len(failed)} rules failed).")
    if record["verdict"] == "review":
        reasons = []
        if failed:
            lost = sum(weights.get(r["rule_id"], 0.0) for r in failed)
            reasons.append(f"{len(failed)} rule{'s' if len(failed) > 1 else ''} failed ({lost:g} points off)")
        if unsure:
            reasons.append(f"{', '.join(unsure)} rests on words the ASR doubted: listen before deciding")
        return "Review: " + "; ".join(reasons or ["a finding needs a reviewer"]) + "."
    return "Pass: no rule failed."


def _facts(record: dict, shown: Callable[[str], str]) -> list[tuple[str, str]]:
    recording, meta = record["recording"], record["meta"]
    facts = [("agent", meta.get("agent_id") or "unknown"), ("direction", meta.get("direction") or "-"),
             ("duration", _clock(recording["duration_s"])),
             ("recording", f"{recording['path']} ({recording['format']}, {recording['channels']} ch, "
                           f"{recording['sample_rate']} Hz)")]
    return [(label, shown(str(value))) for label, value in facts]


def build_page_or_reason(settings: BuildSettings, plan: PagePlan) -> str | None:
    """Build one page; None when done, else why not: one odd record costs its page, not the report."""
    try:
        build_call_page(settings, plan)
    except Exception as error:
        if output_full(error):  # every page after it would fail the same way: stop the build
            raise
        log.exception("report: cannot build the page of %s", plan.record_path)
        return f"{type(error).__name__}: {error}"
    return None


def build_pages(plans: list[PagePlan], settings: BuildSettings, workers: int,
                masked_logs: bool = False) -> dict[str, str]:
    """Build pages in `workers` processes (decoding and encoding audio is most of the work), which
    log masked with `masked_logs` (`[privacy] mask_outputs`).

    Returns why each page that could not be built was not, by the call's stem.
    """
    if workers <= 1 or len(plans) <= 1:
        reasons = [build_page_or_reason(settings, plan) for plan in plans]
    else:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial
        from multiprocessing import get_context

        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=worker_logging, initargs=(masked_logs,)) as pool:
            reasons = list(pool.map(partial(build_page_or_reason, settings), plans, chunksize=8))
    return {plan.stem: reason for plan, reason in zip(plans, reasons) if reason}


def write_index(summary: dict, pages: dict[str, str], problems: dict[str, str],
                settings: BuildSettings) -> Path:
    """The run's page; `pages` maps call ids to their pages, `problems` to why they have none."""
    shown = settings.shown
    calls = [_call_row(row, pages.get(row["call_id"]), problems.get(row["call_id"], "no record"), shown)
             for row in summary["calls"]]
    counts = summary["counts"]
    html = _environment().get_template("index.html").render(
        csp=content_security_policy(INDEX_SCRIPT), style=STYLE, script=INDEX_SCRIPT,
        masked=settings.mask_pii,
        run={"run_id": summary.get("run_id"), "files": counts["files"], "elapsed": summary.get("elapsed_s"),
             "asr": summary["asr"]["whisper_model"] or summary["asr"]["mode"],
             "config": shown(", ".join(Path(f).name for f in summary["config"]["files"]))},
        counts=[("audited", counts["audited"], ""), ("pass", counts["pass"], "v-pass"),
                ("review", counts["review"], "v-review"), ("fail", counts["fail"], "v-fail"),
                ("could not be audited", counts["errors"], "")],
        fails_by_rule=sorted(summary["fails_by_rule"].items(), key=lambda kv: (-kv[1], kv[0])),
        fails_by_agent=[_agent_row(agent, row, shown) for agent, row in summary["fails_by_agent"].items()],
        calls=calls, verdicts=[v for v in VERDICT_RANK if any(c["verdict"] == v for c in calls)],
        rules=sorted(summary["fails_by_rule"]), agents=sorted({c["agent"] for c in calls}),
        errors=[{"name": shown(e["call_id"]), "path": shown(e["path"]), "reason": shown(e["reason"])}
                for e in summary["errors"]])
    index = settings.folder / "index.html"
    write_text(index, html)
    return index


def _call_row(row: dict, href: str | None, problem: str, shown: Callable[[str], str]) -> dict:
    verdict = row["verdict"] if row["verdict"] in VERDICT_RANK else "review"
    return {"name": shown(row["call_id"]), "href": href, "problem": shown(problem),
            "agent": shown(row["agent_id"] or "unknown"),
            "verdict": verdict, "rank": VERDICT_RANK[verdict], "score": f"{row['score']:g}",
            "failed_rules": row["failed_rules"], "transcript_source": row["transcript_source"]}


def _agent_row(agent: str, row: dict, shown: Callable[[str], str]) -> dict:
    most = sorted(row["fails"].items(), key=lambda kv: -kv[1])[:3]
    return {"name": shown(agent), "calls": row["calls"], "fails": sum(row["fails"].values()),
            "top": ", ".join(rule for rule, _ in most)}


def remove_stale(folder: Path, previous: dict[str, str], current: dict[str, str]) -> None:
    """Remove the pages, clips and audio of calls that are no longer in the run."""
    for stem in set(previous) - set(current):
        (folder / "calls" / f"{stem}.html").unlink(missing_ok=True)
        (folder / "audio" / f"{stem}.flac").unlink(missing_ok=True)
        shutil.rmtree(folder / "clips" / stem, ignore_errors=True)


def write_report(out: Path, config: Config | None = None, *, mask_pii: bool = True,
                 clip_context_s: float = 1.5, workers: int = 1) -> Path:
    """Build `OUT/report/` from `OUT/summary.json` and `OUT/calls/*.json`; returns index.html.

    `config` gives the bands the prosody pictures draw; by default the config the run audited with
    (summary.json names its files). A call whose record and settings are those of the last build
    is not built again (`report/build.json`), so running this after every resumed run is cheap.

    Raises
    ------
    RunLocked
        When another run or report build holds the output folder.
    ReportError
        When `OUT/summary.json` is missing or unreadable.
    OutputFull
        When the disk fills up (or turns read-only) during the build.
    """
    with OutputLock(out, "audit report"):
        try:
            return _build_report(out, config, mask_pii, clip_context_s, workers)
        except Exception as error:
            if not output_full(error):
                raise
            raise OutputFull(f"the report stopped: {out} cannot take more writes ({error}); free "
                             "space and run `audit report` again") from None


def _build_report(out: Path, config: Config | None, mask_pii: bool, clip_context_s: float,
                  workers: int) -> Path:
    summary_path = out / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"{summary_path} cannot be read ({error}); `audit run ... --out {out}` "
                          "writes it again") from None
    config = config or run_config(summary)
    settings = BuildSettings(out / "report", mask_pii, clip_context_s, Bands.of(config), config.decode,
                             config.report.max_evidence, tuple(sorted(config.weights.items())), config.scoring)
    # the records are in the form the run wrote them: its summary says whether they are masked
    masked = bool((summary.get("privacy") or {}).get("mask_outputs"))
    audio_paths = restore_run_records(out, summary, masked)
    manifest = settings.folder / MANIFEST_NAME
    previous = _previous_build(manifest)
    plans, unreadable = plan_pages(out, summary, settings, audio_paths)
    todo = [p for p in plans.values() if previous.get(p.stem) != p.fingerprint
            or not (settings.folder / "calls" / f"{p.stem}.html").exists()]
    failed = build_pages(todo, settings, workers, masked)
    built = {call_id: plan for call_id, plan in plans.items() if plan.stem not in failed}
    problems = unreadable | {call_id: failed[plan.stem] for call_id, plan in plans.items()
                             if plan.stem in failed}
    index = write_index(summary, {call_id: plan.href for call_id, plan in built.items()}, problems, settings)
    current = {plan.stem: plan.fingerprint for plan in built.values()}
    remove_stale(settings.folder, previous, current)
    write_text(manifest, json.dumps(current, indent=0, sort_keys=True))
    log.info("report: %d call pages, %d built now, %d could not be built: %s", len(plans), len(todo),
             len(failed) + len(unreadable), index)
    return index


def restore_run_records(out: Path, summary: dict, masked: bool) -> dict[str, str]:
    """Write again from the results database, when there is one, the run's records that are
    missing or corrupt, in the form the run wrote them (masked or not); returns each call's
    recording path in clear by the id the summary names it with (none without a database)."""
    if not (out / DB_NAME).exists():
        return {}
    db = ResultsDB(out)
    try:
        privacy = db.privacy(masked)
        paths = db.call_paths()
        clear = {privacy.id(call_id): call_id for call_id in paths}
        wanted = [clear[row["call_id"]] for row in summary["calls"] if row["call_id"] in clear]
        db.restore_records(out, wanted, privacy)
    finally:
        db.close()
    return {shown: paths[call_id] for shown, call_id in clear.items()}


def _previous_build(manifest: Path) -> dict[str, str]:
    """The last build's page fingerprints; empty (everything is built again) when unreadable."""
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("report: %s is unreadable (%s); every page is built again", manifest, error)
        return {}
    return previous if isinstance(previous, dict) else {}
