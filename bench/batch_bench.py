"""Batch machinery cost: audits a generated folder of short calls with sidecar transcripts.

Prints calls per minute, and the per-call overhead of the batch machinery: everything but the
analysis of the call itself (discovery, hashing, the skip check, the JSON record, the database
transaction, progress), for a fresh run and for a rerun where every call is skipped.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from synthcalls import RATE, speech_clips  # noqa: E402

from audit.run.batch import BatchOptions, run_batch  # noqa: E402
from audit.configload import load_config  # noqa: E402


def make_folder(root: Path, count: int) -> None:
    """`count` short two-channel calls (an agent opening and a customer reply) with transcripts."""
    clips = speech_clips()
    rng = np.random.default_rng(0)
    for index in range(count):
        agent = clips["agent"][index % len(clips["agent"])][: 3 * RATE]
        customer = clips["customer"][index % len(clips["customer"])][: 2 * RATE]
        gap = int(0.5 * RATE)
        audio = np.zeros((len(agent) + gap + len(customer) + RATE, 2), np.float32)
        audio[: len(agent), 0] = agent
        audio[len(agent) + gap: len(agent) + gap + len(customer), 1] = customer
        audio += rng.standard_normal(audio.shape).astype(np.float32) * 1e-3
        folder = root / f"agent{index % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"call{index:04d}.wav", audio, RATE, subtype="ULAW")
        a_end, c_start = len(agent) / RATE, (len(agent) + gap) / RATE
        transcript = {"utterances": [
            {"speaker": "agent", "start": 0.0, "end": a_end,
             "text": "您好,欢迎致电星河通信,工号零零八六,请问有什么可以帮您?"},
            {"speaker": "customer", "start": c_start, "end": c_start + len(customer) / RATE,
             "text": "我想查一下话费。"}]}
        (folder / f"call{index:04d}.transcript.json").write_text(json.dumps(transcript, ensure_ascii=False))
        (folder / f"call{index:04d}.meta.json").write_text(json.dumps({"agent_id": f"{index % 20:04d}"}))


def main(count: int) -> None:
    config = load_config()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary) / "night"
        make_folder(root, count)
        for label in ("fresh run", "rerun (all skipped)"):
            started = time.perf_counter()
            report = run_batch([root], Path(temporary) / "out", config, BatchOptions(asr_mode="sidecar"))
            wall = time.perf_counter() - started
            analysis = sum(o.seconds for o in report.outcomes)
            print(f"{label}: {len(report.outcomes)} calls in {wall:.1f} s = "
                  f"{len(report.outcomes) / wall * 60:.0f} calls/min; analysis {analysis:.1f} s; "
                  f"batch overhead {(wall - analysis) / len(report.outcomes) * 1000:.1f} ms per call")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
