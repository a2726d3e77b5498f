"""The reviewer report (audit/present/report/), built from a real `audit run` of sample calls, a hostile
call (markup, a phone and an ID number in its transcript, metadata and file name) and a broken file.

Content, escaping, masking, audio and rebuilds are checked on the files; what a reviewer does in
the page runs in headless Chromium (Debian's chromium + chromedriver, driven by Selenium) and is
skipped, with the reason, where those are not installed.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile

from audit.measure import decode as decoding
from audit.configload import load_config
from audit.privacy import mask_numbers
from audit.present.report import page_stem, write_report
from conftest import FIXTURE_CALLS, ROOT

CALLS = ("raised_voice", "unannounced_hold", "compliant")
HOSTILE_NAME = 'x<b>&"y'
PHONE, ID_NUMBER = "13812345678", "11010519491231002X"
MARKUP = "<script>alert(1)</script><img src=x onerror=alert(1)>"
HOSTILE_TEXT = f"{MARKUP}我的手机号是{PHONE},身份证号{ID_NUMBER}"
HOSTILE_AGENT = '"><svg onload=alert(1)>'
MB_PER_FLAGGED_MINUTE = 0.3  # issue 17's budget for the report's audio
ARTIFACTS = ROOT / "out" / "test-artifacts"


# --- the audited night --------------------------------------------------------------------------


def _copy_call(name: str, folder: Path, as_name: str) -> None:
    audio = next(p for p in FIXTURE_CALLS.glob(f"{name}.*") if p.suffix in (".wav", ".flac"))
    shutil.copy(audio, folder / f"{as_name}{audio.suffix}")
    for suffix in (".transcript.json", ".meta.json"):
        shutil.copy(FIXTURE_CALLS / f"{name}{suffix}", folder / f"{as_name}{suffix}")


def _make_hostile(folder: Path) -> None:
    """The compliant call under a hostile name, with markup and numbers in what the customer said."""
    _copy_call("compliant", folder, HOSTILE_NAME)
    transcript_path = folder / f"{HOSTILE_NAME}.transcript.json"
    transcript = json.loads(transcript_path.read_text(encoding="utf-8"))
    customer = next(u for u in transcript["utterances"] if u["speaker"] == "customer")
    customer["text"] = HOSTILE_TEXT
    customer.pop("words", None)
    transcript_path.write_text(json.dumps(transcript, ensure_ascii=False), encoding="utf-8")
    meta_path = folder / f"{HOSTILE_NAME}.meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["agent_id"] = HOSTILE_AGENT
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> Path:
    """The outputs of `audit run` over the night's folder (exit 1: the broken file)."""
    root = tmp_path_factory.mktemp("report")
    night = root / "night"
    night.mkdir()
    for name in CALLS:
        _copy_call(name, night, name)
    _make_hostile(night)
    (night / "broken.wav").write_bytes(b"RIFF<script>")
    out = root / "out"
    done = subprocess.run([sys.executable, "-m", "audit", "run", str(night), "--out", str(out),
                           "--asr", "sidecar", "--workers", "1"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    return out


@pytest.fixture(scope="module")
def built(audited) -> Path:
    """The report with the default options; returns OUT."""
    write_report(audited)
    return audited


def fresh_copy(out: Path, destination: Path) -> Path:
    """The run's records and summary without any report, to build one from scratch."""
    shutil.copytree(out / "calls", destination / "calls")
    shutil.copy(out / "summary.json", destination / "summary.json")
    return destination


def record_of(out: Path, name: str) -> dict:
    return json.loads((out / "calls" / f"night__{name}.json").read_text(encoding="utf-8"))


def hostile_record(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    call_id = next(c["call_id"] for c in summary["calls"] if c["call_id"].startswith("night__x_b_"))
    return json.loads((out / "calls" / f"{call_id}.json").read_text(encoding="utf-8"))


def page_path(out: Path, record: dict, masked: bool = True) -> Path:
    stem = page_stem(record["call_id"], record["recording"]["sha256"], mask_numbers if masked else str)
    return out / "report" / "calls" / f"{stem}.html"


class Page(HTMLParser):
    """A page as the browser parses it: its elements and its visible text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._hidden = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)

    def all(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    @property
    def visible_text(self) -> str:
        return "".join(self.text)


def read_page(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def index_data(out: Path) -> dict:
    """The worklist's rows, as the index's script reads them."""
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    block = html.split('<script type="application/json" id="report-data">', 1)[1].split("</script>", 1)[0]
    return json.loads(block)


def scripts_run(page: Page) -> list[dict]:
    return [a for a in page.all("script") if a.get("type") != "application/json"]


# --- masking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("said, shown", [
    ("我的手机号是13812345678", "我的手机号是*******5678"),
    ("电话 138 1234 5678 谢谢", "电话 *** **** 5678 谢谢"),
    ("+86 138-1234-5678", "+** ***-****-5678"),
    ("幺三八幺二三四五六七八", "*******五六七八"),
    ("１３８１２３４５６７８", "*******５６７８"),
    ("座机010-62345678", "座机***-****5678"),
    ("身份证11010519491231002X", "身份证**************002X"),
    ("身份证号一一零一零五一九四九一二三一零零二x", "身份证号**************零零二x"),
    ("卡号6222 0202 0001 2345 678", "卡号**** **** **** ***5 678"),
    ("13812345678 11010519491231002X", "*******5678 **************002X"),
    ("号码13812345678,身份证11010519491231002X", "号码*******5678,身份证**************002X"),
    # however it is separated or spelled (issue 16)
    ("138  1234  5678", "***  ****  5678"),
    ("138.1234.5678", "***.****.5678"),
    ("138，1234，5678", "***，****，5678"),
    ("幺三八两两三四五六七八", "*******五六七八"),
    ("壹叁捌壹贰叁肆伍陆柒捌", "*******伍陆柒捌"),
    ("in__138_1234_5678", "in__***_****_5678"),
])
def test_phone_id_and_card_numbers_keep_their_last_four_digits(said, shown):
    assert mask_numbers(said) == shown
    assert len(mask_numbers(said)) == len(said)  # highlight positions stay valid


@pytest.mark.parametrize("said", [
    "工号零零八六为您服务", "请提供手机号后四位。一三五七。", "每月三十元,共120元", "2026-11-22__team1__a",
    "20261122153000", "订单12345", "这个问题我需要确认,请您稍等1分钟",
    "价格1.5元,2.5元", "两个人", "1，2，3，4，5", "2026.11.22 15:30",
])
def test_other_numbers_are_left_alone(said):
    assert mask_numbers(said) == said


def test_a_masked_call_id_gives_a_file_name_without_the_number():
    stem = page_stem(f"night__{PHONE}_0930", "ab" * 32, mask_numbers)
    other = page_stem(f"night__{PHONE[:-5]}99999_0930", "cd" * 32, mask_numbers)
    assert PHONE[:7] not in stem and stem.startswith("night_________5678_0930-")
    assert stem != other
    assert page_stem("night__a", "ab" * 32, mask_numbers) == "night__a"


# --- the pages as files -------------------------------------------------------------------------


def test_index_lists_the_run_worst_first(built):
    summary = json.loads((built / "summary.json").read_text(encoding="utf-8"))
    index = read_page(built / "report" / "index.html")
    listed = index_data(built)["calls"]
    assert len(listed) == summary["counts"]["audited"] == 4
    by_id = {c["call_id"]: c for c in summary["calls"]}
    for row in listed:
        assert row["verdict"] == by_id[row["id"]]["verdict"] and row["rules"] == by_id[row["id"]]["failed_rules"]
    rank = {"fail": 0, "review": 1, "pass": 2}
    order = [(rank[r["verdict"]], r["score"]) for r in listed]
    assert order == sorted(order)  # fail, then review, then pass; lowest score first
    assert all((built / "report" / unquote(row["href"])).is_file() for row in listed)
    text = index.visible_text
    assert "broken" in text and "无法质检的录音" in text
    for rule, count in summary["fails_by_rule"].items():
        assert index.all("button", **{"data-pick": "rule", "data-value": rule})


def test_call_page_shows_every_finding_with_a_seek_button_and_the_transcript(built):
    record = record_of(built, "raised_voice")
    page = read_page(page_path(built, record))
    failed = [r for r in record["results"] if r["status"] == "fail"]
    assert len(page.all("article")) == len(failed)
    assert len(page.all("button", **{"class": "seek in-call"})) == sum(len(r["evidence"]) for r in failed)
    (player,) = page.all("audio")  # the call's own player, no player per clip
    assert player["id"] == "call-audio" and player["src"].endswith(".ogg")
    assert len(page.all("button", **{"class": "seek"})) >= len(record["utterances"])
    text = page.visible_text
    for utterance in record["utterances"]:
        assert utterance["text"] in text
    # the forbidden phrase is highlighted where the agent said it, in the transcript too
    marks = [a for a in page.all("mark", **{"class": "fail"}) if "text.forbidden.shirk" in a["title"]]
    assert len(marks) == 2  # in the finding and in the transcript
    assert page.all("rect", **{"class": "flag"}) and page.all("rect", **{"class": "overlap"})


def test_a_call_with_dead_air_shows_it_on_the_timeline(built):
    page = read_page(page_path(built, record_of(built, "unannounced_hold")))
    assert len(page.all("rect", **{"class": "dead-air"})) == 1


def test_the_timeline_shows_measured_holds_whatever_the_rules_make_of_them(built):
    """The holds and silences come from the record's measures, not from a rule's details: with
    the hold rules' details gone (as when the rules are disabled), the hold is still drawn."""
    from audit.present.report.charts import TimeAxis, timeline
    record = record_of(built, "compliant")
    assert record["metrics"]["hold_intervals"]  # the announced 8-s hold
    for result in record["results"]:
        result["details"] = {}
    lanes = timeline(record, [], TimeAxis(record["recording"]["duration_s"]),
                     {"agent": "坐席", "customer": "客户", "unknown": "?"})
    assert [span.kind for lane in lanes for span in lane.spans if span.kind == "hold"] == ["hold"]


def test_the_level_picture_reads_the_measures_not_the_prosody_rules(built):
    """The agent's usual level and the raised stretches come from the record's metrics: with every
    rule's details gone (the prosody rules disabled), the picture still draws them."""
    from audit.configload import load_config
    from audit.present.report.charts import Bands, TimeAxis, prosody_panels
    record = record_of(built, "raised_voice")
    metrics = record["metrics"]
    assert metrics["agent_rate_source"] == "transcript" and metrics["agent_raised_intervals"]
    for result in record["results"]:
        result["details"] = {}
    rate, level, _ = prosody_panels(record, Bands.of(load_config()), TimeAxis(record["recording"]["duration_s"]),
                                    str)
    assert len(level.spans) == len(metrics["agent_raised_intervals"])  # each raised stretch drawn
    assert any(f"{metrics['agent_level_baseline_dbfs']:g}" in g.label for g in level.guides)
    assert any(f"{metrics['agent_rate_cpm']:g}" in g.label for g in rate.guides)


def audio_path(out: Path, record: dict) -> Path:
    page = page_path(out, record)
    return page.parent.parent / "audio" / f"{page.stem}.ogg"


def test_the_run_encodes_the_flagged_calls_audio_so_the_report_only_moves_it(tmp_path, monkeypatch):
    """`audit run` encodes a flagged call's audio in the worker that audited it; the build then
    decodes nothing: it moves the files into place and leaves no pending folder."""
    from audit.present.report import build
    from audit.present.report.audio import PENDING_FOLDER
    from audit.run.batch import BatchOptions, run_batch
    night = tmp_path / "night"
    night.mkdir()
    for name in ("raised_voice", "compliant"):
        _copy_call(name, night, name)
    out = tmp_path / "out"
    config = load_config()
    run_batch([night], out, config, BatchOptions(asr_mode="sidecar"))
    pending = out / "report" / PENDING_FOLDER
    records = {name: record_of(out, name) for name in ("raised_voice", "compliant")}
    assert records["raised_voice"]["verdict"] != "pass" and records["compliant"]["verdict"] == "pass"
    assert len(list(pending.glob("*.ogg"))) == 1  # the flagged call only

    def no_decoding(*args, **kwargs):
        raise AssertionError("the build decoded a recording the run had encoded")

    monkeypatch.setattr(build, "load_recording", no_decoding)
    write_report(out, config)
    assert audio_path(out, records["raised_voice"]).exists() and not audio_path(out, records["compliant"]).exists()
    assert not pending.exists()
    info = soundfile.info(audio_path(out, records["raised_voice"]))
    assert (info.format, info.subtype) == ("OGG", "OPUS")


def test_a_flagged_call_gets_its_recording_as_opus_at_a_speech_rate(built):
    for name in ("raised_voice", "unannounced_hold"):
        record = record_of(built, name)
        assert record["verdict"] in ("fail", "review")
        original, rate = soundfile.read(record["recording"]["path"], dtype="float32", always_2d=True)
        info = soundfile.info(audio_path(built, record))
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("OGG", "OPUS", rate, original.shape[1])
        assert info.frames == len(original)  # the call's time line: a seek lands where the finding is
        copy, _ = soundfile.read(audio_path(built, record), dtype="float32", always_2d=True)
        for channel in range(original.shape[1]):  # the same speech, in time with the recording
            assert np.corrcoef(copy[:, channel], original[:, channel])[0, 1] > 0.8
        minutes = record["recording"]["duration_s"] / 60
        assert audio_path(built, record).stat().st_size / 2**20 / minutes < MB_PER_FLAGGED_MINUTE


def test_a_passed_call_has_no_audio_and_no_evidence_has_a_file_of_its_own(built):
    record = record_of(built, "compliant")
    assert record["verdict"] == "pass"
    page = read_page(page_path(built, record))
    assert not audio_path(built, record).exists() and not page.all("audio")
    assert "本页不含录音:报告只保存不合格、需复核通话的录音" in page.visible_text
    assert not page.all("button", **{"class": "seek"})  # time stamps that could play nothing are text
    report = built / "report"
    assert not (report / "clips").exists() and not list(report.rglob("*.wav")) and not list(report.rglob("*.flac"))
    flagged = [c for c in index_data(built)["calls"] if c["verdict"] != "pass"]
    assert sorted(p.name for p in (report / "audio").iterdir()) == sorted(
        unquote(c["href"]).removeprefix("calls/").removesuffix(".html") + ".ogg" for c in flagged)


def test_the_audio_verdicts_setting_is_validated_and_decides_which_calls_have_audio(audited, tmp_path):
    from audit.config import ConfigError

    for text, reason in (('audio_verdicts = ["fail", "bad"]', "'bad' is not one of"),
                         ('audio_verdicts = ["fail", "fail"]', "'fail' is listed twice"),
                         ("audio_kbps = 4", "outside the allowed range"), ("workers = -1", "outside the allowed range")):
        site = tmp_path / "bad.toml"
        site.write_text(f"[report]\n{text}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=reason) as raised:
            load_config(site)
        assert str(site) in str(raised.value) and "report." in str(raised.value)
    out = fresh_copy(audited, tmp_path / "out")
    site = tmp_path / "site.toml"
    site.write_text('[report]\naudio_verdicts = ["fail", "review", "pass"]\n', encoding="utf-8")
    write_report(out, load_config(site))
    assert audio_path(out, record_of(out, "compliant")).exists()
    site.write_text("[report]\naudio_verdicts = []\n", encoding="utf-8")
    write_report(out, load_config(site))
    assert not list((out / "report" / "audio").iterdir())  # a call that no longer gets audio loses it
    assert "报告不保存录音" in read_page(page_path(out, record_of(out, "raised_voice"))).visible_text


def _site(folder: Path, line: str) -> Path:
    site = folder / "site.toml"
    site.write_text(f"[report]\n{line}\n", encoding="utf-8")
    return site


def test_a_recording_that_cannot_be_encoded_costs_its_audio_not_the_report(audited, tmp_path, monkeypatch, caplog):
    from audit.present.report import audio

    out = fresh_copy(audited, tmp_path)
    monkeypatch.setattr(audio, "encoder_problem", lambda: "libsndfile 1.0.28 cannot write Ogg Opus")
    write_report(out)
    record = record_of(out, "raised_voice")
    page = read_page(page_path(out, record))
    assert not page.all("audio") and "录音无法编码为 Ogg Opus" in page.visible_text
    assert "libsndfile 1.0.28 cannot write Ogg Opus" in page.visible_text
    assert f"{Path(record['recording']['path'])}: libsndfile 1.0.28" in caplog.text  # the file and why
    assert all(row["href"] for row in index_data(out)["calls"])  # every page built

    monkeypatch.undo()  # one recording libsndfile refuses: the others keep their audio
    encode = audio.encode_opus

    def refuse_one(recording, kbps):
        if recording.info.path.name == "raised_voice.wav":
            raise audio.AudioError("libsndfile cannot encode it as Ogg Opus at 8000 Hz: Bad sample rate")
        return encode(recording, kbps)

    monkeypatch.setattr(audio, "encode_opus", refuse_one)
    write_report(out, load_config(_site(tmp_path, "audio_kbps = 13")))
    assert "Bad sample rate" in read_page(page_path(out, record)).visible_text
    assert not audio_path(out, record).exists() and audio_path(out, record_of(out, "unannounced_hold")).exists()


def test_the_audio_is_the_same_bytes_in_every_build(audited, tmp_path):
    first, second = (fresh_copy(audited, tmp_path / name) for name in ("first", "second"))
    write_report(first)
    write_report(second)
    record = record_of(first, "raised_voice")
    assert audio_path(first, record).read_bytes() == audio_path(second, record).read_bytes()


def test_pages_built_in_two_worker_processes_are_those_of_one(audited, tmp_path):
    from typer.testing import CliRunner

    from audit.cli import app

    def report_files(workers: str) -> dict[str, bytes]:
        out = fresh_copy(audited, tmp_path / workers)
        done = CliRunner().invoke(app, ["report", str(out), "--workers", workers])
        assert done.exit_code == 0, done.output
        return {str(p.relative_to(out / "report")): p.read_bytes()
                for p in sorted((out / "report").rglob("*")) if p.is_file()}

    one, two = report_files("1"), report_files("2")
    assert one == two and any(name.endswith(".ogg") for name in one) and "index.html" in one
    refused = CliRunner().invoke(app, ["report", str(tmp_path / "1"), "--workers", "0"])
    assert refused.exit_code == 2 and "--workers" in refused.output


def test_markup_from_recordings_is_shown_as_text(built):
    record = hostile_record(built)
    html = page_path(built, record).read_text(encoding="utf-8")
    page = Page(html)
    assert len(page.all("script")) == 1 and not page.all("img") and not page.all("svg", onload="alert(1)")
    text = page.visible_text
    assert MARKUP in text and HOSTILE_AGENT in text and HOSTILE_NAME in text  # file name, in the path
    assert "<script>alert(1)" not in html and "<b>&" not in html
    policy = page.all("meta", **{"http-equiv": "Content-Security-Policy"})[0]["content"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy  # only its own script runs
    index_html = (built / "report" / "index.html").read_text(encoding="utf-8")
    index = Page(index_html)
    assert len(scripts_run(index)) == 1 and "<svg onload" not in index_html  # the rows are JSON, escaped
    assert HOSTILE_AGENT in [c["agent"] for c in index_data(built)["calls"]]


def test_numbers_are_masked_in_the_pages_by_default(built):
    html = page_path(built, hostile_record(built)).read_text(encoding="utf-8")
    assert PHONE not in html and ID_NUMBER not in html
    assert "*******5678" in html and "**************002X" in html


def test_masking_can_be_turned_off(audited, tmp_path):
    out = fresh_copy(audited, tmp_path)
    write_report(out, mask_pii=False)
    html = page_path(out, hostile_record(out), masked=False).read_text(encoding="utf-8")
    assert PHONE in html and ID_NUMBER in html
    assert "未遮蔽" in (out / "report" / "index.html").read_text(encoding="utf-8")


def test_each_recording_is_decoded_once_and_unchanged_calls_are_not_rebuilt(audited, tmp_path, monkeypatch):
    out = fresh_copy(audited, tmp_path)
    decoded = []
    decode = decoding.decode
    monkeypatch.setattr(decoding, "decode",
                        lambda path, limits: decoded.append(path) or decode(path, limits))
    write_report(out)
    records = [record_of(out, name) for name in CALLS] + [hostile_record(out)]
    flagged = [Path(r["recording"]["path"]) for r in records if r["verdict"] != "pass"]
    assert sorted(decoded) == sorted(flagged) and flagged  # once each, and only the flagged calls
    pages = {p: p.stat().st_mtime_ns for p in (out / "report" / "calls").iterdir()}
    decoded.clear()
    write_report(out)
    assert decoded == [] and {p: p.stat().st_mtime_ns for p in pages} == pages
    audio = {p: p.read_bytes() for p in (out / "report" / "audio").iterdir()}
    write_report(out, load_config(_site(tmp_path, 'max_evidence = 3')))  # other pages, the same audio
    assert decoded == [] and all(p.stat().st_mtime_ns != pages[p] for p in pages)
    assert {p: p.read_bytes() for p in (out / "report" / "audio").iterdir()} == audio
    write_report(out, load_config(_site(tmp_path, "audio_kbps = 16")))  # other audio
    assert sorted(decoded) == sorted(flagged)


def test_the_agents_prosody_is_drawn_against_the_configured_bands(audited, tmp_path):
    out = fresh_copy(audited, tmp_path)
    path = out / "calls" / "night__raised_voice.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    agent = [u for u in record["utterances"] if u["speaker"] == "agent"]
    for number, utterance in enumerate(agent):
        utterance["prosody"] = {"rate_cpm": 400.0 if number == 0 else 250.0, "rate_audio_cpm": 250.0,
                                "level_dbfs": -20.0, "pitch_median_hz": 180.0, "pitch_range_st": 5.0,
                                "monotone": number == 1}
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    write_report(out)
    page = read_page(page_path(out, record))
    marks = page.all("g", **{"class": "mark ok"}) + page.all("g", **{"class": "mark out"})
    assert len(marks) == 3 * len(agent)
    assert len(page.all("g", **{"class": "mark out"})) == 2  # 400 字/分 and the flat utterance
    assert len(page.all("rect", **{"class": "band"})) == 2  # rate and level
    text = page.visible_text
    assert "120-360" in text and "150-300" in text and "低于 -28 过轻" in text


def test_a_call_whose_recording_is_gone_still_gets_its_page(audited, tmp_path):
    out = fresh_copy(audited, tmp_path)
    path = out / "calls" / "night__raised_voice.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record["recording"]["path"] = str(tmp_path / "moved.wav")
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    write_report(out)
    page = read_page(page_path(out, record))
    assert not page.all("audio") and "录音已不在" in page.visible_text
    assert record["utterances"][0]["text"] in page.visible_text


def test_a_record_that_cannot_be_shown_costs_its_page_not_the_report(audited, tmp_path):
    out = fresh_copy(audited, tmp_path)
    path = out / "calls" / "night__compliant.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    del record["utterances"]
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    write_report(out)
    row = next(c for c in index_data(out)["calls"] if c["id"] == "night__compliant")
    assert row["href"] is None and row["problem"] == "KeyError: 'utterances'"
    assert not page_path(out, record).exists() and page_path(out, record_of(out, "raised_voice")).exists()


# --- in Chromium --------------------------------------------------------------------------------


def _browser_missing() -> str:
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium)"
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    return ""


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000"):
        options.add_argument(argument)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path: Path) -> None:
    driver.get_log("browser")  # what an earlier page logged is not this page's
    driver.get(path.as_uri())
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete")


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(condition, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def shown_rows(driver) -> list:
    from selenium.webdriver.common.by import By

    return [row for row in driver.find_elements(By.CSS_SELECTOR, "#calls tbody tr") if row.is_displayed()]


def test_index_loads_filters_searches_and_sorts_and_back_keeps_the_filters(browser, built):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    open_page(driver, built / "report" / "index.html")
    assert console_errors(driver) == []
    summary = json.loads((built / "summary.json").read_text(encoding="utf-8"))
    worklist = [c["id"] for c in index_data(built)["calls"]]
    assert [row.get_attribute("data-call") for row in shown_rows(driver)] == worklist  # worst first

    Select(driver.find_element(By.ID, "filter-verdict")).select_by_value("fail")
    rows = shown_rows(driver)
    assert len(rows) == summary["counts"]["fail"] >= 1
    assert {row.get_attribute("data-verdict") for row in rows} == {"fail"}
    assert driver.find_element(By.ID, "shown").text == f"共 4 通,显示 {len(rows)} 通"
    assert "verdict=fail" in driver.current_url
    rows[0].find_element(By.TAG_NAME, "a").click()  # open a call, then come Back: the filter holds
    wait_for(lambda: "/calls/" in driver.current_url)
    driver.back()
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete"
             and driver.current_url.endswith("index.html#verdict=fail"))
    assert Select(driver.find_element(By.ID, "filter-verdict")).first_selected_option.get_attribute("value") == "fail"
    assert len(shown_rows(driver)) == len(rows)

    driver.find_element(By.ID, "clear").click()
    driver.find_element(By.CSS_SELECTOR, '[data-pick="rule"][data-value="timing.dead_air"]').click()
    with_dead_air = [c["call_id"] for c in summary["calls"] if "timing.dead_air" in c["failed_rules"]]
    assert [row.get_attribute("data-call") for row in shown_rows(driver)] == with_dead_air

    driver.find_element(By.ID, "clear").click()
    Select(driver.find_element(By.ID, "filter-agent")).select_by_visible_text("2077")
    assert {row.get_attribute("data-agent") for row in shown_rows(driver)} == {"2077"}

    driver.find_element(By.ID, "clear").click()  # search: transcript text, call id, agent
    others = " ".join(u["text"] for name in ("raised_voice", "compliant") for u in record_of(built, name)["utterances"])
    said = " ".join(u["text"] for u in record_of(built, "unannounced_hold")["utterances"])
    words = next(said[i:i + 5] for i in range(len(said)) if " " not in said[i:i + 5] and said[i:i + 5] not in others)
    driver.find_element(By.ID, "filter-q").send_keys(words)
    assert [row.get_attribute("data-call") for row in shown_rows(driver)] == ["night__unannounced_hold"]
    assert "q=" in driver.current_url
    search = driver.find_element(By.ID, "filter-q")
    search.clear()
    search.send_keys("RAISED_voice")
    assert [row.get_attribute("data-call") for row in shown_rows(driver)] == ["night__raised_voice"]

    driver.find_element(By.ID, "clear").click()
    sort = driver.find_element(By.CSS_SELECTOR, '[data-sort="score"]')
    sort.click()
    scores = [float(row.get_attribute("data-score")) for row in shown_rows(driver)]
    assert scores == sorted(scores) and len(scores) == 4
    sort.click()
    scores = [float(row.get_attribute("data-score")) for row in shown_rows(driver)]
    assert scores == sorted(scores, reverse=True)
    assert console_errors(driver) == []


def test_the_index_pages_through_many_calls(browser, built, tmp_path):
    """A worklist of 120 calls: 50 to a page, the page kept in the URL."""
    from selenium.webdriver.common.by import By

    from audit.present.report.build import BuildSettings, write_index

    config = load_config()
    verdicts = ("pass", "review", "fail")
    summary = {"run_id": 1, "elapsed_s": 1.0, "asr": {"whisper_model": None, "mode": "sidecar"},
               "config": {"files": ["default.toml"]}, "fails_by_rule": {}, "fails_by_agent": {}, "errors": [],
               "counts": {"files": 120, "audited": 120, "pass": 40, "review": 40, "fail": 40, "errors": 0},
               "calls": [{"call_id": f"night__{n:03d}", "agent_id": "2077", "verdict": verdicts[n % 3],
                          "score": float(n % 97), "failed_rules": [], "transcript_source": "sidecar"}
                         for n in range(120)]}
    settings = BuildSettings.of(tmp_path / "report", config, mask_pii=True)
    write_index(summary, {}, {}, settings)
    driver = browser
    open_page(driver, tmp_path / "report" / "index.html")
    assert len(shown_rows(driver)) == 50 and driver.find_element(By.ID, "page").text == "第 1 / 3 页"
    first = shown_rows(driver)[0].get_attribute("data-call")
    driver.find_element(By.ID, "page-next").click()
    driver.find_element(By.ID, "page-next").click()
    assert len(shown_rows(driver)) == 20 and "page=3" in driver.current_url
    driver.refresh()
    wait_for(lambda: driver.find_element(By.ID, "page").text == "第 3 / 3 页")
    assert driver.find_element(By.ID, "page-next").get_attribute("disabled")
    assert first == min(summary["calls"], key=lambda c: ({"fail": 0, "review": 1, "pass": 2}[c["verdict"]],
                                                        c["score"], c["call_id"]))["call_id"]
    assert console_errors(driver) == []


def test_each_flagged_call_links_the_previous_and_next_in_worklist_order(browser, built):
    from selenium.webdriver.common.by import By

    driver = browser
    flagged = [c for c in index_data(built)["calls"] if c["verdict"] in ("fail", "review")]
    assert len(flagged) >= 2
    open_page(driver, built / "report" / unquote(flagged[0]["href"]))
    assert not driver.find_elements(By.ID, "previous-call")
    visited = [driver.find_element(By.TAG_NAME, "h1").text]
    while driver.find_elements(By.ID, "next-call"):
        driver.find_element(By.ID, "next-call").click()
        wait_for(lambda: driver.find_element(By.TAG_NAME, "h1").text not in visited)
        visited.append(driver.find_element(By.TAG_NAME, "h1").text)
    assert visited == [c["id"] for c in flagged]
    driver.find_element(By.ID, "previous-call").click()
    wait_for(lambda: driver.find_element(By.TAG_NAME, "h1").text == flagged[-2]["id"])
    assert console_errors(driver) == []


def _decide(driver, article, decision: str, reason: str, note: str = "") -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", article)
    Select(article.find_element(By.CSS_SELECTOR, "select.reason")).select_by_visible_text(reason)
    if note:
        article.find_element(By.CSS_SELECTOR, "input.note").send_keys(note)
    article.find_element(By.CSS_SELECTOR, f'button[data-decision="{decision}"]').click()


def test_decisions_survive_a_reload_and_are_exported_imported_and_counted(browser, built, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "out"
    shutil.copytree(built, out, ignore=shutil.ignore_patterns(".audit.lock"))  # the pages are up to date
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = browser
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    page = page_path(out, record_of(out, "raised_voice"))
    open_page(driver, page)
    driver.execute_script("localStorage.clear()")
    open_page(driver, page)
    articles = driver.find_elements(By.CSS_SELECTOR, "article[data-finding]")
    first, second = articles[0], articles[1]
    _decide(driver, first, "confirm", "属实")
    assert "请先填写审核人" in first.find_element(By.CSS_SELECTOR, ".decided").text  # no name, no decision
    driver.find_element(By.ID, "reviewer").send_keys("王芳")
    _decide(driver, first, "confirm", "属实")
    _decide(driver, second, "dismiss", "规则误判", note="客户在开玩笑")
    driver.refresh()  # kept in the browser
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete")
    first, second = driver.find_elements(By.CSS_SELECTOR, "article[data-finding]")[:2]
    assert first.get_attribute("data-decision") == "confirm" and second.get_attribute("data-decision") == "dismiss"
    assert "已驳回(规则误判),王芳" in second.find_element(By.CSS_SELECTOR, ".decided").text
    assert second.find_element(By.CSS_SELECTOR, "input.note").get_attribute("value") == "客户在开玩笑"
    keys = [first.get_attribute("data-finding"), second.get_attribute("data-finding")]
    rules = [first.get_attribute("data-rule"), second.get_attribute("data-rule")]

    open_page(driver, out / "report" / "index.html")  # the index counts them, and exports them
    row = next(r for r in shown_rows(driver) if r.get_attribute("data-call") == "night__raised_voice")
    findings = len(articles)
    assert row.find_element(By.CSS_SELECTOR, "td.reviewed").text == f"2/{findings}"
    driver.find_element(By.ID, "export").click()
    exported = wait_for(lambda: [p for p in downloads.glob("review-*.json")])[0]
    wait_for(lambda: exported.stat().st_size > 0 and "已导出 2 条" in driver.find_element(By.ID, "exported").text)
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert document["schema"] == "audit-review/1"
    assert [d["finding"] for d in document["decisions"]] == keys
    assert console_errors(driver) == []

    from typer.testing import CliRunner

    from audit.cli import app

    def cli(*args):  # in this process: each `python -m audit` would spend seconds importing
        done = CliRunner().invoke(app, [str(a) for a in args])
        done.returncode = done.exit_code
        return done

    imported = cli("review", "import", exported, "--out", out)
    assert imported.returncode == 0, imported.output
    assert "2 decisions added, 0 updated, 0 already imported" in imported.stdout
    again = cli("review", "import", exported, "--out", out)  # idempotent
    assert "0 decisions added, 0 updated, 2 already imported" in again.stdout
    import sqlite3

    with sqlite3.connect(out / "audit.sqlite") as db:
        stored = db.execute("SELECT finding_key, call_id, rule_id, decision, reason, note, reviewer"
                            " FROM reviews ORDER BY decided_at").fetchall()
    assert stored == [(keys[0], "night__raised_voice", rules[0], "confirm", "属实", "", "王芳"),
                      (keys[1], "night__raised_voice", rules[1], "dismiss", "规则误判", "客户在开玩笑", "王芳")]
    status = cli("status", out)
    flagged = sum(sum(r["status"] in ("fail", "unsure") for r in record_of(out, name)["results"])
                  for name in CALLS) + sum(r["status"] in ("fail", "unsure") for r in hostile_record(out)["results"])
    assert f"findings reviewed: 2 of {flagged} (open {flagged - 2})" in status.stdout
    cells = [line.replace("│", " ").split() for line in status.stdout.splitlines()]
    by_rule = {row[0]: row for row in cells if row and row[0] in rules}
    assert by_rule[rules[0]][-3:] == ["1", "0", "0%"] and by_rule[rules[1]][-3:] == ["0", "1", "100%"]
    exported_csv = cli("export", out, "--csv", tmp_path / "calls.csv", "--reviews", tmp_path / "rules.csv")
    assert exported_csv.returncode == 0, exported_csv.output
    rates = {r.split(",")[0]: r.split(",")[-1] for r in
             (tmp_path / "rules.csv").read_text(encoding="utf-8-sig").splitlines()[1:]}
    assert rates[rules[0]] == "0.0" and rates[rules[1]] == "1.0"

    write_report(out)  # the next report shows the imported decisions, in any browser
    driver.execute_script("localStorage.clear()")
    open_page(driver, page)
    second = driver.find_elements(By.CSS_SELECTOR, "article[data-finding]")[1]
    assert second.get_attribute("data-decision") == "dismiss"
    assert "已导入" in second.find_element(By.CSS_SELECTOR, ".decided").text
    assert next(c for c in index_data(out)["calls"] if c["id"] == "night__raised_voice")["stored"] == keys


def play_times(driver, player) -> list[float]:
    """Where a playing player is, sampled over half a second."""
    times = []
    for _ in range(5):
        time.sleep(0.12)
        times.append(driver.execute_script("return arguments[0].currentTime", player))
    return times


def test_a_flagged_call_plays_its_compressed_audio_and_a_clip_button_seeks_it(browser, built):
    from selenium.webdriver.common.by import By

    driver = browser
    record = record_of(built, "raised_voice")
    open_page(driver, page_path(built, record))
    player = driver.find_element(By.ID, "call-audio")
    assert player.get_attribute("src").endswith(".ogg")
    wait_for(lambda: driver.execute_script("return arguments[0].readyState >= 1", player))
    duration = driver.execute_script("return arguments[0].duration", player)
    assert duration == pytest.approx(record["recording"]["duration_s"], abs=0.05)  # Chromium decodes it
    driver.execute_script("arguments[0].play()", player)
    played = play_times(driver, player)
    assert played == sorted(played) and played[-1] > played[0]  # it plays
    button = max(driver.find_elements(By.CSS_SELECTOR, "article.finding button.in-call"),
                 key=lambda b: float(b.get_attribute("data-seek")))
    start = float(button.get_attribute("data-seek"))
    assert start > played[-1] + 2.0  # a seek forward, past where it was
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    now = wait_for(lambda: driver.execute_script(
        "const p = arguments[0]; return p.currentTime >= arguments[1] - 0.05 && p.currentTime", player, start))
    assert now < start + 2.0  # at the finding's start, playing on from there
    played = play_times(driver, player)
    assert played == sorted(played) and played[-1] > played[0] >= start - 0.05
    driver.execute_script("arguments[0].pause()", player)
    assert console_errors(driver) == []
    _keep_screenshot(driver, built.parent / "call-page.png")


def test_a_transcript_time_stamp_seeks_the_call_player(browser, built):
    from selenium.webdriver.common.by import By

    driver = browser
    open_page(driver, page_path(built, record_of(built, "raised_voice")))
    stamp = driver.find_element(By.CSS_SELECTOR, "#u-4 button.seek")
    target = float(stamp.get_attribute("data-seek"))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", stamp)
    stamp.click()
    player = driver.find_element(By.ID, "call-audio")
    now = wait_for(lambda: driver.execute_script(
        "const p = arguments[0]; return p.currentTime >= arguments[1] - 0.05 && p.currentTime", player, target))
    assert target - 0.05 <= now < target + 2.0
    assert console_errors(driver) == []


def test_hostile_text_renders_as_text_in_the_browser(browser, built):
    from selenium.webdriver.common.by import By

    driver = browser
    open_page(driver, page_path(built, hostile_record(built)))
    assert console_errors(driver) == []  # a script that ran or was blocked by the CSP would log
    transcript = driver.find_element(By.CSS_SELECTOR, "ol.transcript").text
    assert MARKUP in transcript
    assert driver.execute_script("return document.scripts.length") == 1
    assert driver.execute_script("return document.images.length") == 0
    body = driver.find_element(By.TAG_NAME, "body").text
    assert PHONE not in body and ID_NUMBER not in body and "*******5678" in body
    assert HOSTILE_AGENT in body


def _keep_screenshot(driver, shot: Path) -> None:
    """A full-page picture of the current page: at `shot` (pytest's tmp dir) and in out/test-artifacts/."""
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(height + 40, 8000))
    assert driver.save_screenshot(str(shot))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report-call-page.png")
    driver.set_window_size(1280, 1000)


def test_a_number_in_a_file_name_is_masked_in_every_name_and_page(audited, tmp_path):
    out = fresh_copy(audited, tmp_path)
    record = record_of(out, "compliant") | {"call_id": "night__138_1234_5678"}  # from `138 1234 5678.wav`
    (out / "calls" / "night__138_1234_5678.json").write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    row = next(c for c in summary["calls"] if c["call_id"] == "night__compliant")
    summary["calls"].append(row | {"call_id": "night__138_1234_5678"})
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    write_report(out)
    written = list((out / "report").rglob("*"))
    assert any("____5678" in path.name for path in written)  # its page
    for path in written:
        assert "138_1234" not in path.name and "1234_5678" not in path.name
        if path.suffix in (".html", ".json"):
            text = path.read_text(encoding="utf-8")
            assert "138_1234" not in text and "1234_5678" not in text, path


def test_an_unsure_finding_and_the_key_terms_read_by_sound_are_shown(audited, tmp_path):
    out = fresh_copy(audited, tmp_path)
    name = CALLS[0]
    record = record_of(out, name)
    failed = next(r for r in record["results"] if r["status"] == "fail")
    failed["status"] = "unsure"
    record["asr_model"] = "openai-whisper:models/base.pt"
    record["term_corrections"] = [{"speaker": "agent", "utterance_start": 0.6, "heard": "心和通信", "term": "星河通信"}]
    (out / "calls" / f"night__{name}.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    write_report(out)
    page = read_page(page_path(out, record))
    finding = page.visible_text.split("问题点", 1)[1].split("转写", 1)[0]
    severity = {"critical": "关键", "major": "重要", "minor": "一般"}[failed["severity"]]
    assert f"{failed['rule_id']} {severity}" in finding and "存疑" in finding
    assert "openai-whisper:models/base.pt" in page.visible_text
    assert "听到 心和通信,按 星河通信 处理" in page.visible_text


def test_a_call_page_says_why_its_verdict_and_what_each_finding_costs(built, audited):
    config = load_config()
    weights, labels = config.weights, config.labels.rules
    severity = {"critical": "关键", "major": "重要", "minor": "一般"}
    for name in CALLS:
        record = record_of(audited, name)
        text = read_page(page_path(built, record)).visible_text
        failed = [r for r in record["results"] if r["status"] == "fail"]
        critical = [r["rule_id"] for r in failed if r["severity"] == "critical"]
        if record["verdict"] == "pass":
            assert "合格:没有规则未通过。" in text
        elif critical:
            assert f"不合格:关键规则 {labels[critical[0]].name}({critical[0]})" in text
        elif record["verdict"] == "fail":
            assert f"不合格:得分 {record['score']:g} 低于合格线 fail_below" in text
        else:
            assert f"需复核:{len(failed)} 条规则未通过" in text
        for result in failed:  # its category and Chinese name from the config, its severity and points
            label = labels[result["rule_id"]]
            assert (f"{label.category} {label.name} {result['rule_id']} {severity[result['severity']]} "
                    f"\u2212{weights[result['rule_id']]:g} 分") in text


# --- findings shown truthfully (issue 17, item 5) -------------------------------------------------


def test_a_measured_event_is_shown_as_an_event_not_as_words(built):
    page = read_page(page_path(built, record_of(built, "unannounced_hold")))
    finding = page.visible_text.split("问题点", 1)[1].split("其他结果", 1)[0]
    assert "事件:静音25秒,未告知客户" in finding and "(静音25秒" not in finding  # not a quote of the agent
    links = [a["href"] for a in page.all("a") if a.get("href", "").startswith("#e-")]
    rows = page.all("li", **{"class": "event-row"})
    assert links and {link[1:] for link in links} <= {row["id"] for row in rows}
    transcript = page.visible_text.split("转写", 1)[1]
    assert "静音25秒,未告知客户(24.9 秒)" in transcript


def test_a_missing_element_says_where_it_was_due_and_plays_no_correct_speech(audited, tmp_path):
    out = fresh_copy(audited, tmp_path)
    path = out / "calls" / "night__compliant.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    opening = next(r for r in record["results"] if r["rule_id"] == "opening.golden_30s")
    start, due = opening["details"]["answer_latest_s"], opening["details"]["deadline_s"]
    # as a call without 工号 records it
    opening.update(status="fail", message="缺少工号", missing=["工号"], expected_window=[start, due])
    opening["details"]["elements"]["agent_id"] = None
    record["verdict"] = "review"  # flagged: its page holds the audio
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    write_report(out)
    html = page_path(out, record).read_text(encoding="utf-8")
    page = Page(html)
    article = html.split('data-rule="opening.golden_30s"', 1)[1].split("</article>", 1)[0]
    assert "<audio" not in article and 'class="fail"' not in article  # the greeting it said is not the fault
    assert 'class="pass"' in article and "符合要求" in article
    assert "缺少:工号" in article and "应在" in article and f"接听后 {due - start:g} 秒内" in article
    assert len(page.all("rect", **{"class": "due"})) == 1 and not page.all("rect", **{"class": "flag"})
    assert not page.all("mark", **{"class": "fail"})
    assert start == 0.0 or f'data-seek="{start}"' in article


def test_each_finding_has_its_own_lane_on_the_timeline(built):
    record = record_of(built, "raised_voice")
    page = read_page(page_path(built, record))
    lanes: dict[str, set[str]] = {}
    link = None
    for tag, attrs in page.tags:
        if tag == "a" and attrs.get("href", "").startswith("#finding-"):
            link = attrs["href"]
        elif tag == "rect" and attrs.get("class") == "flag":
            lanes.setdefault(link, set()).add(attrs["y"])
    flagged = [r for r in record["results"] if r["status"] in ("fail", "unsure") and r["evidence"]]
    assert len(lanes) == len(flagged) and all(len(ys) == 1 for ys in lanes.values())
    assert len({next(iter(ys)) for ys in lanes.values()}) == len(lanes)  # no finding hides another


def test_a_jump_to_the_transcript_is_not_hidden_under_the_player(browser, built):
    from selenium.webdriver.common.by import By

    driver = browser
    open_page(driver, page_path(built, record_of(built, "raised_voice")))
    link = driver.find_elements(By.CSS_SELECTOR, 'article.finding a[href^="#u-"]')[-1]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    target = driver.find_element(By.ID, link.get_attribute("href").split("#")[1])
    wait_for(lambda: driver.execute_script("return location.hash") == "#" + target.get_attribute("id"))
    player = driver.find_element(By.CSS_SELECTOR, ".player")
    top, covered = driver.execute_script(
        "return [arguments[0].getBoundingClientRect().top, arguments[1].getBoundingClientRect().bottom]",
        target, player)
    assert top >= covered
    assert driver.execute_script("return getComputedStyle(arguments[0]).backgroundColor", target) != "rgba(0, 0, 0, 0)"


def test_keys_move_between_findings_and_decide_them(browser, built):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    page = page_path(built, record_of(built, "raised_voice"))
    open_page(driver, page)
    driver.execute_script("localStorage.clear(); localStorage.setItem('audit-reviewer', '王芳')")
    open_page(driver, page)
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("j")  # the second finding
    body.send_keys("x")
    articles = driver.find_elements(By.CSS_SELECTOR, "article[data-finding]")
    assert driver.execute_script("return location.hash") == "#" + articles[1].get_attribute("id")
    assert [a.get_attribute("data-decision") for a in articles[:3]] == ["", "dismiss", ""]
    body.send_keys("k")
    body.send_keys("c")
    assert articles[0].get_attribute("data-decision") == "confirm"
    note = articles[0].find_element(By.CSS_SELECTOR, "input.note")
    note.send_keys("x" + Keys.TAB)  # typing in a field decides nothing
    assert articles[0].get_attribute("data-decision") == "confirm"
    body.send_keys("n")
    wait_for(lambda: driver.find_element(By.TAG_NAME, "h1").text != "night__raised_voice")
    driver.execute_script("localStorage.clear()")
    assert console_errors(driver) == []


def test_an_evidence_button_seeks_the_call_player_and_the_playhead_follows(browser, built):
    from selenium.webdriver.common.by import By

    driver = browser
    open_page(driver, page_path(built, record_of(built, "raised_voice")))
    button = driver.find_elements(By.CSS_SELECTOR, "article.finding button.in-call")[0]
    start = float(button.get_attribute("data-seek"))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    player = driver.find_element(By.ID, "call-audio")
    wait_for(lambda: driver.execute_script("return arguments[0].currentTime > arguments[1] + 0.2", player, start))
    x = float(driver.find_element(By.ID, "playhead").get_attribute("x1").removesuffix("%"))
    duration = float(driver.find_element(By.ID, "timeline").get_attribute("data-duration"))
    assert 100 * start / duration <= x <= 100 * (start + 2.5) / duration  # percent of the plot, as its spans
    playing = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".transcript li.playing"))
    assert float(playing[0].get_attribute("data-start")) <= start + 2.5 <= float(playing[0].get_attribute("data-end")) + 2.5
    driver.execute_script("arguments[0].pause()", player)
    assert console_errors(driver) == []


# --- a phone, charts, colour, names (issue 17, item 6) -------------------------------------------


def test_at_420_px_nothing_scrolls_sideways_and_chart_text_is_legible(browser, built):
    driver = browser
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # a window cannot be made narrower than 500
                           {"width": 420, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    try:
        flagged = [c for c in index_data(built)["calls"] if c["verdict"] != "pass"]
        for page in (built / "report" / "index.html", *(built / "report" / unquote(c["href"]) for c in flagged)):
            open_page(driver, page)
            assert driver.execute_script("return innerWidth") == 420
            width = driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= 420, f"{page.name} is {width} px wide"
            if page.name == "index.html":
                assert driver.execute_script("return document.querySelectorAll('#calls tbody tr').length") == 4
                continue
            rendered = driver.execute_script("""return Array.from(document.querySelectorAll('svg text'))
                .filter((t) => getComputedStyle(t).display !== 'none')
                .map((t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a);""")
            assert rendered and min(rendered) >= 11, page.name  # px on the screen, after any scaling
            overlapping = driver.execute_script("""const ticks = Array.from(document.querySelectorAll('#timeline text.tick'))
                .filter((t) => getComputedStyle(t).display !== 'none').map((t) => t.getBoundingClientRect());
                return ticks.some((box, i) => i && box.left < ticks[i - 1].right);""")
            assert not overlapping  # the time labels that are shown fit side by side
            assert console_errors(driver) == []
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_players_have_accessible_names(browser, built):
    from selenium.webdriver.common.by import By

    driver = browser
    open_page(driver, page_path(built, record_of(built, "raised_voice")))
    players = driver.find_elements(By.TAG_NAME, "audio")
    assert players and all(player.accessible_name for player in players)  # as Chromium exposes them
    buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, "button.seek") if b.is_displayed()]
    assert buttons and all(button.accessible_name.startswith(("从", "在整通录音中从")) for button in buttons)


def test_red_and_green_are_told_apart_without_colour(browser, audited, tmp_path):
    out = fresh_copy(audited, tmp_path)
    path = out / "calls" / "night__raised_voice.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    for number, utterance in enumerate(u for u in record["utterances"] if u["speaker"] == "agent"):
        utterance["prosody"] = {"rate_cpm": 400.0 if number == 0 else 250.0, "rate_audio_cpm": 250.0,
                                "level_dbfs": -20.0, "pitch_median_hz": 180.0, "pitch_range_st": 5.0}
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    opening = record_of(out, "compliant")  # a match that passed, in green
    write_report(out)
    driver = browser

    def style(selector: str, *names: str) -> list[str]:
        return driver.execute_script("const s = getComputedStyle(document.querySelector(arguments[0]));"
                                     "return arguments[1].map((n) => s.getPropertyValue(n));", selector, list(names))

    open_page(driver, page_path(out, record))
    failed = style("mark.fail", "text-decoration-line", "text-decoration-style")
    assert failed == ["underline", "wavy"]
    out_of_band, in_band = (style(f".mark.{kind} line", "stroke-dasharray", "stroke-width") for kind in ("out", "ok"))
    assert out_of_band != in_band and out_of_band[0] != "none"  # dashed and thicker, not only red
    limit, average = (style(f"line.guide.{kind}", "stroke-dasharray") for kind in ("limit", "average"))
    assert limit != average
    open_page(driver, page_path(out, opening))
    assert style("mark.pass", "text-decoration-line", "text-decoration-style") == ["underline", "dotted"]
