#!/usr/bin/env python
"""Time per training step of the ``esteves_mnist`` preset, per ReLU oversampling factor, or per
named nonlinearity (``--nonlinearity relu_s1 norm ...``: ``harness.nn.models.NONLINEARITY_VARIANTS``
in place of every pointwise layer; the frontier of issue 13).

Each configuration runs in a FRESH PROCESS (this script re-run with ``--worker``): the preset at
``--bandwidth`` on random band-limited inputs with random labels, Adam, ``--warmup`` steps then
the median wall time of ``--steps`` steps (forward, loss, backward, optimizer step), with
``--threads`` torch threads. ``--repeats N`` runs N interleaved rounds over the configurations
and reports the median of the rounds' medians (and their range). Run it on a quiet machine: the
training runs' own ``train_time_s`` is recorded while other jobs may share the cores.

    python benchmarks/train_step.py --out results/accuracy/step_time.csv
    python benchmarks/train_step.py --nonlinearity relu_s1 relu_s2 poly2 poly4 quadratic norm gated --repeats 3 \
        --out results/frontier_train/step_time.csv
    python benchmarks/train_step.py --presets esteves_mnist cohen_mnist   # the presets as they are

``--baseline DIR`` also runs every configuration on the ``harness`` package of another checkout
(e.g. ``git worktree add /tmp/base <commit>``), interleaved in the same rounds: an A/B of two
commits in one run (rows with ``code`` = "baseline"; the others "HEAD").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def worker(s: float | str, b: int, batch: int, steps: int, warmup: int, threads: int) -> dict:
    import time

    import torch

    import harness
    from harness.nn.models import NONLINEARITY_VARIANTS

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    preset = s.removeprefix("preset:") if isinstance(s, str) and s.startswith("preset:") else "esteves_mnist"
    spec = harness.nn.models.PRESETS[preset]
    if isinstance(s, str) and not s.startswith("preset:"):  # a named nonlinearity
        layers = [dict(NONLINEARITY_VARIANTS[s]) if L["type"] == "pointwise" else L for L in spec["layers"]]
    elif isinstance(s, float):
        layers = [{**L, "oversampling": s} if L["type"] == "pointwise" else L for L in spec["layers"]]
    else:
        layers = spec["layers"]
    spec = {**spec, "bandwidth": b, "layers": layers}
    model = harness.build_model(spec)
    x = harness.random_signals(batch, 1, b, kind=spec["kind"], seed=1, dtype=torch.float32)
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    key = ({"preset": preset} if isinstance(s, str) and s.startswith("preset:") else
           {"nonlinearity": s} if isinstance(s, str) else {"oversampling": s})
    return {**key, "bandwidth": b, "batch": batch, "threads": threads, "steps": steps,
            "step_ms": 1e3 * sorted(times)[len(times) // 2], "best_ms": 1e3 * min(times),
            "loadavg_1m": os.getloadavg()[0]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--oversampling", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    p.add_argument("--bandwidth", type=int, default=30)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1, help="interleaved rounds; step_ms is the median over them")
    p.add_argument("--out")
    p.add_argument("--nonlinearity", nargs="+", help="named nonlinearities instead of --oversampling")
    p.add_argument("--presets", nargs="+", help="presets as they are, instead of --oversampling")
    p.add_argument("--baseline", help="a checkout whose harness package is timed beside this one's")
    p.add_argument("--worker")
    a = p.parse_args()
    if a.worker is not None:
        try:
            w: float | str = float(a.worker)
        except ValueError:
            w = a.worker
        print(json.dumps(worker(w, a.bandwidth, a.batch, a.steps, a.warmup, a.threads)))
        return 0
    configs = [f"preset:{n}" for n in a.presets] if a.presets else (a.nonlinearity or a.oversampling)
    codes = ["HEAD"] + (["baseline"] if a.baseline else [])
    runs: dict[tuple[str, str], list[dict]] = {(str(s), c): [] for s in configs for c in codes}
    here = Path(__file__).resolve().parents[1]
    for r in range(a.repeats):  # rounds interleave the configs, so a slow spell hits them all
        for s in configs:
            for code in codes:
                env = dict(os.environ)
                root = str(Path(a.baseline).resolve()) if code == "baseline" else str(here)
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
                out = subprocess.run([sys.executable, __file__, "--worker", str(s), "--bandwidth", str(a.bandwidth),
                                      "--batch", str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup),
                                      "--threads", str(a.threads)], capture_output=True, text=True, env=env)
                if out.returncode:
                    print(out.stderr[-2000:], file=sys.stderr)
                    return 1
                runs[(str(s), code)].append(json.loads(out.stdout.strip().splitlines()[-1]))
                x = runs[(str(s), code)][-1]
                print(f"round {r + 1}/{a.repeats} {s} ({code}): {x['step_ms']:.1f} ms per step"
                      f" (best {x['best_ms']:.1f}, load {x['loadavg_1m']:.2f})")
    rows = []
    for (s, code), rs in runs.items():  # the median over rounds of each round's median step
        meds = sorted(x["step_ms"] for x in rs)
        rows.append({**rs[0], **({"code": code} if a.baseline else {}), "step_ms": statistics.median(meds),
                     "best_ms": min(x["best_ms"] for x in rs), "loadavg_1m": max(x["loadavg_1m"] for x in rs),
                     "rounds": len(rs), "round_min_ms": meds[0], "round_max_ms": meds[-1]})
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        with open(a.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
