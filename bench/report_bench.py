"""The report at a night's scale (issue 17): the call pages and their audio for 1,000 calls, and
an index for 10,000 synthetic call summaries opened in headless Chromium.

Pages (`--pages`, 1,000): the sample calls of `fixtures/calls` are audited once (`audit run --asr
sidecar`), then their records are copied under new ids into a night of `--pages` calls, a
`--flagged` share of them (0.4) copies of the flagged calls and the rest of the call that passed;
each flagged copy gets a recording of its own (the sample's with one sample changed, so its SHA-256
and its audio file differ, as every call's do in a night), the passed ones name the sample. The
report is built from scratch with one worker process and again with `--workers` (default: one per
CPU core), then every page once more with the audio kept (another `[report] max_evidence`: what a
template or label change costs), and last as `audit run` leaves it: the flagged calls' audio
encoded by the run's workers while they had the call (`encode_ahead`, timed on `--workers`
processes: the cost the audit carries), then the pages built from scratch. Printed: the report's
size, its audio per minute of flagged audio (the calls whose pages hold audio: `[report]
audio_verdicts`), the build time per call with one process and with the workers, the speed-up,
the rebuild's time per call, and the encoding in the run's workers and the build after it.

Index (`--calls`, 10,000): each call gets a summary row (verdict, score, failed rules, agent) and
what the index searches: the keys of its findings and 40 utterances of transcript text drawn from
the sample calls. Printed: the time to write the index, its size, and in Chromium the time from
navigation to the first page of rows shown (the load event, after the script rendered), then the
time of a text search and of a verdict filter over all calls.

Asserts nothing: it prints what happened.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_night(calls: int, seed: int = 0) -> tuple[dict, dict]:
    """A summary of `calls` calls and what the index searches for each."""
    from audit.present.report.worklist import CallSearch

    rng = random.Random(seed)
    said = [u["text"] for path in sorted((ROOT / "fixtures" / "calls").glob("*.transcript.json"))
            for u in json.loads(path.read_text(encoding="utf-8"))["utterances"]]
    rules = ["text.active_listening", "text.closing", "timing.dead_air", "text.forbidden.shirk",
             "opening.golden_30s", "prosody.rate", "timing.cut_off", "text.polite_address"]
    rows, searches = [], {}
    for number in range(calls):
        verdict = rng.choices(["pass", "review", "fail"], [0.6, 0.3, 0.1])[0]
        failed = [] if verdict == "pass" else rng.sample(rules, rng.randint(1, 4))
        call_id = f"2026-11-22__team{number % 40}__call{number:05d}"
        rows.append({"call_id": call_id, "agent_id": f"{1000 + number % 300}", "verdict": verdict,
                     "score": float(100 - 10 * len(failed) - rng.randint(0, 9) if failed else 100),
                     "failed_rules": failed, "transcript_source": "whisper"})
        searches[call_id] = CallSearch(tuple(f"{number:08x}{i:012x}" for i in range(len(failed))),
                                       " ".join(rng.choice(said) for _ in range(40)))
    counts = {"files": calls, "audited": calls, "errors": 0,
              **{v: sum(r["verdict"] == v for r in rows) for v in ("pass", "review", "fail")}}
    fails: dict[str, int] = {}
    for row in rows:
        for rule in row["failed_rules"]:
            fails[rule] = fails.get(rule, 0) + 1
    summary = {"run_id": 1, "elapsed_s": 0.0, "asr": {"whisper_model": "base", "mode": "whisper"},
               "config": {"files": ["default.toml"]}, "counts": counts, "fails_by_rule": fails,
               "fails_by_agent": {}, "errors": [], "calls": rows}
    return summary, searches


def audited_samples(root: Path) -> Path:
    """The sample calls audited once, from their sidecar transcripts; returns the output folder."""
    out = root / "samples"
    done = subprocess.run([sys.executable, "-m", "audit", "run", str(ROOT / "fixtures" / "calls"), "--out", str(out),
                           "--asr", "sidecar"], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"audit run exit {done.returncode}: {done.stderr[-2000:]}")
    return out


def generated_night(samples: Path, out: Path, calls: int, flagged_share: float) -> None:
    """`calls` copies of the audited sample calls under new ids in `out` (records and summary): a
    `flagged_share` of them copies of the flagged calls, in turn, and the rest of a passed call."""
    summary = json.loads((samples / "summary.json").read_text(encoding="utf-8"))
    rows = {r["call_id"]: r for r in summary["calls"]}
    flagged = sorted(c for c, r in rows.items() if r["verdict"] != "pass")
    passed = sorted(c for c, r in rows.items() if r["verdict"] == "pass")
    (out / "calls").mkdir(parents=True)
    (out / "recordings").mkdir()
    night, fails, agents = [], {}, {}
    for number in range(calls):
        pool = flagged if number < round(calls * flagged_share) else passed
        source = pool[number % len(pool)]
        call_id = f"2026-11-22__team{number % 40}__call{number:05d}"
        record = json.loads((samples / "calls" / f"{source}.json").read_text(encoding="utf-8"))
        record["call_id"] = call_id
        if pool is flagged:
            suffix = Path(record["recording"]["path"]).suffix
            record["recording"] = own_recording(record["recording"], out / "recordings" / f"{call_id}{suffix}", number)
        (out / "calls" / f"{call_id}.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        row = rows[source] | {"call_id": call_id, "agent_id": f"{1000 + number % 300}"}
        night.append(row)
        agent = agents.setdefault(row["agent_id"], {"calls": 0, "fails": {}})
        agent["calls"] += 1
        for rule in row["failed_rules"]:
            fails[rule] = fails.get(rule, 0) + 1
            agent["fails"][rule] = agent["fails"].get(rule, 0) + 1
    counts = {"files": calls, "audited": calls, "audited_now": calls, "skipped": 0, "errors": 0,
              **{v: sum(r["verdict"] == v for r in night) for v in ("pass", "review", "fail")}}
    (out / "summary.json").write_text(json.dumps(summary | {"counts": counts, "calls": night, "errors": [],
                                                            "fails_by_rule": fails, "fails_by_agent": agents},
                                                 ensure_ascii=False), encoding="utf-8")


def own_recording(recording: dict, path: Path, number: int) -> dict:
    """A copy of the recording with sample `number` changed (another SHA-256 for every copy, the
    same length), and the record's `recording` naming it."""
    import hashlib

    import soundfile

    info = soundfile.info(recording["path"])
    samples, rate = soundfile.read(recording["path"], dtype="int16", always_2d=True)
    at = number % len(samples)
    samples[at, 0] = 8000 if samples[at, 0] < 0 else -8000  # far enough to change any codec's bytes
    soundfile.write(path, samples, rate, format=info.format, subtype=info.subtype)
    return recording | {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def encode_as_the_run_does(paths: list[Path], report: Path) -> None:
    """What `audit run`'s worker does after auditing a call: the flagged call's report audio."""
    from audit.configload import load_config
    from audit.present.report.audio import encode_ahead

    config = load_config()
    for path in paths:
        record = json.loads(path.read_text(encoding="utf-8"))
        if encode_ahead(record, config.decode, report, config.report.audio_verdicts, config.report.audio_kbps) is None:
            raise SystemExit(f"{record['recording']['path']}: not encoded")


def encoded_in_workers(out: Path, workers: int) -> float:
    """Seconds the run's `workers` processes spend encoding every flagged call's audio."""
    from concurrent.futures import ProcessPoolExecutor

    flagged = [p for p in sorted((out / "calls").glob("*.json"))
               if json.loads(p.read_text(encoding="utf-8"))["verdict"] != "pass"]
    shares = [flagged[i::workers] for i in range(workers)]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(encode_as_the_run_does, shares, [out / "report"] * workers))
    return time.perf_counter() - started


