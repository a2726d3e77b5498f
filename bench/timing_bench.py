"""Timing accuracy on synthetic calls with known events: `make bench` (or run this file).

Prints, per condition (cadence, SNR, codec, hold with silence or music), how often the ring count is
exact and how often the answer, the first words, the hold and the overlap land within the issue's
tolerances (0.25 s, 0.25 s, 0.3 s, 0.3 s), with the median and worst errors; then false ringback
detections on speech, music and silence; then calls whose answer the audio cannot show (line noise
on the agent channel from the start): whether the measured answer window holds the true answer, how
wide it is, and how `timing.first_words` judged them against the true delay, beside what measuring
from the end of the last ring (the judgement before the window) would have said.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from synthcalls import (CADENCES, RATE, errors, first_words_outcome, hold_music,  # noqa: E402
                        make_call, measure, measure_with_speech, speech_clips)

from audit.configload import load_config  # noqa: E402
from audit.measure.ringback import find_ringback  # noqa: E402

LIMITS = {"answer": 0.25, "first_words": 0.25, "hold": 0.3, "overlap": 0.3}


def run(seeds: int) -> None:
    config = load_config()
    rows: dict[str, list[dict]] = defaultdict(list)
    started = time.perf_counter()
    calls = 0
    for seed in range(seeds):
        for cadence in CADENCES:
            for snr in (10, 20, 30):
                for mulaw in (False, True):
                    hold_kind = ("silence", "music")[seed % 2]
                    call = make_call(seed * 1000 + snr, cadence, snr, mulaw, hold_kind=hold_kind)
                    found = errors(call, measure(call, config))
                    for key in ("all", f"snr {snr} dB", f"cadence {cadence}",
                                f"{'mu-law' if mulaw else 'pcm16'}", f"hold: {hold_kind}"):
                        rows[key].append(found)
                    calls += 1
    elapsed = time.perf_counter() - started
    print(f"timing accuracy on {calls} synthetic calls ({elapsed:.0f} s)")
    print(f"{'condition':<16}{'rings exact':>12}" + "".join(f"{k + ' ok':>16}" for k in LIMITS)
          + "   median / max error (s): answer, first words, hold, overlap")
    for key, found in rows.items():
        line = f"{key:<16}{_share([f['ring_count_exact'] for f in found]):>12}"
        spread = []
        for name, limit in LIMITS.items():
            values = [f[name] for f in found if f[name] is not None]
            line += f"{_share([v <= limit for v in values]):>16}"
            finite = [v for v in values if np.isfinite(v)]
            spread.append(f"{statistics.median(finite):.2f}/{max(finite):.2f}" if finite else "-")
        print(line + "   " + ", ".join(spread))

    rng = np.random.default_rng(7)
    speech = np.concatenate(speech_clips()["agent"] + speech_clips()["customer"])
    signals = {"speech": speech, "music": hold_music(120.0, rng),
               "silence": rng.standard_normal(RATE * 60).astype(np.float32) * 1e-3}
    print("false ringback detections (bursts found):")
    for name, signal in signals.items():
        import librosa

        audio = librosa.resample(signal, orig_sr=RATE, target_sr=16000)[None, :]
        found = {c: len(find_ringback(audio, 1e9, _with(config, c))) for c in CADENCES}
        print(f"  {name:<8} {len(signal) / RATE:5.0f} s  " + "  ".join(f"{c}: {n}" for c, n in found.items()))


def answer_windows(seeds: int) -> None:
    """Calls with no audible line opening: the answer window and the first-words verdicts."""
    config = load_config()
    limit = config.rules["timing.first_words"].params.max_delay_s
    inside, widths, exact = [], [], 0
    verdicts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    old_false = old_total_fail = 0
    for seed in range(seeds):
        for cadence in CADENCES:
            call = make_call(90000 + seed, cadence, snr_db=(10, 20, 30)[seed % 3], mulaw=seed % 2 == 1,
                             rings=1 + seed % 5, hold_kind="none", line_opens=False)
            speech, timing = measure_with_speech(call, config)
            inside.append(timing.answer_s - 0.05 <= call.answer_s <= timing.answer_latest_s + 0.05)
            widths.append(timing.answer_latest_s - timing.answer_s)
            exact += timing.answer_exact
            outcome = first_words_outcome(timing, speech, config)
            late = call.first_words_s - call.answer_s > limit
            verdicts["truly late" if late else "truly prompt"][outcome.status] += 1
            if timing.first_words_delay_s > limit:  # measured from the end of the last ring
                old_total_fail += 1
                old_false += not late
    calls = len(inside)
    print(f"answer not audible (line noise from the start), {calls} calls, all cadences, 10-30 dB, PCM and mu-law:")
    print(f"  window holds the true answer: {_share(inside)}; exact (a ring cut short by the answer): "
          f"{exact} of {calls}; width median {statistics.median(widths):.2f} s, max {max(widths):.2f} s")
    print(f"  timing.first_words (limit {limit:g} s)   pass  fail  not measurable")
    for truth in ("truly prompt", "truly late"):
        row = verdicts[truth]
        print(f"    {truth:<30}{row['pass']:>6}{row['fail']:>6}{row['not_measurable']:>16}")
    print(f"  measured from the end of the last ring instead: {old_total_fail} fails, "
          f"{old_false} of them on agents who spoke within {limit:g} s of the real answer")


def _with(config, cadence):
    import dataclasses

    return dataclasses.replace(config.timing, ringback=cadence)


def _share(flags: list[bool]) -> str:
    return f"{100 * sum(flags) / len(flags):.0f}% of {len(flags)}" if flags else "-"


if __name__ == "__main__":
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    run(seeds)
    answer_windows(2 * seeds)
