"""The call page's pictures as inline SVG data: a timeline of ringing, speech, overlaps, holds, dead
air and one lane per finding, and the agent's rate, level and pitch per utterance against the
configured bands. Labels are in Chinese, as the page is.

Legible at any width: a chart is drawn without a viewBox, so nothing in it is scaled. Time runs
along x as a percentage of the plot's width (the plot stretches with the page), heights are in CSS
pixels, and the labels sit in a column of their own beside the plot (`LABEL_WIDTH`), at the page's
own font size (12 px), from a 420-px phone to a wide screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from audit.config import Config
from audit.present.report.views import ResultView, clock, speaker_class


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


LABEL_WIDTH = 92.0  # CSS px beside each plot: a lane label of 7 characters at 12 px
LANE_HEIGHT = 16.0  # CSS px
LANE_GAP = 6.0
AXIS_HEIGHT = 20.0  # below a plot: the time ticks' labels
PLOT_TOP = 8.0  # room above a panel's plot for its top value label
PLOT_HEIGHT = 86.0
PANEL_HEIGHT = PLOT_TOP + PLOT_HEIGHT + AXIS_HEIGHT + 4.0
MIN_SPAN_PERCENT = 0.3  # of the plot's width: an instant stays visible
TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


@dataclass(frozen=True)
class Tick:
    x: float  # percent of the plot's width
    label: str
    minor: bool  # every other one: its label is left out on a narrow screen


@dataclass(frozen=True)
class TimeAxis:
    """Call time in seconds -> x in percent of a plot's width, shared by every picture of a call."""

    duration_s: float

    def x(self, seconds: float) -> float:
        share = min(max(seconds, 0.0), self.duration_s) / max(self.duration_s, 1e-6)
        return round(100.0 * share, 2)

    def width(self, start: float, end: float) -> float:
        return max(round(self.x(end) - self.x(start), 2), MIN_SPAN_PERCENT)

    def ticks(self) -> list[Tick]:
        """At most 12 (6 labelled on a narrow screen), on round steps of time."""
        step = next((s for s in TICK_STEPS_S if self.duration_s / s <= 12), TICK_STEPS_S[-1])
        return [Tick(self.x(t), clock(t, decimals=False), number % 2 == 1)
                for number, t in enumerate(np.arange(0.0, self.duration_s + 1e-9, step))]


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


def timeline(record: dict, findings: list[ResultView], axis: TimeAxis, speakers: dict[str, str]) -> list[Lane]:
    """Ringing, each channel's speech, overlaps, holds and dead air, and each finding in a lane of
    its own, so that no finding hides another."""

    def spans(intervals, kind: str, what: str) -> list[Span]:
        return [Span(axis.x(start), axis.width(start, end), kind, f"{what} {clock(start)}-{clock(end)}")
                for start, end in intervals]

    lanes = [_ringing_lane(record["metrics"], axis)]
    channels = [(c["speaker"], c["intervals"]) for c in record["speech"]]
    for speaker, intervals in channels:
        name = speakers.get(speaker, speakers["unknown"])
        lanes.append(Lane(name, spans(intervals, speaker_class(speaker), name)))
    if len(channels) == 2:
        both = overlaps(channels[0][1], channels[1][1])
        lanes.append(Lane("同时说话", spans(both, "overlap", "双方同时说话")))
    # the measured holds and silences (records before they were measures show none)
    metrics = record["metrics"]
    silences = (spans(metrics.get("hold_intervals") or [], "hold", "等待")
                + spans(metrics.get("silence_intervals") or [], "dead-air", "静音"))
    lanes.append(Lane("等待 / 静音", silences))
    for f in findings:
        if f.absent:  # where the missing words were due, not the correct speech beside them
            start, end = f.window or (0.0, 0.0)
            spans_of = [Span(axis.x(start), axis.width(start, end), "due",
                             f"{f.rule.name}:应在 {clock(start)}-{clock(end)} 说到", f"#finding-{f.number}")] if f.window else []
        else:
            spans_of = [Span(axis.x(e.start), axis.width(e.start, e.end), "flag", f"{f.rule.name} {clock(e.start)}",
                             f"#finding-{f.number}") for e in f.evidence]
        lanes.append(Lane(_short(f.rule.name), spans_of))
    return lanes


def _short(name: str, chars: int = 7) -> str:
    """A lane label that fits beside the chart."""
    return name if len(name) <= chars else name[:chars - 1] + "…"


def _ringing_lane(metrics: dict, axis: TimeAxis) -> Lane:
    """From the first ring to the answer, where the recording holds it."""
    ring_start, answer = metrics.get("ring_start_s"), metrics.get("answer_s")
    if ring_start is None or answer is None or answer <= max(ring_start, 0.0):
        return Lane("振铃", [])
    before = f",录音开始前 {-ring_start:g} 秒已开始" if ring_start < 0 else ""
    title = f"振铃 {metrics.get('ring_count')} 声,{clock(answer)} 接听{before}"
    return Lane("振铃", [Span(axis.x(ring_start), axis.width(ring_start, answer), "ring", title)])


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
    metrics = record["metrics"]
    audio = metrics.get("agent_rate_source") == "audio"
    return [_rate_panel(measured, "rate_audio_cpm" if audio else "rate_cpm",
                        metrics.get("agent_rate_audio_cpm" if audio else "agent_rate_cpm"), bands, axis, shown),
            _level_panel(measured, metrics.get("agent_level_baseline_dbfs"),
                         metrics.get("agent_raised_intervals") or [], bands, axis, shown),
            _pitch_panel(measured, record["metrics"].get("agent_pitch_median_hz"), bands, axis, shown)]