def built_in(out: Path, workers: int, fresh: bool = True, config=None) -> float:
    """Seconds to build the report (from scratch when `fresh`) with `workers` processes."""
    from audit.present.report import write_report

    if fresh:
        shutil.rmtree(out / "report", ignore_errors=True)
    started = time.perf_counter()
    write_report(out, config, workers=workers)
    return time.perf_counter() - started


def bench_pages(calls: int, flagged_share: float, workers: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="report-pages-bench-"))
    try:
        samples = audited_samples(root)
        out = root / "night"
        generated_night(samples, out, calls, flagged_share)
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        one = built_in(out, 1)
        many = built_in(out, workers)
        from audit.configload import load_config

        site = root / "site.toml"
        site.write_text("[report]\nmax_evidence = 19\n", encoding="utf-8")
        again = built_in(out, workers, fresh=False, config=load_config(site))
        report = out / "report"
        audio = sum(p.stat().st_size for p in (report / "audio").iterdir())
        total = sum(p.stat().st_size for p in report.rglob("*") if p.is_file())
        records = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (out / "calls").glob("*.json")}
        with_audio = [r for r in records.values() if r["verdict"] != "pass"]
        minutes = sum(r["recording"]["duration_s"] for r in with_audio) / 60
        counts = summary["counts"]
        print(f"pages for {calls} generated calls ({counts['fail']} fail, {counts['review']} review, "
              f"{counts['pass']} pass; {minutes:.0f} min of flagged audio, {len(with_audio)} audio files):")
        print(f"  report {total / 2**20:.1f} MB, of it audio {audio / 2**20:.1f} MB: "
              f"{audio / 2**20 / minutes:.3f} MB per minute of flagged audio (passed calls: none)")
        print(f"  build with 1 process: {one:.1f} s, {one / calls * 1000:.0f} ms per call "
              f"({one / len(with_audio) * 1000:.0f} ms per flagged call if all the time were theirs)")
        print(f"  build with {workers} processes: {many:.1f} s, {many / calls * 1000:.0f} ms per call; "
              f"speed-up {one / many:.2f}x on {os.cpu_count()} CPU cores")
        print(f"  every page again, the audio kept (another [report] max_evidence), {workers} processes: "
              f"{again:.1f} s, {again / calls * 1000:.0f} ms per call")
        shutil.rmtree(out / "report")
        ahead = encoded_in_workers(out, workers)
        after_run = built_in(out, workers, fresh=False)
        print(f"  as after `audit run`: the audio encoded by its {workers} workers in {ahead:.1f} s "
              f"({ahead * workers / len(with_audio) * 1000:.0f} ms of a worker per flagged call, "
              f"{ahead * workers / minutes:.2f} s per minute of flagged audio), then the report "
              f"in {after_run:.1f} s, {after_run / calls * 1000:.0f} ms per call")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--window-size=1280,1000",
                     f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-bench-')}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1_000, help="generated calls whose pages are built (0: none)")
    parser.add_argument("--flagged", type=float, default=0.4, help="share of them that are flagged")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes of the second build")
    parser.add_argument("--calls", type=int, default=10_000, help="synthetic calls in the index")
    parser.add_argument("--runs", type=int, default=3, help="loads measured (the median is printed)")
    args = parser.parse_args()
    if args.pages:
        bench_pages(args.pages, args.flagged, args.workers)

    from audit.configload import load_config
    from audit.present.report.build import BuildSettings, write_index

    config = load_config()
    summary, searches = synthetic_night(args.calls)
    folder = Path(tempfile.mkdtemp(prefix="report-bench-")) / "report"
    settings = BuildSettings.of(folder, config, mask_pii=True)
    started = time.perf_counter()
    index = write_index(summary, {c["call_id"]: f"calls/{c['call_id']}.html" for c in summary["calls"]}, {},
                        settings, searches)
    written = time.perf_counter() - started
    print(f"index for {args.calls} calls: written in {written:.2f} s, {index.stat().st_size / 2**20:.1f} MB")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("chromium / chromedriver not installed: no load time measured")
        return
    from selenium.webdriver.common.by import By

    driver = browser()
    try:
        loads, searches_s, filters_s = [], [], []
        for _ in range(args.runs):
            driver.get("about:blank")
            driver.get(index.as_uri())
            loads.append(driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;") / 1000)
            rows = len(driver.find_elements(By.CSS_SELECTOR, "#calls tbody tr"))
            searches_s.append(driver.execute_script(
                "const q = document.getElementById('filter-q'); const t = performance.now();"
                "q.value = '宽带'; q.dispatchEvent(new Event('input')); return performance.now() - t;") / 1000)
            found = driver.find_element(By.ID, "shown").text
            filters_s.append(driver.execute_script(
                "const s = document.getElementById('filter-verdict'); const t = performance.now();"
                "s.value = 'fail'; s.dispatchEvent(new Event('change')); return performance.now() - t;") / 1000)
        median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
        print(f"load in headless Chromium (navigation to the first {rows} rows shown): median {median(loads):.2f} s "
              f"of {args.runs} ({', '.join(f'{t:.2f}' for t in loads)})")
        print(f"text search over every call's transcript ('宽带', {found}): median {median(searches_s) * 1000:.0f} ms; "
              f"verdict filter: median {median(filters_s) * 1000:.0f} ms")
    finally:
        driver.quit()
        shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
