"""Prosody measures against known values, and the five prosody rules on the bundled calls.

Known values come from real read speech with its transcript and reference speaking time
(fixtures/real-dev, the part held aside from calibration and the whole set), real speech
(fixtures/real), espeak-ng speech at three rates (fixtures/prosody), synthetic tones and glides,
scaled copies of real speech, and the ground truth of the sample calls (fixtures/calls/truth.json).
"""

import csv
import dataclasses
import io
import json
from itertools import pairwise
from dataclasses import fields, replace

import numpy as np
import pytest
import soundfile
import soxr
from scipy.signal import butter, sosfiltfilt

from audit.measure import decode as decoding
from audit.measure import sidecar
from audit.judge.checks import CallContext
from audit.judge.checks import prosody as rules
from audit.config import DEFAULT_CONFIG, ConfigError, build_section, read_toml
from audit.configload import load_config
from audit.config import ProsodyConfig
from audit.measure.prosody import measure_prosody
from audit.records import (CallMeta, Channel, ChannelSpeech, Interval, RecordingInfo, Transcript,
                           Utterance)
from audit.measure.speech import assign_channels, detect_speech, find_speech
from conftest import FIXTURE_CALLS, REAL_SPEECH, ROOT

RATE = 16000
REAL_DEV = ROOT / "fixtures" / "real-dev"
FRAGMENT = read_toml(DEFAULT_CONFIG)  # the shipped defaults
CONFIG = load_config()
SETTINGS = CONFIG.prosody
RULES = {
    "prosody.rate": (rules.rate, rules.RateParams),
    "prosody.rate_vs_customer": (rules.rate_vs_customer, rules.RateVsCustomerParams),
    "prosody.raised_voice": (rules.raised_voice, rules.RaisedVoiceParams),
    "prosody.harsh_jump": (rules.harsh_jump, rules.HarshJumpParams),
    "prosody.monotone": (rules.monotone, rules.MonotoneParams),
}
CALLS = ["compliant", "late_answer", "missing_agent_id", "fast_agent", "raised_voice",
         "unannounced_hold", "customer_cut_off"]


def judge(rule_id: str, call: CallContext):
    function, _ = RULES[rule_id]
    return function(call, CONFIG.rules[rule_id].params)


with open(REAL_DEV / "manifest.tsv", encoding="utf-8") as manifest:
    DEV_CLIPS = {row["file"]: (row["transcript"], float(row["talk_s"]))
                 for row in csv.DictReader(manifest, delimiter="\t")}
with open(REAL_DEV / "split.tsv", encoding="utf-8") as split_file:
    DEV_PART = {row["file"]: row["part"] for row in csv.DictReader(
        (line for line in split_file if not line.startswith("#")), delimiter="\t")}
HELD_ASIDE = [name for name, part in DEV_PART.items() if part == "held-aside"]
BANDS = ("as recorded", "telephone")


def telephone(speech: np.ndarray) -> np.ndarray:
    """What a phone line does to 16 kHz speech: 8 kHz, 300-3400 Hz, G.711 mu-law, back to 16 kHz."""
    narrow = soxr.resample(speech, RATE, 8000)
    narrow = sosfiltfilt(butter(4, (300, 3400), btype="bandpass", fs=8000, output="sos"), narrow)
    encoded = io.BytesIO()
    soundfile.write(encoded, np.clip(narrow, -1, 1), 8000, format="WAV", subtype="ULAW")
    encoded.seek(0)
    return soxr.resample(soundfile.read(encoded, dtype="float32")[0], 8000, RATE).astype(np.float32)


def synthetic(samples: np.ndarray, spans, texts=None) -> CallContext:
    """A one-channel agent recording whose speech is exactly at `spans`, one utterance per span."""
    texts = texts or [f"第{i}句话" for i in range(len(spans))]
    speech = (ChannelSpeech(Channel(0, "agent"), tuple(Interval(a, b) for a, b in spans)),)
    transcript = Transcript("sidecar", tuple(Utterance("agent", a, b, t) for (a, b), t in zip(spans, texts)))
    info = RecordingInfo(path=FIXTURE_CALLS / "synthetic.wav", duration_s=samples.size / RATE,
                         sample_rate=RATE, channels=1, sha256="0" * 64, format="WAV/FLOAT")
    prosody = measure_prosody(samples[None, :].astype(np.float32), speech, transcript, SETTINGS)
    return CallContext(recording=info, meta=CallMeta(), speech=speech, transcript=transcript,
                       answer_s=0.0, answer_source="recording_start", company_names=("星河通信",),
                       prosody=prosody)


