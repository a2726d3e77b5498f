"""The worklist at a night's scale (issue 17): an index for 10,000 synthetic call summaries, opened
in headless Chromium.

Each call gets a summary row (verdict, score, failed rules, agent) and what the index searches: the
keys of its findings and 40 utterances of transcript text drawn from the sample calls. Printed: the
time to write the index, its size, and in Chromium the time from navigation to the first page of
rows shown (the load event, after the script rendered), then the time of a text search and of a
verdict filter over all calls. Asserts nothing: it prints what happened.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_night(calls: int, seed: int = 0) -> tuple[dict, dict]:
    """A summary of `calls` calls and what the index searches for each."""
    from audit.report.worklist import CallSearch

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
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="loads measured (the median is printed)")
    args = parser.parse_args()

    from audit.config import load_config
    from audit.report.build import BuildSettings, write_index

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
