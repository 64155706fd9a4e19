#!/usr/bin/env python
"""Time and peak memory of measuring the ``esteves_mnist`` preset (b = 30, float64, eval).

``equivariance_error(model, x, R, mode=...)`` on ``random_signals(8, 1, 30)`` under K Haar
rotations, each configuration in a FRESH PROCESS (this script re-run with ``--worker``): the peak
is that process's ``ru_maxrss`` (import, model and tables included), the time the median of
``--repeats`` calls after one warm-up call on 2 rotations. ``--source DIR`` measures the harness
found in DIR (a checkout of another commit, for side-by-side ratios in one run).

    python benchmarks/measure_cost.py --rotations 16 500 --out results/benchmarks/measure.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path


def worker(source: str, K: int, mode: str, repeats: int, threads: int) -> dict:
    sys.path.insert(0, source)
    import resource
    import time

    import torch

    import harness

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = harness.build_model("esteves_mnist").double().eval()
    x = harness.random_signals(8, 1, 30, seed=0)
    R = harness.random_rotations(K, seed=1)
    harness.equivariance_error(model, x, R[:2], mode=mode)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        df = harness.equivariance_error(model, x, R, mode=mode)
        times.append(time.perf_counter() - t0)
    return {"rotations": K, "inputs": 8, "mode": mode, "rows": len(df), "median_s": sorted(times)[len(times) // 2],
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": threads}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rotations", type=int, nargs="+", default=[16, 500])
    p.add_argument("--modes", nargs="+", default=["cumulative", "isolated"])
    p.add_argument("--source", default=str(Path(__file__).resolve().parents[1]))
    p.add_argument("--label", default="HEAD")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    p.add_argument("--worker", nargs=3, metavar=("SOURCE", "K", "MODE"))
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker[0], int(a.worker[1]), a.worker[2], a.repeats, a.threads)))
        return 0
    rows = []
    for K in a.rotations:
        for mode in a.modes:
            out = subprocess.run([sys.executable, __file__, "--worker", a.source, str(K), mode, "--repeats",
                                  str(a.repeats if K <= 64 else 1), "--threads", str(a.threads)],
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            row = {"source": a.label, **json.loads(out.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(f"{row['source']:>10} K={K:4d} {mode:10} {row['median_s']:8.3f} s  peak {row['peak_mib']:7.0f} MiB")
    if a.out:
        path = Path(a.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            if new:
                w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