def dbfs(level: float, signal: np.ndarray) -> np.ndarray:
    return signal * 10 ** (level / 20) / np.sqrt(np.mean(signal**2))


def harmonics(f0_hz: np.ndarray) -> np.ndarray:
    """A voice-like tone following `f0_hz` per sample: harmonics 2 and up to 3.4 kHz, so it lacks
    its fundamental as telephone speech does."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / RATE
    top = int(3400 / f0_hz.max())
    return sum(np.sin(k * phase) / k for k in range(2, top + 1))


# --- speech rate ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_dev():
    """Every fixtures/real-dev clip, as recorded and through a phone line, as one utterance over the
    whole clip: {(file, band): (reference 字/分 from talk_s, speaker summary, utterance measures)}."""
    measured = {}
    for name, (text, talk_s) in DEV_CLIPS.items():
        recorded, rate = soundfile.read(REAL_DEV / name, dtype="float32")
        assert rate == RATE
        for band in BANDS:
            speech = recorded if band == "as recorded" else telephone(recorded)
            channel = (ChannelSpeech(Channel(0, "agent"), detect_speech(speech, CONFIG.vad)),)
            transcript = Transcript("sidecar", (Utterance("agent", 0.0, speech.size / RATE, text),))
            prosody = measure_prosody(speech[None, :], channel, transcript, SETTINGS)
            measured[name, band] = (len(text) / talk_s * 60, prosody.speaker("agent"), prosody.utterances[0])
    return measured


# Per held-aside clip (never tuned to): the worst of them was 17 % from the transcript and 31 % from
# the audio when the calibration was frozen (bench/prosody_bench.py prints them all).
@pytest.mark.parametrize("band", BANDS)
@pytest.mark.parametrize("name", HELD_ASIDE)
def test_rates_on_held_aside_real_speech(real_dev, name, band):
    truth_cpm, speaker, _ = real_dev[name, band]
    assert speaker.rate_cpm == pytest.approx(truth_cpm, rel=0.2)
    assert speaker.rate_audio_cpm == pytest.approx(truth_cpm, rel=0.35)


@pytest.mark.parametrize("band", BANDS)
@pytest.mark.parametrize("part", ["tuning", "held-aside"])
def test_median_rate_error_on_real_speech(real_dev, part, band):
    """The issue's bounds: median error at most 10 % from the transcript, 15 % from the audio alone."""
    rows = [real_dev[name, band] for name, clip_part in DEV_PART.items() if clip_part == part]
    transcript = [abs(speaker.rate_cpm / truth - 1) for truth, speaker, _ in rows]
    audio = [abs(speaker.rate_audio_cpm / truth - 1) for truth, speaker, _ in rows]
    assert np.median(transcript) <= 0.10 and np.median(audio) <= 0.15, (transcript, audio)


def test_real_read_speech_is_not_monotone_and_keeps_its_pitch_through_a_phone_line(real_dev):
    """No real read clip is flat; the phone band (no fundamental) leaves the 5-95 % range under an
    octave (it reached 23 st before octave errors were judged against the speaker's median)."""
    for name in DEV_CLIPS:
        recorded, phone = real_dev[name, "as recorded"][2], real_dev[name, "telephone"][2]
        for measured in (recorded, phone):
            assert measured.monotone is not True and 3.0 < measured.pitch_range_st < 12.0, (name, measured)
    shifts = [abs(12 * np.log2(real_dev[name, "telephone"][2].pitch_median_hz
                               / real_dev[name, "as recorded"][2].pitch_median_hz)) for name in DEV_CLIPS]
    assert np.median(shifts) < 1.0 and sorted(shifts)[-2] < 2.0  # one short clip is an octave up


def test_speaking_time_leaves_out_quiet_edges_inside_the_vad_interval():
    """A VAD interval 0.4 s wider on each side than the voice, over line noise at -60 dBFS."""
    rng = np.random.default_rng(1)
    voice = dbfs(-20, harmonics(np.full(RATE * 2, 150.0)))
    signal = np.concatenate((np.zeros(RATE), voice, np.zeros(RATE)))
    signal += dbfs(-60, rng.standard_normal(signal.size))
    call = synthetic(signal, [(0.6, 3.4)], ["一二三四五六七八九十"])
    measured = call.prosody.utterances[0]
    # the 35 ms smoothing spreads a hard onset and offset by 50 ms each; the VAD interval is 2.8 s
    assert measured.spoken_s == pytest.approx(2.1, abs=0.03)
    assert measured.rate_cpm == pytest.approx(10 / 2.1 * 60, rel=0.02)


