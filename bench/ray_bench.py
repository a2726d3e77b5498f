"""The Ray path's cost against the local pool, on the same generated calls and the same machine.

Audits a folder of short calls with sidecar transcripts (the cheapest calls there are, so the
machinery's share is as large as it gets) twice: with the local pool (`--workers N`) and on a
local Ray instance with as many CPUs (`ray.init(num_cpus=N)`, `audit run --ray`). Prints, for
each: wall time and calls per minute; the time to the first result (starting the workers or the
actors, their models loaded) and the steady rate after it; a rerun where every call is skipped.
Then the per-call overhead of the machinery alone, on empty recordings that fail at once (each
still hashed, sent to a worker or an actor, and its error recorded). Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_bench import make_folder  # noqa: E402

from audit.run.batch import BatchOptions, run_batch  # noqa: E402
from audit.configload import load_config  # noqa: E402


def measure(label: str, folder: Path, out: Path, options: BatchOptions) -> float:
    """One fresh run and one rerun; the steady part is from the first call's result to the last."""
    stamps: list[float] = []
    started = time.perf_counter()
    report = run_batch([folder], out, load_config(), options,
                       lambda outcome, done, total: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - started
    calls = report.count("audited")
    first, steady = stamps[0] - started, stamps[-1] - stamps[0]
    analysis = sum(o.seconds for o in report.outcomes)
    setup = (report.document["cluster"] or {}).get("setup_s")
    print(f"{label}: {calls} calls in {wall:.1f} s = {calls / wall * 60:.0f} calls/min; first result after "
          f"{first:.1f} s" + (f" ({setup:.1f} s to start the actors)" if setup else "") +
          f", then {(calls - 1) / steady * 60:.0f} calls/min; analysis {analysis / calls * 1000:.0f} ms "
          "per call (wall time in a worker)")
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
                        BatchOptions(asr_mode="sidecar", workers=args.cpus))
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
        try:
            on_ray = measure(f"Ray, {args.cpus} CPUs, one node", root / "night", root / "ray",
                             BatchOptions(asr_mode="sidecar", ray="auto"))
        finally:
            ray.shutdown()
    print(f"Ray against the local pool: {(on_ray - local) / args.calls * 1000:+.0f} ms per call "
          "of wall time (setup included)")
    with tempfile.TemporaryDirectory() as temporary:  # the machinery alone: calls that fail at once
        root = Path(temporary)
        (root / "empty").mkdir()
        for index in range(args.calls):
            (root / "empty" / f"call{index:04d}.wav").write_bytes(b"")
        for label, options in ((f"local pool, {args.cpus} workers", BatchOptions(workers=args.cpus)),
                               (f"Ray, {args.cpus} CPUs", BatchOptions(ray="auto"))):
            if options.ray:
                ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
            stamps: list[float] = []
            options.asr_mode = "sidecar"
            run_batch([root / "empty"], root / label, load_config(), options,
                      lambda outcome, done, total: stamps.append(time.perf_counter()))
            if options.ray:
                ray.shutdown()
            print(f"{label}, {args.calls} empty recordings (each fails at once): "
                  f"{(stamps[-1] - stamps[0]) / (len(stamps) - 1) * 1000:.1f} ms of wall time per call "
                  "once running: the per-call overhead of the machinery")


if __name__ == "__main__":
    main()
