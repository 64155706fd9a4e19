#!/usr/bin/env python
"""Time and peak memory of each layer and of the ``esteves_mnist`` preset, forward and forward+backward.

Configurations (the grid of ``tests/test_bench_layers.py``), float32, DH grid (2b x 2b), batch
``--batch``, the backend ``--backend`` (default: the library's, ducc0 on the CPU):

* ``conv``            ``SphericalConv(16, 16, b, filter_params=8)``
* ``pointwise_s1``    ``Pointwise("relu", oversampling=1.0)``
* ``pointwise_s1.5``  ``Pointwise("relu", oversampling=1.5)`` (sigma on the grid of bandwidth ceil(1.5 b))
* ``pointwise_s2``    ``Pointwise("relu", oversampling=2.0)`` (sigma on the grid of bandwidth 2b)
* ``...@coeffs``      the same layer with ``input="coeffs", output="coeffs"`` on coefficients
                      ``[batch, 16, b, b]`` complex64: what it costs inside a model, between two
                      spectral layers (the convolution is then a per-degree multiply)
* ``pool``            ``SpectralPool()`` (b -> b // 2)
* ``descriptor``      ``InvariantDescriptor()``
* ``esteves_mnist``   ``build_model("esteves_mnist", bandwidth=b)``, 1 input channel

(the layers on 16 channels), each in two directions:

* ``forward``           the module call under ``torch.no_grad()`` (no graph is recorded);
* ``forward+backward``  input with ``requires_grad``, forward, ``(y * w).sum()`` with a fixed
                        random projection ``w`` of the output's shape, ``.backward()``. Gradients
                        are reset to None before every call, outside the timed region.

Every configuration runs in a FRESH PROCESS (this script re-run with ``--worker``), which:

1. sets the torch threads, builds the module, the input (and ``w``);
2. unless ``--no-warm-tables``: warms the cached transform tables and plans with a tiny call at the
   same b (batch 2, same channels, same direction), then drops its outputs and gradients. So by
   default ``peak_mib`` does NOT include building the tables (column ``includes_table_build`` =
   False; with ``--no-warm-tables`` it does, True). On the CPU the default backend below b = 128
   is the torch path, whose Legendre tables are cached (ducc0 computes them on the fly);
3. records the baseline ``ru_maxrss`` (``getrusage(RUSAGE_SELF)``), BEFORE any full-size call;
4. runs the operation once at full size and reports ``peak_mib`` = ``ru_maxrss`` after minus the
   baseline, in MiB: the extra resident memory the call needed (its output, saved tensors,
   gradients, transients, numpy buffers of the ducc0 path included);
5. times ``--repeats`` further calls (the call of 4 is their warm-up): ``median_ms`` and
   ``best_ms`` (wall clock), ``cpu_ms`` (median process CPU time of a call, all threads) and
   ``loadavg_1m`` (the 1-minute load average after timing).

``ru_maxrss`` is a high-water mark, so memory the process touched earlier and gave back to the OS
(import, set-up, the tiny warm-up call) hides up to that much of the call's own peak.
``baseline_slack_mib`` = baseline ``ru_maxrss`` minus the current RSS at the baseline, the most
that can hide. Measured: -0.3..+0.4 MiB (negative: the kernel updates the high-water mark
lazily), so nothing hides and ``peak_mib`` is accurate to a few tenths of a MiB. ``input_mib`` is the
size of the input tensor, for scale.

Writes ``--out`` (CSV, one row per (layer, b, direction)) and prints a markdown table with one row
per (layer, b). Timings on a small shared machine are noisy: with T threads on a machine whose
cores are busy with other work, each OpenMP parallel region can wait a whole scheduler time slice
(~4-8 ms) for a descheduled worker, which inflates small, many-region calls (forward+backward
most). Compare ``best_ms``, and ``median_ms`` against ``cpu_ms / threads`` and ``loadavg_1m``.

Usage::

    python benchmarks/layers.py --bandwidths 16 32 64 --batch 32 --threads 2 --repeats 10 \
        --out results/benchmarks/layers.csv
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

LAYERS = ("conv", "pointwise_s1", "pointwise_s1.5", "pointwise_s2", "pool", "descriptor", "esteves_mnist",
          # the same layers between two spectral layers of a model: coefficients in and out
          "conv@coeffs", "pointwise_s1@coeffs", "pointwise_s1.5@coeffs", "pointwise_s2@coeffs",
          "s2_so3_conv", "so3_conv", "cohen_mnist",
          # the nonlinearity frontier (issue 13): harness.nn.models.NONLINEARITY_VARIANTS, 16 channels
          "nl:poly2", "nl:poly4", "nl:quadratic", "nl:norm", "nl:gated")
# Cohen et al.'s layers at the cohen_mnist preset's sizes when b is the preset's: S^2 (b) -> SO(3)
# (b // 3), 1 -> 20 channels (30 -> 10); SO(3) b -> round(0.6 b), 20 -> 40 channels (10 -> 6).
SO3_INPUT = {"so3_conv"}
DIRECTIONS = ("forward", "forward+backward")
CHANNELS = 16
COLUMNS = ["layer", "b", "batch", "direction", "median_ms", "best_ms", "cpu_ms", "repeats", "peak_mib",
           "includes_table_build", "baseline_slack_mib", "input_mib", "threads", "backend",
           "loadavg_1m", "torch_version"]
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- worker (one configuration)
def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_layer(name: str, b: int, backend: str | None):
    """The module under test and its number of input channels."""
    import harness

    base, _, domain = name.partition("@")
    io = {"input": "coeffs", "output": "coeffs"} if domain == "coeffs" else {}
    if base == "conv":
        return harness.SphericalConv(CHANNELS, CHANNELS, b, filter_params=8, backend=backend, **io), CHANNELS
    if base.startswith("pointwise_s"):
        return harness.Pointwise("relu", oversampling=float(base[len("pointwise_s"):]), backend=backend, **io), CHANNELS
    if name == "pool":
        return harness.SpectralPool(backend=backend), CHANNELS
    if name == "descriptor":
        return harness.InvariantDescriptor(backend=backend), CHANNELS
    if name == "esteves_mnist":
        return harness.build_model("esteves_mnist", bandwidth=b, backend=backend), 1
    if name.startswith("nl:"):
        from harness.nn.models import NONLINEARITY_VARIANTS

        spec = {"in_channels": CHANNELS, "bandwidth": b, "layers": [dict(NONLINEARITY_VARIANTS[name[3:]])]}
        return harness.build_model(spec, backend=backend), CHANNELS
    if name == "s2_so3_conv":
        return harness.S2ToSO3Conv(1, 20, b, max(1, b // 3), kind="soft"), 1
    if name == "so3_conv":
        return harness.SO3Conv(20, 40, b, max(1, round(0.6 * b))), 20
    if name == "cohen_mnist":
        return harness.build_model("cohen_mnist", bandwidth=b), 1
    raise ValueError(f"unknown layer {name!r}; known: {LAYERS}")


def output_shape(name: str, b: int, batch: int) -> tuple[int, ...]:
    """Known without calling the module (a call would build the tables)."""
    bs, bo = max(1, b // 3), max(1, round(0.6 * b))
    if name.endswith("@coeffs"):
        return (batch, CHANNELS, b, b, 2)  # complex, as real pairs
    return {"pool": (batch, CHANNELS, b // 2 * 2, b // 2 * 2), "descriptor": (batch, CHANNELS, b),
            "esteves_mnist": (batch, 10), "cohen_mnist": (batch, 10), "s2_so3_conv": (batch, 20, *(3 * [2 * bs])),
            "so3_conv": (batch, 40, *(3 * [2 * bo]))}.get(name, (batch, CHANNELS, 2 * b, 2 * b))


def worker(layer: str, b: int, direction: str, batch: int, threads: int, repeats: int,
           backend: str | None, warm_tables: bool) -> dict:
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1000 * b + LAYERS.index(layer))
    module, cin = make_layer(layer, b, backend)
    params = [p for p in module.parameters() if p.requires_grad]
    backward = direction == "forward+backward"

    coeffs = layer.endswith("@coeffs")

    def inputs(n: int):
        if coeffs:
            x = torch.randn(n, cin, b, b, dtype=torch.complex64, generator=gen).requires_grad_(backward)
        else:
            grid = (2 * b,) * (3 if layer in SO3_INPUT else 2)
            x = torch.randn(n, cin, *grid, generator=gen, requires_grad=backward)
        return x, (torch.randn(output_shape(layer, b, n), generator=gen) if backward else None)

    def reset(x):
        x.grad = None
        for p in params:
            p.grad = None

    def call(x, w):
        if backward:
            y = module(x)
            ((torch.view_as_real(y) if y.is_complex() else y) * w).sum().backward()
            return None
        with torch.no_grad():
            y = module(x)
            return torch.view_as_real(y) if y.is_complex() else y

    if warm_tables:  # a tiny call at the same b: builds and caches tables and plans
        xs, ws = inputs(2)  # 2: BatchNorm (in the preset) needs more than one sample in training
        call(xs, ws)
        reset(xs)
        del xs, ws
    x, w = inputs(batch)
    reset(x)
    gc.collect()
    baseline = _maxrss_mib()
    slack = baseline - _current_rss_mib()

    y = call(x, w)  # the first full-size call: the memory measurement
    if y is not None:
        assert tuple(y.shape) == output_shape(layer, b, batch), (tuple(y.shape), layer, b)
    peak = _maxrss_mib() - baseline
    del y

    times, cpu = [], []
    for _ in range(repeats):
        reset(x)
        t0, c0 = time.perf_counter(), time.process_time()
        y = call(x, w)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        del y
    return {
        "layer": layer, "b": b, "batch": batch, "direction": direction,
        "median_ms": round(statistics.median(times) * 1e3, 3), "best_ms": round(min(times) * 1e3, 3),
        "cpu_ms": round(statistics.median(cpu) * 1e3, 3), "loadavg_1m": os.getloadavg()[0],
        "repeats": repeats, "peak_mib": round(peak, 2), "includes_table_build": not warm_tables,
        "baseline_slack_mib": round(slack, 2), "input_mib": round(x.numel() * x.element_size() / 2**20, 2),
        "threads": threads, "backend": backend or "default", "torch_version": torch.__version__,
    }


# --------------------------------------------------------------------------- driver
def run_one(args, layer: str, b: int, direction: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--layer", layer,
           "--bandwidths", str(b), "--direction", direction, "--batch", str(args.batch),
           "--threads", str(args.threads), "--repeats", str(args.repeats)]
    if args.backend:
        cmd += ["--backend", args.backend]
    if not args.warm_tables:
        cmd.append("--no-warm-tables")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{layer} b={b} {direction}: worker failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict]) -> str:
    by = {(r["layer"], r["b"], r["direction"]): r for r in rows}
    out = ["| layer | b | fwd ms | fwd+bwd ms | ratio | fwd MiB | fwd+bwd MiB | input MiB |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for layer in dict.fromkeys(r["layer"] for r in rows):
        for b in sorted({r["b"] for r in rows if r["layer"] == layer}):
            f, fb = by.get((layer, b, "forward")), by.get((layer, b, "forward+backward"))
            get = lambda r, k: "" if r is None else f"{r[k]:.{2 if r[k] < 10 else 1}f}"  # noqa: E731
            ratio = f"{fb['median_ms'] / f['median_ms']:.1f}" if f and fb else ""
            inp = (f or fb)["input_mib"]
            out.append(f"| {layer} | {b} | {get(f, 'median_ms')} | {get(fb, 'median_ms')} | {ratio} |"
                       f" {get(f, 'peak_mib')} | {get(fb, 'peak_mib')} | {inp:.1f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bandwidths", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10, help="timed calls per configuration (median)")
    ap.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    ap.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=DIRECTIONS)
    ap.add_argument("--backend", default=None, help="transform backend (default: the library's)")
    ap.add_argument("--no-warm-tables", dest="warm_tables", action="store_false",
                    help="no tiny warm-up call: peak_mib then includes building the tables")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per configuration")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "layers.csv")
    # internal: one configuration in this (fresh) process, a JSON line on stdout
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--layer", help=argparse.SUPPRESS)
    ap.add_argument("--direction", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.layer, args.bandwidths[0], args.direction, args.batch,
                                args.threads, args.repeats, args.backend, args.warm_tables)))
        return 0

    rows = []
    for layer in args.layers:
        for b in args.bandwidths:
            for direction in args.directions:
                r = run_one(args, layer, b, direction)
                print(f"{layer:14s} b={b:<4d} {direction:17s} {r['median_ms']:9.1f} ms"
                      f"  {r['peak_mib']:8.1f} MiB", file=sys.stderr, flush=True)
                rows.append(r)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=COLUMNS)
        wr.writeheader()
        wr.writerows(rows)
    t = rows[0]
    print(f"batch {t['batch']}, {t['threads']} threads, torch {t['torch_version']}, backend {t['backend']},"
          f" median of {t['repeats']}; MiB = peak RSS over the baseline;"
          f" table build {'included' if t['includes_table_build'] else 'excluded (warmed)'}\n")
    print(markdown(rows))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