@pytest.fixture(scope="module")
def espeak_rates():
    document = json.loads((ROOT / "fixtures" / "prosody" / "rates.json").read_text(encoding="utf-8"))
    measured = []
    for entry in document["recordings"]:
        narrow, rate = soundfile.read(ROOT / "fixtures" / "prosody" / entry["file"], dtype="float32")
        samples = soxr.resample(narrow, rate, RATE).astype(np.float32)
        speech = (ChannelSpeech(Channel(0, "agent"), detect_speech(samples, CONFIG.vad)),)
        transcript = Transcript("sidecar", tuple(Utterance("agent", u["start"], u["end"], u["text"])
                                                 for u in entry["utterances"]))
        agent = measure_prosody(samples[None, :], speech, transcript, SETTINGS).speaker("agent")
        measured.append((entry["rate_cpm"], agent.rate_cpm, agent.rate_audio_cpm))
    return measured


@pytest.mark.parametrize("estimate", [1, 2], ids=["transcript", "audio"])
def test_espeak_rates_come_out_in_order_and_apart(espeak_rates, estimate):
    truth = [row[0] for row in espeak_rates]
    found = [row[estimate] for row in espeak_rates]
    assert truth == sorted(truth) and found == sorted(found)
    for true_rate, rate in zip(truth, found):  # within 10 %, while the rates are 55 % apart
        assert rate == pytest.approx(true_rate, rel=0.10)
    for (slow_true, fast_true), (slow, fast) in zip(pairwise(truth), pairwise(found)):
        assert fast / slow > (fast_true / slow_true) ** 0.5


