#!/usr/bin/env python
"""Side-by-side timing of the spherical Fourier transform against peer libraries.

Libraries (``library`` column), all on the CPU, in one process:

* ``harness-torch``   ``harness.sft`` / ``harness.isft`` with ``backend="torch"`` (DH grid, 2b x 2b)
* ``harness-ducc0``   the same API with ``backend="ducc0"``
* ``ducc0-direct``    ``ducc0.sht.experimental.analysis_2d`` / ``synthesis_2d``, geometry "DH",
                      looping over the batch with ``nthreads=threads``, alm in ducc0's default packed
                      (healpy) layout, lmax = mmax = b - 1
* ``torch-harmonics`` ``RealSHT`` / ``InverseRealSHT`` (skipped, with a note, if not importable).
                      Its "equiangular" grid is Clenshaw-Curtis (both poles included), so the
                      comparable grid is ``nlat = nlon = 2b`` with ``lmax = mmax = b`` (degrees and
                      orders < b; its coefficients are ``[..., l, m]``, orthonormal, Condon-Shortley,
                      the same layout and convention as ours). The modules are cast to the dtype
                      under test so their tables are not re-cast on every call.

Timings: ``forward_ms`` / ``inverse_ms`` are the MEDIAN over ``--repeats`` calls of one batched
transform (``--batch`` signals), after ``--warmup`` untimed calls that also build every table and
cache; for one (dtype, b) the calls of the two libraries of each compared pair (``PAIRS``) are
interleaved round-robin, so a drift of the machine's speed hits both alike; ``forward_best_ms`` / ``inverse_best_ms`` are the minimum. ``roundtrip_rel_err`` is
``max |sft(isft(c)) - c| / max |c|`` for random bandlimited coefficients ``c`` (m <= l, Im c_l0 = 0)
in the library's own layout and on its own grid. ``table_MiB`` is the precomputed Legendre table
memory serving both directions (harness-torch: ``legendre_plan(...).table_bytes()``, one table for
sft and isft; torch-harmonics: the bytes of all buffers of its RealSHT plus InverseRealSHT); empty
where the library computes the Legendre functions on the fly (ducc0).

On a machine with few cores the harness-ducc0 times include a real effect: torch's OpenMP workers
spin-wait after the wrapper's own torch ops and take cores from ducc0's threads (measured with
2 threads at b=256: ~7 ms of ~20; ``OMP_WAIT_POLICY=PASSIVE`` removes most of it).

With ``--table-memory-512`` a row ``library=harness-torch, b=512, batch=0`` with only ``table_MiB``
(float64, no timings) is appended.

Usage::

    python benchmarks/peers_sht.py --bandwidths 32 64 128 256 --batch 16 --threads 2 \
        --out results/peers/sht.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    import harness
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import harness
from harness.sphere.transforms import legendre_plan

import ducc0

try:
    import torch_harmonics as th
    TH_ERROR = None
except Exception as e:  # ImportError, or an extension built against another torch
    th = None
    TH_ERROR = f"{type(e).__name__}: {e}"

LIBRARIES = ("harness-torch", "harness-ducc0", "ducc0-direct", "torch-harmonics")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
COLUMNS = ["library", "dtype", "b", "batch", "threads", "forward_ms", "inverse_ms",
           "forward_best_ms", "inverse_best_ms", "repeats", "roundtrip_rel_err", "table_MiB",
           "torch", "ducc0", "torch_harmonics", "numpy", "machine", "nproc", "loadavg_1m"]


# --------------------------------------------------------------------------- helpers
def machine() -> str:
    name = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return name or platform.machine()


def random_coeffs(batch: int, b: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """``[batch, b, b]`` complex ``[l, m]`` coefficients of a real bandwidth-b signal."""
    gen = torch.Generator().manual_seed(seed)
    cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
    c = torch.randn(batch, b, b, dtype=cdt, generator=gen).tril()  # zero where m > l
    c[..., 0] = c[..., 0].real
    return c


def rel_err(got, want) -> float:
    got, want = np.asarray(got), np.asarray(want)
    return float(np.abs(got - want).max() / np.abs(want).max())


def to_ducc_packed(c: torch.Tensor) -> np.ndarray:
    """``[B, b, b]`` ``[l, m]`` -> ducc0's default layout ``[B, b(b+1)/2]`` (m-major, lmax = b-1)."""
    B, b = c.shape[0], c.shape[-1]
    cn = c.numpy()
    out = np.zeros((B, b * (b + 1) // 2), dtype=cn.dtype)
    for m in range(b):
        i0 = m * (2 * b + 1 - m) // 2  # index of (l = m, m)
        out[:, i0 : i0 + b - m] = cn[:, m:, m]
    return out


# The libraries whose ratios the table reports, timed interleaved pair by pair: torch's OpenMP
# workers spin for a while after torch ops and take cores from ducc0's threads, so interleaving a
# torch library with a ducc0 one would charge the ducc0 call for the torch call before it.
PAIRS = (("harness-torch", "torch-harmonics"), ("harness-ducc0", "ducc0-direct"))


def time_round_robin(fns: dict, repeats: int, warmup: int) -> dict:
    """``{name: (median, best)}`` wall time in ms of each ``fn()``, the calls interleaved (one of
    each per round), so a drift of the machine's speed (other jobs, clocks) hits every library
    alike and their ratios stay meaningful."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    ts: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append((time.perf_counter() - t0) * 1e3)
    return {k: (statistics.median(v), min(v)) for k, v in ts.items()}


# --------------------------------------------------------------------------- one library each
# Each setup returns (forward, inverse, roundtrip_rel_err, table_bytes or None); tables, caches
# and inputs are built here, outside the timed calls.
def setup_harness(backend: str, b: int, dtype: torch.dtype, batch: int, threads: int):
    c = random_coeffs(batch, b, dtype)
    x = harness.isft(c, "dh", backend=backend)
    err = rel_err(harness.sft(x, "dh", backend=backend), c)
    table = legendre_plan("dh", b, dtype).table_bytes() if backend == "torch" else None
    return (lambda: harness.sft(x, "dh", backend=backend),
            lambda: harness.isft(c, "dh", backend=backend), err, table)


def setup_ducc0(b: int, dtype: torch.dtype, batch: int, threads: int):
    alm = to_ducc_packed(random_coeffs(batch, b, dtype))
    rdt = np.float32 if dtype == torch.float32 else np.float64
    n = 2 * b
    args = dict(spin=0, lmax=b - 1, geometry="DH", nthreads=threads)

    def inverse(a=alm):
        out = np.empty((a.shape[0], n, n), dtype=rdt)
        for i in range(a.shape[0]):
            ducc0.sht.experimental.synthesis_2d(alm=a[i : i + 1], map=out[i : i + 1], **args)
        return out

    x = inverse()

    def forward(m=x):
        out = np.empty((m.shape[0], alm.shape[1]), dtype=alm.dtype)
        for i in range(m.shape[0]):
            ducc0.sht.experimental.analysis_2d(map=m[i : i + 1], alm=out[i : i + 1], **args)
        return out

    return forward, inverse, rel_err(forward(), alm), None


def setup_torch_harmonics(b: int, dtype: torch.dtype, batch: int, threads: int):
    n = 2 * b
    fwd = th.RealSHT(n, n, lmax=b, mmax=b, grid="equiangular", norm="ortho").to(dtype)
    inv = th.InverseRealSHT(n, n, lmax=b, mmax=b, grid="equiangular", norm="ortho").to(dtype)
    c = random_coeffs(batch, b, dtype)
    x = inv(c)
    err = rel_err(fwd(x), c)
    table = sum(t.numel() * t.element_size() for mod in (fwd, inv) for t in mod.buffers())
    return (lambda: fwd(x)), (lambda: inv(c)), err, table


def setup(lib: str, b: int, dtype: torch.dtype, batch: int, threads: int):
    if lib == "harness-torch":
        return setup_harness("torch", b, dtype, batch, threads)
    if lib == "harness-ducc0":
        return setup_harness("ducc0", b, dtype, batch, threads)
    if lib == "ducc0-direct":
        return setup_ducc0(b, dtype, batch, threads)
    return setup_torch_harmonics(b, dtype, batch, threads)


# --------------------------------------------------------------------------- report
def fmt(v, spec: str) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(rows: list[dict]) -> str:
    timed = [r for r in rows if r["batch"]]
    lines = ["| library | dtype | b | forward ms | inverse ms | round-trip rel err | table MiB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in timed:
        lines.append(f"| {r['library']} | {r['dtype']} | {r['b']} | {fmt(r['forward_ms'], '.3f')} | "
                     f"{fmt(r['inverse_ms'], '.3f')} | {fmt(r['roundtrip_rel_err'], '.1e')} | "
                     f"{fmt(r['table_MiB'], '.2f')} |")
    by = {(r["library"], r["dtype"], r["b"]): r for r in timed}
    keys = sorted({(r["dtype"], r["b"]) for r in timed})
    lines += ["", "Ratios (> 1: the first-named is slower)", "",
              "| dtype | b | th / harness-torch fwd | th / harness-torch inv | "
              "harness-ducc0 / ducc0-direct fwd | harness-ducc0 / ducc0-direct inv | "
              "harness-torch / harness-ducc0 fwd | harness-torch / harness-ducc0 inv |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def ratio(a, b_, col):
        ra, rb = by.get((a, *k)), by.get((b_, *k))
        return f"{ra[col] / rb[col]:.2f}" if ra and rb else "n/a"

    for k in keys:
        cells = [ratio("torch-harmonics", "harness-torch", "forward_ms"),
                 ratio("torch-harmonics", "harness-torch", "inverse_ms"),
                 ratio("harness-ducc0", "ducc0-direct", "forward_ms"),
                 ratio("harness-ducc0", "ducc0-direct", "inverse_ms"),
                 ratio("harness-torch", "harness-ducc0", "forward_ms"),
                 ratio("harness-torch", "harness-ducc0", "inverse_ms")]
        lines.append(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + " |")
    extra = [r for r in rows if not r["batch"]]
    for r in extra:
        lines.append(f"\nharness-torch table memory at b={r['b']} {r['dtype']}: {r['table_MiB']:.1f} MiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bandwidths", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30, help="timed calls per measurement (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls before timing")
    ap.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    ap.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    ap.add_argument("--out", default="results/peers/sht.csv")
    ap.add_argument("--table-memory-512", action="store_true",
                    help="also record the harness torch-path table memory at b=512 float64")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    libs = list(a.libraries)
    if th is None and "torch-harmonics" in libs:
        print(f"note: torch-harmonics skipped (not importable: {TH_ERROR})")
        libs.remove("torch-harmonics")
    common = dict(torch=torch.__version__, ducc0=ducc0.__version__,
                  torch_harmonics=getattr(th, "__version__", ""), numpy=np.__version__,
                  machine=machine(), nproc=os.cpu_count(), threads=a.threads)
    print(f"torch {common['torch']}, ducc0 {common['ducc0']}, torch-harmonics "
          f"{common['torch_harmonics'] or '-'}, numpy {common['numpy']}; {common['machine']}, "
          f"{common['nproc']} CPUs, {a.threads} threads; batch {a.batch}; times: median of "
          f"{a.repeats} after {a.warmup} warm-up calls", flush=True)

    rows: list[dict] = []
    with torch.no_grad():
        for dname in a.dtypes:
            for b in a.bandwidths:
                made = {lib: setup(lib, b, DTYPES[dname], a.batch, a.threads) for lib in libs}
                t = {}
                for pair in PAIRS:  # each compared pair interleaved, apart from the other pair
                    group = [lib for lib in pair if lib in made]
                    t.update(time_round_robin({(lib, d): made[lib][i] for lib in group
                                               for i, d in enumerate(("fwd", "inv"))}, a.repeats, a.warmup))
                for lib, (fwd, inv, err, table) in made.items():
                    (f_med, f_best), (i_med, i_best) = t[lib, "fwd"], t[lib, "inv"]
                    rows.append(dict(library=lib, dtype=dname, b=b, batch=a.batch, forward_ms=f_med,
                                     inverse_ms=i_med, forward_best_ms=f_best, inverse_best_ms=i_best,
                                     repeats=a.repeats, roundtrip_rel_err=err,
                                     table_MiB=None if table is None else table / 2**20,
                                     loadavg_1m=os.getloadavg()[0], **common))
                    print(f"  {lib:16s} {dname} b={b:4d}: fwd {f_med:9.3f} ms  inv {i_med:9.3f} ms  "
                          f"rt err {err:.1e}", flush=True)
        if a.table_memory_512:
            t0 = time.perf_counter()
            nbytes = legendre_plan("dh", 512, torch.float64).table_bytes()
            print(f"  harness-torch table b=512 float64: {nbytes / 2**20:.1f} MiB "
                  f"(built in {time.perf_counter() - t0:.1f} s)", flush=True)
            rows.append(dict(library="harness-torch", dtype="float64", b=512, batch=0, forward_ms=None,
                             inverse_ms=None, forward_best_ms=None, inverse_best_ms=None, repeats=0,
                             roundtrip_rel_err=None, table_MiB=nbytes / 2**20, loadavg_1m=os.getloadavg()[0], **common))

    print()
    print(markdown(rows))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})
    print(f"\nwrote {out} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
