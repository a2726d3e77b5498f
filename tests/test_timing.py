"""Call timing measured from the audio, against synthetic calls with known events and the fixtures."""

import dataclasses
import json
import shutil

import librosa
import numpy as np
import pytest
import soundfile

from audit.configload import load_config
from audit.run.pipeline import AsrChoice, Job, audit_call
from audit.records import CallMeta, Transcript
from audit.measure.ringback import find_ringback
from audit.measure.speech import assign_channels, find_speech
from audit.measure.timing import measure_timing, promised_seconds
from conftest import FIXTURE_CALLS, REAL_SPEECH
from synthcalls import (CADENCES, RATE, errors, first_words_outcome, hold_music, make_call, measure,
                        measure_with_speech, speech_clips)

CONFIG = load_config()


# --- synthetic calls with exactly known events ------------------------------------------------

CONDITIONS = [(seed, cadence, snr, mulaw) for seed, (cadence, (snr, mulaw)) in enumerate(
    (c, condition) for c in CADENCES for condition in ((30, False), (20, True), (10, False)))]


@pytest.mark.parametrize("seed, cadence, snr, mulaw", CONDITIONS)
def test_synthetic_call_events(seed, cadence, snr, mulaw):
    call = make_call(seed=seed, cadence=cadence, snr_db=snr, mulaw=mulaw,
                     rings=1 + snr // 10, hold_kind="silence")
    found = errors(call, measure(call, CONFIG))
    assert found["ring_count_exact"]
    assert found["answer"] <= 0.25
    assert found["first_words"] <= 0.25
    assert found["hold"] <= 0.3
    assert found["overlap"] is None or found["overlap"] <= 0.3


def test_interruption_with_a_breath_in_it_is_one_interruption():
    """A synthetic call where the agent's talking-over has a 0.26 s pause (the VAD splits it): one
    overlap, the whole of it (it was two, and the second missed the truth by 2.3 s)."""
    call = make_call(seed=10030, cadence="us", snr_db=30, hold_kind="silence")
    found = errors(call, measure(call, CONFIG))
    assert found["overlap"] <= 0.3


def test_soft_ending_before_a_hold_is_kept():
    """The customer's last words before a hold fade out: Silero lets go 0.3 s before the end of
    the sound, and the hold started that much early; the edge now follows the sound forward."""
    for seed in (6030, 9030):
        call = make_call(seed=seed, cadence="cn", snr_db=30, hold_kind=("silence", "music")[seed // 1000 % 2])
        assert errors(call, measure(call, CONFIG))["hold"] <= 0.1, seed


def _overlaps_of(agent: list[tuple[float, float]], customer: list[tuple[float, float]]):
    from audit.records import Channel, ChannelSpeech, Interval

    speech = tuple(ChannelSpeech(Channel(index, speaker), tuple(Interval(*i) for i in intervals))
                   for index, (speaker, intervals) in enumerate((("agent", agent), ("customer", customer))))
    audio = np.random.default_rng(0).standard_normal((2, 16000 * 20)).astype(np.float32) * 1e-3
    return measure_timing(audio, speech, Transcript("none", ()), CallMeta(), CONFIG.timing)


def test_interrupter_pauses_shorter_than_configured_do_not_split_an_interruption():
    joined = _overlaps_of(agent=[(10.0, 11.5), (11.7, 13.0)], customer=[(9.0, 14.0)])
    assert [(o.start, o.end) for o in joined.overlaps] == [(10.0, 13.0)]
    assert len(joined.interruptions) == 1  # 3 s over the customer; 1.5 s and 1.3 s alone are under 2 s

    apart = _overlaps_of(agent=[(10.0, 11.0), (12.5, 13.5)], customer=[(9.0, 14.0)])
    assert [(o.start, o.end) for o in apart.overlaps] == [(10.0, 11.0), (12.5, 13.5)]

    after = _overlaps_of(agent=[(10.0, 11.8), (12.3, 13.0)], customer=[(9.0, 12.0)])
    assert [(o.start, o.end) for o in after.overlaps] == [(10.0, 11.8)]  # the customer had stopped


def test_the_customer_breathing_neither_ends_the_interruption_nor_makes_it_the_customers():
    """natural-eval10 u09: the agent cut in 2 s into a 7-s customer turn that has three breaths in it
    (0.3-0.4 s); the overlap was cut at the first breath (1.0 s, under the 2-s bar) and the
    customer, talking on, was taken for the one cutting in."""
    customer = [(35.77, 36.59), (36.92, 38.78), (39.2, 41.1), (41.32, 43.09), (46.12, 49.74)]
    found = _overlaps_of(agent=[(31.58, 34.9), (37.77, 45.14), (50.66, 58.17)], customer=customer)
    assert [(o.interrupter, o.start, o.end) for o in found.overlaps] == [("agent", 37.77, 43.09)]
    assert len(found.interruptions) == 1 and not found.customer_interruptions

    paused = _overlaps_of(agent=[(37.77, 45.14)], customer=[(36.92, 38.78), (40.0, 43.09)])
    assert [(o.start, o.end) for o in paused.overlaps] == [(37.77, 38.78), (40.0, 43.09)]
    assert [o.interrupter for o in paused.overlaps] == ["agent", "customer"]  # a real pause ends the turn


def test_answered_during_the_first_ring():
    """0.37 s of ringback, cut off as the agent's line opens: one ring. The same burst with the
    agent's line live from the start is a blip that proves nothing (rings not measurable)."""
    call = make_call(seed=39030, cadence="cn", snr_db=30)
    assert call.ring_count == 1 and call.answer_s - call.ring_start_s < 0.4
    assert measure(call, CONFIG).ring_count == 1

    live = call.audio.copy()
    closed = live[:, 0] == 0.0
    live[closed, 0] = np.random.default_rng(0).standard_normal(closed.sum()).astype(np.float32) * 1e-3
    blip = measure(dataclasses.replace(call, audio=live), CONFIG)
    assert blip.ring_count is None and blip.answer_source == "recording_start"
    # ... but the tone says the answer may have come as late as its end, not at the recording start
    assert blip.answer_s == 0.0 and blip.answer_latest_s == pytest.approx(call.answer_s, abs=0.05)


def test_no_ring_audio_and_no_metadata_means_rings_unknown():
    call = make_call(seed=5, cadence="cn", rings=0, hold_kind="none")
    timing = measure(call, CONFIG)
    assert timing.ring_count is None and timing.answer_source == "recording_start"
    assert abs(timing.agent_first_words_s - call.first_words_s) <= 0.25


@pytest.mark.parametrize("cadence", list(CADENCES))
def test_no_false_ringback_on_speech_music_or_silence(cadence):
    rng = np.random.default_rng(3)
    settings = dataclasses.replace(CONFIG.timing, ringback=cadence)
    speech = np.concatenate(speech_clips()["agent"][:12] + speech_clips()["customer"][:12])
    for name, signal in {"speech": speech, "music": hold_music(60.0, rng),
                         "silence": rng.standard_normal(RATE * 30).astype(np.float32) * 1e-3}.items():
        audio = librosa.resample(signal, orig_sr=RATE, target_sr=16000)[None, :]
        assert find_ringback(audio, 1e9, settings) == [], name


def test_hold_music_is_found_as_a_hold_not_speech():
    call = make_call(seed=11, cadence="cn", snr_db=30, rings=2, hold_kind="music")
    timing = measure(call, CONFIG)
    (hold,) = [s for s in timing.silences if s.duration >= 5.0]
    assert hold.music
    assert abs(hold.start - call.hold[0]) < 1.0 and abs(hold.end - call.hold[1]) < 1.0


def test_first_words_on_real_speech_at_known_offsets():
    """Real AISHELL Mandarin on the agent channel, answered (line opens) at a known moment."""
    for name in ("BAC009S0764W0121.wav", "rapidasr_asr_example_kuaile.wav"):
        speech, rate = soundfile.read(REAL_SPEECH / name, dtype="float32")
        speech = librosa.resample(speech, orig_sr=rate, target_sr=RATE)
        frames = speech[: len(speech) // 80 * 80].reshape(-1, 80)
        level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        onset_in_file = np.flatnonzero(level > np.percentile(level, 5) + 15)[0] * 0.01
        # The clips' own room noise before the words is a step above the line noise where the clip
        # is placed; keep 0.1 s of it, as a recording of the agent's line would hold.
        lead_in = max(0.0, onset_in_file - 0.1)
        speech, onset_in_file = speech[int(lead_in * RATE):], onset_in_file - lead_in
        for answer, delay in ((2.0, 0.8), (5.5, 4.0)):
            audio = np.random.default_rng(1).standard_normal((int(RATE * (answer + delay + 8)), 2))
            audio = (audio * 1e-3).astype(np.float32)
            audio[: int(answer * RATE), 0] = 0.0
            start = int((answer + delay) * RATE)
            audio[start: start + len(speech), 0] += speech
            audio_16k = librosa.resample(audio.T, orig_sr=RATE, target_sr=16000, axis=-1)
            spoken = find_speech(audio_16k, assign_channels(2, CONFIG.channels), CONFIG.vad)
            timing = measure_timing(audio_16k, spoken, Transcript("none", ()), CallMeta(), CONFIG.timing)
            assert timing.answer_source == "line_open" and abs(timing.answer_s - answer) <= 0.05
            assert abs(timing.agent_first_words_s - (answer + delay + onset_in_file)) <= 0.25, name


# --- the bundled sample calls -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_audits(truth):
    return {name: audit_call(Job(FIXTURE_CALLS / facts["file"], name), CONFIG, AsrChoice("sidecar"))
            for name, facts in truth["calls"].items()}


def _result(audit, rule_id):
    return next(r for r in audit.results if r.rule_id == rule_id)


def test_fixture_metrics_match_ground_truth(fixture_audits, truth):
    for name, facts in truth["calls"].items():
        metrics = fixture_audits[name].metrics
        expected_rings = facts["ring_count"] or facts.get("ring_count_from_meta")
        assert metrics["ring_count"] == expected_rings, name
        assert metrics["answer_s"] == pytest.approx(facts["answer_s"], abs=0.25), name
        assert metrics["agent_first_words_s"] == pytest.approx(facts["agent_first_words_s"], abs=0.25), name
        assert metrics["last_speaker"] == facts["last_speaker"], name
        assert metrics["end_gap_s"] == pytest.approx(facts["tail_after_last_words_s"], abs=0.35), name
        holds = sum(s["duration"] for s in facts["silences"] if s["announced"])
        dead = sum(s["duration"] for s in facts["silences"] if not s["announced"])
        assert metrics["hold_s"] == pytest.approx(holds, abs=0.6), name
        assert metrics["dead_air_s"] == pytest.approx(dead, abs=0.6), name
        assert metrics["interruption_count"] == len(facts["interruptions"]), name
        for key in ("talk_agent_s", "talk_customer_s", "non_talk_s", "overlap_s", "first_words_delay_s"):
            assert metrics[key] is not None and metrics[key] >= 0, (name, key)


def test_fixture_rule_outcomes(fixture_audits, truth):
    calls = truth["calls"]
    for name, facts in calls.items():
        expected = facts["expected"]
        audit = fixture_audits[name]
        rings = _result(audit, "timing.three_rings")
        late = expected["late_answer"]
        assert rings.status == {True: "fail", False: "pass", None: "not_measurable"}[late], name
        assert _result(audit, "timing.first_words").status == (
            "fail" if expected["slow_first_words"] else "pass"), name
        assert _result(audit, "timing.dead_air").status == ("fail" if expected["dead_air"] else "pass"), name
        assert _result(audit, "timing.interruption").status == (
            "fail" if expected["interruptions"] else "pass"), name
        assert _result(audit, "timing.cut_off").status == (
            "fail" if expected["ends_with_customer"] or not expected["closing_complete"] else "pass"), name
        assert _result(audit, "timing.hold_overrun").status == "pass"
        assert _result(audit, "timing.hold_thanks").status == "pass"


def test_interruption_evidence_points_at_the_overlap(fixture_audits, truth):
    (truth_overlap,) = truth["calls"]["raised_voice"]["interruptions"]
    result = _result(fixture_audits["raised_voice"], "timing.interruption")
    (evidence,) = result.evidence
    assert abs(evidence.start - truth_overlap["at"]) <= 0.3
    assert abs((evidence.end - evidence.start) - truth_overlap["overlap_s"]) <= 0.3
    assert evidence.text == truth_overlap["agent_text"]


def test_metadata_rings_when_the_recording_starts_at_answer(fixture_audits):
    rings = _result(fixture_audits["customer_cut_off"], "timing.three_rings")
    assert rings.status == "pass" and rings.details["source"] == "metadata"
    assert rings.details["ring_count"] == 2 and rings.details["ring_to_answer_s"] == 8.0
    assert _result(fixture_audits["missing_agent_id"], "timing.three_rings").status == "not_measurable"


def test_compliant_hold_is_announced_promised_and_thanked(fixture_audits, truth):
    timing_hold = truth["calls"]["compliant"]["silences"][0]
    result = _result(fixture_audits["compliant"], "timing.hold_overrun")
    (hold,) = result.details["holds"]
    assert hold["promised_s"] == timing_hold["promised_s"] == 60
    assert abs(hold["start"] - timing_hold["start"]) <= 0.3 and abs(hold["end"] - timing_hold["end"]) <= 0.3


def _variant(tmp_path, name, edit, config=CONFIG):
    """A copy of a fixture call whose sidecar transcript is edited by `edit`."""
    for suffix in (".wav", ".meta.json"):
        shutil.copy(FIXTURE_CALLS / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    document = json.loads((FIXTURE_CALLS / f"{name}.transcript.json").read_text(encoding="utf-8"))
    for utterance in document["utterances"]:
        utterance.pop("words", None)
        utterance["text"] = edit(utterance["text"])
    (tmp_path / f"{name}.transcript.json").write_text(json.dumps(document, ensure_ascii=False))
    return audit_call(Job(tmp_path / f"{name}.wav", name), config, AsrChoice("sidecar"))


def test_hold_without_thanks_and_over_its_promise(tmp_path, truth):
    site = tmp_path / "site.toml"
    site.write_text('[rules."timing.hold_overrun"]\ngrace_s = 1.0\n', encoding="utf-8")
    audit = _variant(tmp_path, "compliant",
                     lambda text: text.replace("感谢您的耐心等待", "好的").replace("一分钟", "五秒"),
                     load_config(site))
    thanks = _result(audit, "timing.hold_thanks")
    assert thanks.status == "fail"
    # the evidence is the hold and the 5 s after it, where the thanks was due: the agent's return
    hold = truth["calls"]["compliant"]["silences"][0]
    back = next(u for u in audit.transcript.utterances if u.start >= hold["end"] - 0.5)
    (evidence,) = thanks.evidence
    assert evidence.start == pytest.approx(hold["start"], abs=0.3)
    assert evidence.end == pytest.approx(hold["end"] + 5.0, abs=0.3)
    assert evidence.start < back.start < evidence.end and evidence.text == "谢谢您。请您稍等五秒,我帮您查一下。"
    overrun = _result(audit, "timing.hold_overrun")
    assert overrun.status == "fail" and overrun.details["holds"][0]["promised_s"] == 5
    assert "超过承诺的5秒" in overrun.message


def test_a_short_promise_gets_no_more_grace_than_itself(tmp_path):
    """The compliant call's 8-s hold: promised as 五秒 it is within twice the promise (5 + 5 s), as
    三秒 it is over (3 + 3 s), whatever `grace_s` (10 s) allows a long promise."""
    def promised(words):
        return lambda text: text.replace("一分钟", words)

    within = _result(_variant(tmp_path, "compliant", promised("五秒")), "timing.hold_overrun")
    assert within.status == "pass" and within.details["holds"][0]["promised_s"] == 5
    over = _result(_variant(tmp_path, "compliant", promised("三秒")), "timing.hold_overrun")
    assert over.status == "fail" and "超过承诺的3秒" in over.message

def test_thanks_counts_within_the_configured_window_after_the_hold(tmp_path):
    """The thanks moved from the agent's return (at the hold's end) to the agent's next turn, 8.6 s
    later: inside `[timing] thanks_window_s` (20 s) it counts, with a 5 s window it does not."""
    def later(text):
        return text.replace("感谢您的耐心等待。", "").replace("请问还有其他", "感谢您的耐心等待。请问还有其他")

    assert _result(_variant(tmp_path, "compliant", later), "timing.hold_thanks").status == "pass"
    site = tmp_path / "site.toml"
    site.write_text("[timing]\nthanks_window_s = 5.0\n", encoding="utf-8")
    assert _result(_variant(tmp_path, "compliant", later, load_config(site)), "timing.hold_thanks").status == "fail"


def test_a_thanks_after_the_next_hold_is_not_the_thanks_for_this_one():
    """natural-eval10 u10 (real voice, true transcript): an 8-s hold the agent comes back from with
    no thanks, a transfer 9 s later, and 抱歉久等了 after the transfer's hold. That thanks is 14 s
    after the first hold ended, inside `thanks_window_s`, but it belongs to the second hold."""
    calls = FIXTURE_CALLS.parent / "natural-eval10"
    name = "u10_mms_no_offer_transfers_unthanked"
    silences = json.loads((calls / "truth.json").read_text(encoding="utf-8"))["calls"][name]["silences"]
    audit = audit_call(Job(calls / f"{name}.wav", name), CONFIG, AsrChoice("sidecar"))
    thanks = _result(audit, "timing.hold_thanks")
    assert thanks.status == "fail" and thanks.message.startswith("1次")
    (evidence,) = thanks.evidence
    unthanked = next(s for s in silences if not s["thanked"])
    assert evidence.start == pytest.approx(unthanked["start"], abs=0.3)


def test_unannounced_hold_is_dead_air(tmp_path):
    audit = _variant(tmp_path, "compliant", lambda text: text.replace("请您稍等一分钟,我帮您查一下", "嗯"))
    assert _result(audit, "timing.dead_air").status == "fail"
    assert audit.metrics["hold_s"] == 0 and audit.metrics["dead_air_s"] > 7


@pytest.mark.parametrize(
    "text, seconds",
    [("请您稍等1分钟", 60), ("请您稍等一分钟,我帮您查一下", 60), ("麻烦您稍等两分钟", 120),
     ("请稍等三十秒", 30), ("稍等十五秒钟", 15), ("稍等半分钟", 30), ("稍等片刻", None), ("请稍等一下", None)],
)
def test_promised_hold_lengths(text, seconds):
    assert promised_seconds(text) == seconds


def test_mono_recording_cannot_judge_interruptions(tmp_path):
    samples, rate = soundfile.read(FIXTURE_CALLS / "raised_voice.wav", dtype="float32")
    soundfile.write(tmp_path / "mono.wav", samples.mean(axis=1), rate, subtype="PCM_16")
    shutil.copy(FIXTURE_CALLS / "raised_voice.transcript.json", tmp_path / "mono.transcript.json")
    audit = audit_call(Job(tmp_path / "mono.wav", "mono"), CONFIG, AsrChoice("sidecar"))
    assert _result(audit, "timing.interruption").status == "not_measurable"
    assert audit.metrics["interruption_count"] is None


# --- the answer when the recording cannot show it -----------------------------------------------

WINDOW_CASES = [(seed, cadence) for cadence in CADENCES for seed in range(4)]


@pytest.mark.parametrize("seed, cadence", WINDOW_CASES)
def test_answer_window_without_an_audible_line_opening(seed, cadence):
    """Line noise on the agent channel from the start: the answer is only known to lie after the
    last ring, and the first-words rule never contradicts the true delay."""
    call = make_call(61000 + seed, cadence, snr_db=20, rings=1 + seed % 4, hold_kind="none", line_opens=False)
    speech, timing = measure_with_speech(call, CONFIG)
    earliest, latest = call.answer_window
    assert timing.ring_count == call.ring_count
    assert timing.answer_source == "ringback"
    assert timing.answer_s - 0.05 <= call.answer_s <= timing.answer_latest_s + 0.05  # the truth is inside
    assert timing.answer_s == pytest.approx(earliest, abs=0.05)
    if earliest < latest:  # the last ring rang out: the window is the silence after it, no wider
        assert timing.answer_latest_s == pytest.approx(latest, abs=0.2)
    elif call.answer_s - call.ring_start_s - timing.ring_bursts[-1].start + timing.ring_bursts[0].start \
            < min(CADENCES[cadence][1][0::2]) - 0.2:
        assert timing.answer_exact  # cut well short by the answer: its end is the answer

    outcome = first_words_outcome(timing, speech, CONFIG)
    true_delay = call.first_words_s - call.answer_s
    if outcome.status == "fail":
        assert true_delay > 3.0
    if outcome.status == "pass":
        assert true_delay <= 3.0 + 0.25
    if timing.answer_exact:
        assert outcome.status == ("fail" if true_delay > 3.25 else "pass" if true_delay < 2.75 else outcome.status)


# The China cadence rings 1 s and is silent 4 s: a ring that rang out leaves an answer window from
# its end to 4 s later (plus the 0.15 s a next ring needs to be heard). answer_in_cycle counts from
# the start of the last ring, so 2.0 is 1.0 s after it rang out.
@pytest.mark.parametrize("answer_in_cycle, delay, line_opens, expected", [
    (2.0, 0.8, False, "pass"),            # words 1.8 s after the ring: even the earliest answer gives <= 3 s
    (2.0, 2.3, False, "not_measurable"),  # words 3.3 s after the ring, but the answer may have been 2 s later
    (4.6, 3.6, False, "fail"),            # words 7.2 s after the ring: even the latest answer, 4.15 s after it, leaves > 3 s
    (2.0, 2.3, True, "pass"),             # the same call with the line opening: 2.3 s, exact
    (2.0, 3.6, True, "fail"),             # ... and 3.6 s, exact
    (0.6, 3.6, False, "fail"),            # the answer cut the ring short: exact, 3.6 s
    (0.6, 2.6, False, "pass"),
])
def test_first_words_judged_on_what_the_window_proves(answer_in_cycle, delay, line_opens, expected):
    call = make_call(7, "cn", snr_db=30, rings=2, hold_kind="none", line_opens=line_opens,
                     answer_in_cycle=answer_in_cycle, first_words_delay=delay)
    speech, timing = measure_with_speech(call, CONFIG)
    assert timing.ring_count == 2
    assert timing.answer_s - 0.05 <= call.answer_s <= timing.answer_latest_s + 0.05
    assert timing.answer_exact == (line_opens or answer_in_cycle < 1.0)
    outcome = first_words_outcome(timing, speech, CONFIG)
    assert outcome.status == expected, outcome.message
    assert outcome.details["answer_latest_s"] == pytest.approx(timing.answer_latest_s, abs=0.01)
    if not timing.answer_exact:
        assert "之间" in outcome.message  # the message says the answer is only known to a window


def test_a_dropout_inside_a_ring_burst_is_one_burst():
    """China's ringback (450 Hz, 1 s on, 4 s off) with a 40 ms packet loss in the middle of every
    burst: still three rings of a second each, not six half-rings that fit no cadence."""
    sr, on, off = 16000, 1.0, 4.0
    t = np.arange(int(sr * on)) / sr
    burst = (0.18 * np.sin(2 * np.pi * 450 * t)).astype(np.float32)
    burst[int(0.48 * sr): int(0.52 * sr)] = 0.0
    quiet = np.zeros(int(sr * off), np.float32)
    line = np.concatenate([quiet[: sr], burst, quiet, burst, quiet, burst, quiet[: sr]])
    audio = np.stack([np.zeros_like(line), line]) + np.random.default_rng(1).standard_normal(
        (2, line.size)).astype(np.float32) * 1e-3
    bursts = find_ringback(audio, line.size / sr, CONFIG.timing)
    assert len(bursts) == 3
    assert all(abs(b.duration - on) <= 0.05 for b in bursts)


def _dead_air_call(unwritten):
    """A call whose agent spoke 40-54.8 s, then 10 s of silence nobody announced in words written."""
    from pathlib import Path
    from types import SimpleNamespace

    from audit.judge.checks.base import CallContext
    from audit.measure.timing import Silence
    from audit.records import Channel, ChannelSpeech, Interval, RecordingInfo, Utterance

    speech = (ChannelSpeech(Channel(0, "agent"), (Interval(40.0, 54.8), Interval(64.8, 74.0))),
              ChannelSpeech(Channel(1, "customer"), ()))
    said = (Utterance("agent", 40.0, 53.4, "核对好了,我查一下功能开通情况。"),
            Utterance("agent", 64.8, 74.0, "查到了,呼叫等待没补签。"))
    return CallContext(recording=RecordingInfo(Path("call.wav"), 80.0, 8000, 2, "", "WAV"), meta=CallMeta(),
                       speech=speech, transcript=Transcript("whisper", said), answer_s=0.0,
                       answer_source="metadata", company_names=(),
                       timing=SimpleNamespace(silences=(Silence(54.8, 64.8, None, None, None, False),)),
                       unwritten=unwritten)


def test_dead_air_after_agent_speech_the_asr_left_unwritten_is_unsure():
    """natural-eval9 t09: base wrote nothing for 请稍等 at the end of a turn (53.4-54.8 s); the
    silence after it may have been announced, so it goes to a reviewer instead of failing."""
    from audit.judge.checks.timing import dead_air
    from audit.measure.coverage import untranscribed
    from audit.records import Interval

    params = CONFIG.rules["timing.dead_air"].params
    probe = _dead_air_call(())
    unwritten = untranscribed(probe.speech, probe.transcript, CONFIG.asr.untranscribed_min_s)
    assert unwritten == (Interval(53.4, 54.8),)
    doubted = dead_air(_dead_air_call(unwritten), params)
    assert doubted.status == "unsure" and "1.4秒语音未转写" in doubted.message
    # every word written (a sidecar, or the ASR wrote the whole turn): the silence is dead air
    assert dead_air(probe, params).status == "fail"
    # unwritten speech that ends long before the silence announced nothing
    assert dead_air(_dead_air_call((Interval(41.0, 42.5),)), params).status == "fail"