def _rate_panel(measured: list[dict], key: str, average: float | None, bands: Bands, axis: TimeAxis,
                shown: Callable[[str], str]) -> Panel:
    values = [u["prosody"].get(key) for u in measured]
    low, high = bands.utterance_rate_cpm
    call_low, call_high = bands.rate_cpm
    scale = Scale(0.0, max([high * 1.25, *[v * 1.1 for v in values if v is not None]]))
    guides = [Guide(scale.y(call_low), f"整通最低 {call_low:g}", "limit"),
              Guide(scale.y(call_high), f"整通最高 {call_high:g}", "limit")]
    legend = (f"语速(字/分)。绿色带:单句的合理范围 {low:g}-{high:g},超出的语句为红色虚线段;"
              f"红色长虚线:整通的合理范围 {call_low:g}-{call_high:g}")
    if average is not None:
        guides.append(Guide(scale.y(average), f"整通平均 {average:g}", "average"))
        legend += f";灰色点线:本通平均 {average:g}"
    marks = [_mark(u, v, scale, axis, "out" if not low <= v <= high else "ok", f"{v:.0f} 字/分", shown)
             for u, v in zip(measured, values) if v is not None]
    return Panel(legend, (scale.y(high), scale.y(low)), guides, _value_ticks(scale, 100.0), marks, [])


def _level_panel(measured: list[dict], baseline: float | None, raised: list[list[float]], bands: Bands,
                 axis: TimeAxis, shown: Callable[[str], str]) -> Panel:
    """The agent's level per utterance (dBFS) against the quiet limit and the agent's own usual
    level; `raised` holds the raised-voice stretches as [start s, end s, rise dB]."""
    values = [u["prosody"].get("level_dbfs") for u in measured]
    scale = Scale(min([-50.0, *[v - 3.0 for v in values if v is not None]]), 0.0)
    quiet = bands.quiet_level_dbfs
    loud = baseline + bands.raised_level_db if baseline is not None else None
    guides = [Guide(scale.y(quiet), f"低于 {quiet:g} 过轻", "limit")]
    legend = f"音量(dBFS)。红色长虚线:低于 {quiet:g} 过轻"
    if loud is not None:
        guides += [Guide(scale.y(baseline), f"坐席平常音量 {baseline:g}", "average"),
                   Guide(scale.y(loud), f"高于 {loud:g} 为提高音量", "limit")]
        legend += (f",高于 {loud:g} 为提高音量(比坐席平常的 {baseline:g} 高 "
                   f"{bands.raised_level_db:g} dB,灰色点线);粉色:提高音量的片段")
    legend += ";超出的语句为红色虚线段"
    marks = [_mark(u, v, scale, axis, "out" if v < quiet or (loud is not None and v >= loud) else "ok",
                   f"{v:.1f} dBFS", shown)
             for u, v in zip(measured, values) if v is not None]
    episodes = [Span(axis.x(start), axis.width(start, end), "raised",
                     f"提高音量 {clock(start)}-{clock(end)},+{rise:g} dB")
                for start, end, rise in raised]
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
        label = f"{hz:.0f} Hz" + (f",音域 {spread:.1f} 半音" if spread is not None else "")
        label += ",语调平淡" if flat else ""
        marks.append(_mark(u, hz, scale, axis, "out" if flat else "ok", label, shown, whisker))
    legend = (f"音高(Hz,对数刻度)。横条:中位数,竖线:5-95 % 范围;红色虚线段:语调平淡,音域不超过 "
              f"{bands.monotone_max_range_st:g} 个半音")
    guides = []
    if median:
        guides.append(Guide(scale.y(median), f"坐席中位数 {median:g} Hz", "average"))
        legend += f";灰色点线:坐席中位数 {median:g}"
    low, high = bands.pitch_hz
    ticks = [(scale.y(hz), f"{hz:g}") for hz in (60, 100, 200, 400) if low <= hz <= high]
    return Panel(legend, None, guides, ticks, marks, [])


def _mark(utterance: dict, value: float, scale: Scale, axis: TimeAxis, kind: str, label: str,
          shown: Callable[[str], str], whisker: tuple[float, float] | None = None) -> Mark:
    title = f"{clock(utterance['start'])} {label}: {shown(utterance['text'])}"
    return Mark(axis.x(utterance["start"]), axis.x(utterance["end"]), scale.y(value), kind, title, whisker)


def _value_ticks(scale: Scale, step: float) -> list[tuple[float, str]]:
    first = math.ceil(scale.low / step) * step
    return [(scale.y(v), f"{v:g}") for v in np.arange(first, scale.high + 1e-9, step)]
