"""The Ray path's cost against the local pool, on the same generated calls and the same machine.

Audits a folder of short calls with sidecar transcripts (the cheapest calls there are, so the
machinery's share is as large as it gets) twice: with the local pool (`--workers N`) and on a
local Ray instance with as many CPUs (`ray.init(num_cpus=N)`, `audit run --ray`). Prints, for
each: wall time, calls per minute, setup (Ray: connecting and starting the actors, their models
loaded), and the per-call overhead: the time each worker slot spends on a call beyond its analysis,
(N x steady wall - analysis) / calls. Then the Ray path's extra time per call over the local pool.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_bench import make_folder  # noqa: E402

from audit.batch import BatchOptions, run_batch  # noqa: E402
from audit.config import load_config  # noqa: E402


def measure(label: str, folder: Path, out: Path, options: BatchOptions, slots: int) -> float:
    started = time.perf_counter()
    report = run_batch([folder], out, load_config(), options)
    wall = time.perf_counter() - started
    calls = report.count("audited")
    setup = (report.document["cluster"] or {}).get("setup_s", 0.0)
    analysis = sum(o.seconds for o in report.outcomes)
    overhead = (slots * (wall - setup) - analysis) / calls
    print(f"{label}: {calls} calls in {wall:.1f} s = {calls / wall * 60:.0f} calls/min "
          f"({calls / (wall - setup) * 60:.0f} after {setup:.1f} s of setup); analysis "
          f"{analysis / calls * 1000:.0f} ms per call, overhead {overhead * 1000:.0f} ms per call per slot")
    started = time.perf_counter()
    rerun = run_batch([folder], out, load_config(), options)
    print(f"{label}, rerun: {rerun.count('skipped')} calls skipped in {time.perf_counter() - started:.1f} s")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cpus", type=int, default=2, help="local workers = the Ray instance's CPUs")
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        make_folder(root / "night", args.calls)
        local = measure(f"local pool, {args.cpus} workers", root / "night", root / "local",
                        BatchOptions(asr_mode="sidecar", workers=args.cpus), args.cpus)
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
        try:
            on_ray = measure(f"Ray, {args.cpus} CPUs, one node", root / "night", root / "ray",
                             BatchOptions(asr_mode="sidecar", ray="auto"), args.cpus)
        finally:
            ray.shutdown()
    print(f"Ray against the local pool: {(on_ray - local) / args.calls * 1000:+.0f} ms per call "
          "of wall time (setup included)")


if __name__ == "__main__":
    main()