def test_transcript_rate_leaves_out_long_pauses_and_short_utterances():
    voice = dbfs(-20, harmonics(np.full(RATE * 2, 150.0)))
    signal = np.concatenate((voice, np.zeros(2 * RATE), voice, np.zeros(RATE // 2), voice[: RATE // 2]))
    speech = (ChannelSpeech(Channel(0, "agent"), (Interval(0.0, 2.0), Interval(4.0, 6.0),
                                                   Interval(6.5, 7.0))),)
    utterances = (Utterance("agent", 0.0, 6.0, "一二三四五,六七八九十。一二三四五,六七八九十。"),
                  Utterance("agent", 6.5, 7.0, "好的。"))
    measured = measure_prosody(signal[None, :].astype(np.float32), speech,
                               Transcript("sidecar", utterances), SETTINGS)
    long, short = measured.utterances
    assert long.spoken_s == pytest.approx(4.0, abs=0.02)  # the 2 s pause in the middle is left out
    assert long.rate_cpm == pytest.approx(20 / 4.0 * 60, rel=0.01)
    assert short.rate_cpm is None and short.chars == 2  # under rate_min_chars


def test_syllable_nuclei_are_voiced_intensity_peaks():
    """Twelve 'syllables' of a voice-like tone are twelve nuclei; the same bursts of noise none."""
    burst = int(0.15 * RATE)
    envelope = np.sin(np.linspace(0, np.pi, burst)) ** 2
    gap = np.zeros(int(0.1 * RATE))
    rng = np.random.default_rng(0)
    voiced = harmonics(np.full(burst, 180.0)) * envelope
    noise = sosfiltfilt(butter(4, (300, 3400), btype="bandpass", fs=RATE, output="sos"),
                        rng.standard_normal(burst)) * envelope
    for unit, expected in ((voiced, 12), (noise, 0)):
        signal = np.concatenate([gap] + [np.concatenate((dbfs(-20, unit), gap)) for _ in range(12)])
        call = synthetic(signal, [(0.0, signal.size / RATE)], ["一二三四五六七八九十一二"])
        measured = call.prosody.utterances[0]
        assert round(measured.rate_audio_cpm * measured.spoken_s / 60) == expected


# --- level, pitch, monotone -------------------------------------------------------------------------


def test_level_of_tones_is_their_rms_in_dbfs():
    t = np.arange(RATE * 4) / RATE
    loud = np.sqrt(2) * 10 ** (-23 / 20) * np.sin(2 * np.pi * 300 * t)  # RMS -23 dBFS
    soft = np.sqrt(2) * 10 ** (-35 / 20) * np.sin(2 * np.pi * 300 * t)
    signal = np.concatenate((np.zeros(RATE), loud, np.zeros(RATE), soft, np.zeros(RATE)))
    first, second = synthetic(signal, [(1.0, 5.0), (6.0, 10.0)]).prosody.utterances
    assert first.level_dbfs == pytest.approx(-23.0, abs=0.05) and not first.quiet
    assert second.level_dbfs == pytest.approx(-35.0, abs=0.05) and second.quiet


@pytest.mark.parametrize("f0", [85.0, 140.0, 230.0, 380.0])
def test_pitch_of_a_tone_without_its_fundamental(f0):
    voice = dbfs(-20, harmonics(np.full(RATE * 3, f0)))
    measured = synthetic(voice, [(0.0, 3.0)]).prosody.utterances[0]
    assert measured.pitch_median_hz == pytest.approx(f0, rel=0.01)
    assert measured.pitch_range_st < 0.2
    assert measured.voiced_s > 2.8
    assert measured.monotone is True


def test_pitch_range_of_a_glide():
    seconds, low, high = 3.0, 120.0, 240.0  # one octave, even in semitones over time
    f0 = low * (high / low) ** (np.arange(int(RATE * seconds)) / (RATE * seconds))
    measured = synthetic(dbfs(-20, harmonics(f0)), [(0.0, seconds)]).prosody.utterances[0]
    assert measured.pitch_range_st == pytest.approx(12 * 0.9, abs=0.4)  # 5th to 95th percentile
    assert measured.pitch_median_hz == pytest.approx(np.sqrt(low * high), rel=0.02)
    assert measured.monotone is False


@pytest.mark.parametrize("speaker, f0", [("agent", 180), ("customer", 80)])
def test_pitch_range_of_speech_is_not_inflated_by_octave_errors(calls, speaker, f0):
    """The espeak-ng voices' tones span 4-5 semitones (librosa's pyin, smoothed, agrees); halving
    or doubling on a few frames of the phone-band voice would give over 12."""
    voiced = [u for u in calls["compliant"].prosody.utterances if u.pitch_range_st is not None
              and u.speaker == speaker]
    assert voiced and all(3.0 < u.pitch_range_st < 7.0 for u in voiced)
    assert all(abs(12 * np.log2(u.pitch_median_hz / f0)) < 2 for u in voiced)  # pyin: 182, 80 Hz


def test_scaled_real_speech_keeps_pitch_and_syllables_and_moves_level_by_the_gain():
    speech, _ = soundfile.read(REAL_SPEECH / "BAC009S0764W0121.wav", dtype="float32")
    found = detect_speech(speech, CONFIG.vad)
    spans = [(found[0].start, found[-1].end)]
    plain, softer = (synthetic(speech * gain, spans).prosody.utterances[0]
                     for gain in (1.0, 10 ** (-9 / 20)))
    assert softer.level_dbfs - plain.level_dbfs == pytest.approx(-9.0, abs=0.01)
    assert softer.pitch_median_hz == pytest.approx(plain.pitch_median_hz, rel=0.01)
    assert softer.rate_audio_cpm == plain.rate_audio_cpm
    assert 150 < plain.pitch_median_hz < 300  # a woman's voice (the clip is AISHELL speaker S0764)


def test_monotone_rule_on_flat_and_moving_pitch():
    seconds = 3.0
    flat = harmonics(np.full(int(RATE * seconds), 200.0))
    glide = harmonics(200.0 * 2 ** (np.sin(np.linspace(0, 6 * np.pi, int(RATE * seconds))) / 3))
    gap = np.zeros(RATE)
    for pieces, expected in (((flat, flat, glide), "fail"), ((glide, glide, flat), "pass")):
        signal = np.concatenate([np.concatenate((gap, dbfs(-20, p))) for p in pieces])
        spans = [(1.0 + i * (seconds + 1.0), (i + 1) * (seconds + 1.0)) for i in range(3)]
        call = synthetic(signal, spans)
        flat_starts = [a for (a, _), piece in zip(spans, pieces) if piece is flat]
        assert [u.start for u in call.prosody.monotone] == flat_starts
        outcome = judge("prosody.monotone", call)
        assert outcome.status == expected, outcome
        if expected == "fail":
            assert [e.start for e in outcome.evidence] == flat_starts


# --- raised voice and jumps on scaled copies of real speech -------------------------------------------


def test_raised_voice_and_jumps_found_on_the_louder_copies():
    speech, _ = soundfile.read(REAL_SPEECH / "BAC009S0764W0121.wav", dtype="float32")
    found = detect_speech(speech, CONFIG.vad)
    clip = speech[int(found[0].start * RATE): int(found[-1].end * RATE)]
    gap = np.zeros(RATE // 2, dtype=np.float32)
    levels = [-26, -26, -14, -26, -14, -26, -26, -26]
    pieces, spans, cursor = [], [], 0.5
    for level in levels:
        pieces += [gap, dbfs(level, clip)]
        spans.append((cursor, cursor + clip.size / RATE))
        cursor += clip.size / RATE + 0.5
    measured = synthetic(np.concatenate(pieces + [gap]), spans).prosody
    loud = [i for i, level in enumerate(levels) if level == -14]
    assert [e.utterances for e in measured.raised] == [(i,) for i in loud]
    for episode, index in zip(measured.raised, loud):
        assert episode.rise_db == pytest.approx(12.0, abs=1.0)
        assert episode.start == pytest.approx(spans[index][0], abs=0.6)
        assert episode.end == pytest.approx(spans[index][1], abs=0.6)
    assert [j.after for j in measured.jumps] == loud
    assert all(j.level_rise_db == pytest.approx(12.0, abs=0.2) for j in measured.jumps)
    assert measured.metrics()["raised_voice_count"] == 2
    assert [e.kind for e in measured.events()] == ["raised_voice", "raised_voice"]


# --- the bundled calls ---------------------------------------------------------------------------------


def _audit(path, to_mono=False, transcript=None) -> CallContext:
    recording = decoding.decode(path, CONFIG.decode)
    meta = sidecar.read_meta(path)
    audio = decoding.resample(recording, RATE)
    if to_mono:
        audio = audio.mean(axis=0, keepdims=True)
        recording = replace(recording, info=replace(recording.info, channels=1))
    speech = find_speech(audio, assign_channels(audio.shape[0], CONFIG.channels), CONFIG.vad)
    transcript = transcript or sidecar.read_transcript(path)
    prosody = measure_prosody(audio, speech, transcript, SETTINGS)
    return CallContext(recording=recording.info, meta=meta, speech=speech, transcript=transcript,
                       answer_s=meta.answer_at or 0.0, answer_source="metadata",
                       company_names=("星河通信",), prosody=prosody)


@pytest.fixture(scope="module")
def calls(truth):
    return {name: _audit(FIXTURE_CALLS / truth["calls"][name]["file"]) for name in CALLS}


@pytest.mark.parametrize("name", CALLS)
def test_rates_and_levels_match_ground_truth(calls, truth, name):
    facts = truth["calls"][name]
    prosody = calls[name].prosody
    metrics = prosody.metrics()
    assert metrics["agent_rate_cpm"] == pytest.approx(facts["agent"]["rate_cpm"], rel=0.03)
    assert metrics["agent_rate_audio_cpm"] == pytest.approx(facts["agent"]["rate_cpm"], rel=0.15)
    assert metrics["customer_rate_cpm"] == pytest.approx(facts["customer"]["rate_cpm"], rel=0.05)
    for measured, expected in zip(prosody.utterances, facts["utterances"]):
        assert measured.start == expected["start"] and measured.chars == expected["chars"]
        if expected["source"]["kind"] == "espeak-ng":
            assert measured.level_dbfs == pytest.approx(expected["level_dbfs"], abs=0.5)
        else:  # truth is RMS over the whole extent; real speech has silences inside it
            assert 0 <= measured.level_dbfs - expected["level_dbfs"] < 1.5
    agent = [(u["end"] - u["start"], 10 ** (u["level_dbfs"] / 10))
             for u in facts["utterances"] if u["speaker"] == "agent"]
    seconds, power = np.array(agent).T
    assert metrics["agent_level_dbfs"] == pytest.approx(10 * np.log10(power @ seconds / seconds.sum()),
                                                        abs=0.5)


def test_metric_names_are_the_issues(calls):
    assert set(calls["compliant"].prosody.metrics()) == {
        "agent_rate_cpm", "agent_rate_audio_cpm", "customer_rate_cpm", "customer_rate_audio_cpm",
        "agent_level_dbfs", "agent_level_spread_db", "agent_pitch_median_hz", "agent_pitch_range_st",
        "agent_pitch_spread_st", "agent_quiet_share", "agent_long_pauses", "agent_long_pause_s",
        "agent_response_median_s", "agent_response_max_s", "raised_voice_count", "agitation_moments",
        "agent_level_baseline_dbfs", "agent_raised_intervals", "agent_rate_source"}


@pytest.mark.parametrize("name", CALLS)
def test_each_call_fails_only_the_rules_it_was_built_to_break(calls, truth, name):
    findings = set(truth["calls"][name]["expected"]["findings"])
    expected = ({"prosody.rate"} if "fast_speech" in findings else set()) | (
        {"prosody.raised_voice", "prosody.harsh_jump"} if "raised_voice" in findings else set())
    outcomes = {rule_id: judge(rule_id, calls[name]) for rule_id in RULES}
    assert {rule_id for rule_id, o in outcomes.items() if o.status == "fail"} == expected, outcomes
    assert all(o.status == "pass" for rule_id, o in outcomes.items() if rule_id not in expected)


def test_fast_agent_flagged_with_the_fastest_utterances(calls, truth):
    outcome = judge("prosody.rate", calls["fast_agent"])
    assert outcome.status == "fail" and "快于300字/分" in outcome.message
    assert outcome.details["rate_cpm"] == pytest.approx(truth["calls"]["fast_agent"]["agent"]["rate_cpm"],
                                                        rel=0.03)
    agent_turns = {u["text"]: u["rate_cpm"] for u in truth["calls"]["fast_agent"]["utterances"]
                   if u["speaker"] == "agent"}
    assert len(outcome.evidence) == 3 and {e.text for e in outcome.evidence} <= set(agent_turns)
    assert all(agent_turns[e.text] > 460 for e in outcome.evidence)


def test_raised_voice_flagged_on_the_right_utterances(calls, truth):
    facts = truth["calls"]["raised_voice"]
    outcome = judge("prosody.raised_voice", calls["raised_voice"])
    assert outcome.status == "fail"
    raised = [facts["utterances"][i] for i in facts["expected"]["raised_utterances"]]
    assert [(e.start, e.text, e.speaker) for e in outcome.evidence] == [
        (u["start"], u["text"], "agent") for u in raised]
    assert all(e["rise_db"] == pytest.approx(12.0, abs=1.5) for e in outcome.details["episodes"])
    jump = judge("prosody.harsh_jump", calls["raised_voice"])
    assert jump.status == "fail" and jump.evidence[0].text == raised[0]["text"]


def test_agitation_marks_the_angry_customer_turns(calls, truth):
    for name in CALLS:
        facts = truth["calls"][name]
        angry = [facts["utterances"][i]["start"] for i in facts["expected"]["customer_angry_utterances"]]
        assert calls[name].prosody.metrics()["agitation_moments"] == angry, name
    events = [e for e in calls["raised_voice"].prosody.events() if e.kind == "agitation"]
    assert [(e.start, e.speaker) for e in events] == [(21.75, "customer"), (37.86, "customer")]


def test_pauses_in_agent_turns_and_response_gaps(calls, truth):
    hold = truth["calls"]["compliant"]["silences"][0]
    (pause,) = calls["compliant"].prosody.pauses
    assert pause.start == pytest.approx(hold["start"], abs=0.15)
    assert pause.end == pytest.approx(hold["end"], abs=0.15)
    gaps = [g.gap_s for g in calls["compliant"].prosody.response_gaps]
    assert len(gaps) == 4 and all(0.3 < g < 0.6 for g in gaps)  # the fixture answers 0.45 s later
    long = [g for g in calls["unannounced_hold"].prosody.response_gaps if g.gap_s > 5]
    assert [round(g.gap_s) for g in long] == [25]
    # ... and the call record carries them: hesitation and response latency per call
    compliant, held = calls["compliant"].prosody.metrics(), calls["unannounced_hold"].prosody.metrics()
    assert compliant["agent_long_pauses"] == 1
    assert compliant["agent_long_pause_s"] == pytest.approx(hold["end"] - hold["start"], abs=0.3)
    assert 0.3 < compliant["agent_response_median_s"] < 0.6 and compliant["agent_response_max_s"] < 0.6
    assert held["agent_response_max_s"] == pytest.approx(25, abs=0.5)


@pytest.mark.parametrize("agent_file, expected", [("rate_280.flac", "fail"), ("rate_120.flac", "pass")])
def test_agent_slows_down_for_a_slow_customer(agent_file, expected):
    """The espeak-ng recordings as a call: the agent on one channel, then a slow customer on the other."""
    entries = {e["file"]: e for e in json.loads(
        (ROOT / "fixtures" / "prosody" / "rates.json").read_text(encoding="utf-8"))["recordings"]}
    parts, utterances, offset = [], [], 0.0
    for speaker, name in (("agent", agent_file), ("customer", "rate_120.flac")):
        narrow, rate = soundfile.read(ROOT / "fixtures" / "prosody" / name, dtype="float32")
        parts.append((speaker, soxr.resample(narrow, rate, RATE).astype(np.float32), offset))
        utterances += [Utterance(speaker, u["start"] + offset, u["end"] + offset, u["text"])
                       for u in entries[name]["utterances"]]
        offset += narrow.size / rate
    audio = np.zeros((2, int(offset * RATE) + 1), dtype=np.float32)
    for channel, (speaker, samples, start) in enumerate(parts):
        audio[channel, int(start * RATE): int(start * RATE) + samples.size] = samples
    speech = find_speech(audio, assign_channels(2, CONFIG.channels), CONFIG.vad)
    transcript = Transcript("sidecar", tuple(utterances))
    info = RecordingInfo(path=FIXTURE_CALLS / "slow.wav", duration_s=offset, sample_rate=RATE,
                         channels=2, sha256="0" * 64, format="WAV/FLOAT")
    call = CallContext(recording=info, meta=CallMeta(), speech=speech, transcript=transcript,
                       answer_s=0.0, answer_source="recording_start", company_names=("星河通信",),
                       prosody=measure_prosody(audio, speech, transcript, SETTINGS))
    outcome = judge("prosody.rate_vs_customer", call)
    assert outcome.status == expected, outcome
    truth = entries[agent_file]["rate_cpm"] / entries["rate_120.flac"]["rate_cpm"]
    assert outcome.details["ratio"] == pytest.approx(truth, rel=0.1)
    assert all(e.speaker == "agent" for e in outcome.evidence)


def test_normal_customer_needs_no_slowing_down(calls):
    outcome = judge("prosody.rate_vs_customer", calls["fast_agent"])
    assert outcome.status == "pass" and outcome.details["customer_rate_cpm"] > 180


# --- mono recordings ------------------------------------------------------------------------------------


def test_mono_with_speaker_labels_measures_the_agent(calls):
    path = FIXTURE_CALLS / "compliant.wav"
    call = _audit(path, to_mono=True)
    metrics, stereo = call.prosody.metrics(), calls["compliant"].prosody.metrics()
    assert metrics["agent_rate_cpm"] == pytest.approx(stereo["agent_rate_cpm"], rel=0.03)
    assert metrics["agent_pitch_median_hz"] == pytest.approx(stereo["agent_pitch_median_hz"], rel=0.03)
    assert judge("prosody.rate", call).status == "pass"


def test_mono_without_speakers_is_not_measurable():
    path = FIXTURE_CALLS / "compliant.wav"
    unlabelled = Transcript("whisper", tuple(replace(u, speaker="unknown")
                                             for u in sidecar.read_transcript(path).utterances))
    call = _audit(path, to_mono=True, transcript=unlabelled)
    assert [s.speaker for s in call.prosody.speakers] == ["unknown"]
    metrics = call.prosody.metrics()
    assert all(metrics[name] is None for name in metrics)
    for rule_id in RULES:
        outcome = judge(rule_id, call)
        assert outcome.status == "not_measurable" and "单声道" in outcome.message, rule_id


# --- the config fragment -------------------------------------------------------------------------------


def test_config_fragment_is_valid_and_bad_values_name_the_key():
    assert set(FRAGMENT["prosody"]) == {f.name for f in fields(ProsodyConfig)}  # every key stated
    for rule_id, (_, params) in RULES.items():
        assert set(FRAGMENT["rules"][rule_id]) == {"severity", "weight"} | {f.name for f in fields(params)}
    for rule_id in RULES:
        assert judge(rule_id, synthetic(np.zeros(RATE), [])).status == "not_measurable"
    with pytest.raises(ConfigError, match=r"prosody\.raised_level_db"):
        build_section(ProsodyConfig, {**FRAGMENT["prosody"], "raised_level_db": 0.0}, "x.toml", "prosody")


def test_agitation_by_rate_is_judged_on_long_enough_turns_only():
    """A calm 2.6 s question spoken 1.25x faster than the customer's other turns (natural-voice
    calls: natural-eval2 f01, natural-eval3 g02) is no agitation; a long fast turn is."""
    from audit.configload import load_config
    from audit.measure.prosody import UtteranceProsody, _agitation
    settings = load_config().prosody

    def turn(index, spoken_s, rate):
        return UtteranceProsody(index, "customer", 10.0 * index, 10.0 * index + spoken_s, 12, spoken_s,
                                rate, rate, -21.0, 220.0, 10.0, spoken_s, False, False)

    calm = [turn(i, 4.0, 250.0) for i in range(4)]
    assert _agitation(calm + [turn(4, 2.6, 317.0)], settings) == []
    assert [a.start for a in _agitation(calm + [turn(4, 4.0, 330.0)], settings)] == [40.0]


def test_agitation_by_rate_needs_the_transcript_and_the_audio_to_agree():
    """A calm customer reading a phone number: the transcript's characters say 1.29x faster, the
    syllables in the audio 1.04x (natural-eval4 k12): no agitation. Both faster: agitation."""
    from audit.configload import load_config
    from audit.measure.prosody import UtteranceProsody, _agitation
    settings = load_config().prosody

    def turn(index, rate, rate_audio):
        return UtteranceProsody(index, "customer", 10.0 * index, 10.0 * index + 5.0, 20, 5.0,
                                rate, rate_audio, -21.0, 220.0, 10.0, 5.0, False, False)

    calm = [turn(0, 230.0, 230.0), turn(1, 228.0, 229.0), turn(2, 226.0, 216.0), turn(3, 236.0, 232.0)]
    assert _agitation(calm + [turn(4, 295.0, 238.0)], settings) == []
    assert [a.start for a in _agitation(calm + [turn(4, 310.0, 300.0)], settings)] == [40.0]
    # with no audio rate (a sidecar without audio), the transcript's alone decides, as before
    no_audio = [dataclasses.replace(u, rate_audio_cpm=None) for u in calm + [turn(4, 310.0, 300.0)]]
    assert [a.start for a in _agitation(no_audio, settings)] == [40.0]


def test_one_fast_utterance_fails_only_when_the_transcript_and_the_audio_agree():
    """A short closing whose ASR word times came out 0.4 s short: 389 字/分 by characters, 240 by
    the syllables in the audio (natural-eval7 r06). No verdict rests on the timing alone; both fast
    is a fast utterance."""
    from audit.measure.prosody import Prosody, SpeakerProsody, UtteranceProsody
    params = rules.RateParams(min_cpm=150.0, max_cpm=300.0, utterance_min_cpm=120.0,
                              utterance_max_cpm=360.0, max_evidence=3)

    def judged(rate: float, rate_audio: float | None) -> str:
        turns = [UtteranceProsody(i, "agent", 10.0 * i, 10.0 * i + 5.0, 20, 5.0, 230.0, 225.0, -20.0,
                                  200.0, 8.0, 5.0, False, False) for i in range(4)]
        turns.append(UtteranceProsody(4, "agent", 40.0, 42.2, 14, 2.2, rate, rate_audio, -20.0, 200.0,
                                      8.0, 2.2, False, False))
        agent = SpeakerProsody("agent", 22.2, 238.0, 230.0, -20.0, -20.0, 3.0, 0.0, 200.0, 8.0, 2.0)
        prosody = Prosody(tuple(turns), (agent,), (), (), (), (), None)
        utterances = tuple(Utterance("agent", t.start, t.end, "您好") for t in turns)
        call = CallContext(recording=RecordingInfo(path=ROOT / "x.wav", duration_s=50.0, sample_rate=8000,
                                                   channels=2, sha256="", format="wav"),
                           meta=CallMeta(), speech=(), transcript=Transcript("sidecar", utterances),
                           answer_s=0.0, answer_source="recording_start", company_names=(), prosody=prosody)
        return rules.rate(call, params).status

    assert judged(389.0, 240.0) == "pass"  # the characters alone say fast
    assert judged(389.0, 380.0) == "fail"  # both say fast
    assert judged(389.0, None) == "fail"  # no audio rate: the transcript's decides
