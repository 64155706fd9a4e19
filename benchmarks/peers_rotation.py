#!/usr/bin/env python
"""Side-by-side timing of exact rotation (Wigner-D) against e3nn.

Rows (``library``, ``what``), all on the CPU, in one process, float64, ``--rotations`` Haar-random
rotations and ``--signals`` random bandwidth-b signals (coefficients ``[l, m]``, degrees l < b):

* ``harness, construction_per_call``  what :func:`harness.sphere.wigner.rotate_coefficients` builds per
  call beyond the cached table: ``rotation_plan(b)`` (a cache hit) + ``matrix_to_euler_zyz(R)`` + the three phase vectors ``exp(-i m t)``
  (t = alpha + pi/2, beta, gamma - pi/2).
* ``harness, table_cold``  the one-time build of that table (``Delta^l = d^l(pi/2)`` for all
  l < b; every lru cache cleared before each call); shared by all rotations, so
  ``per_rotation_ms`` is empty.
* ``harness, wigner_D_explicit``  ``harness.sphere.wigner.wigner_D(b, R)``: the explicit complex
  ``[N, b, 2b-1, 2b-1]`` D for every rotation and degree (a recurrence in l, numpy, one thread).
* ``harness, application``  ``rotate_coefficients(c[:, None], R[None])``: every signal by every
  rotation, the whole call (its per-call construction included; no D is formed).
* ``e3nn, wigner_D_explicit``  ``o3.wigner_D(l, alpha, beta, gamma)`` for every l < b with the batch
  of angle triples from ``o3.matrix_to_angles(R)`` (real basis, Y-X-Y angles; each call forms three
  matrix exponentials of ``(2l+1) x (2l+1)`` matrices per rotation).  When a one-call probe predicts
  more than ``--e3nn-budget`` seconds, the degrees are split into blocks of k consecutive ones and
  only the middle degree of each block is timed, weighted by its block length (a stratified
  estimate of the full sum; ``notes`` says so).
* ``e3nn, application``  applying e3nn's prebuilt D's to the signals: per degree one batched real
  matmul ``D_l [N, 2l+1, 2l+1] @ X_l [2l+1, S]`` (the flop count of a real-basis application).

Timings: ``ms`` is the MEDIAN wall time of one call over the timed calls (after one untimed warm-up
call; ``notes`` gives the count: at most ``--repeats``, fewer when a measurement would run past
``--budget`` seconds). ``per_rotation_ms`` = ``ms / rotations`` (construction) or
``ms / (signals * rotations)`` (application, per rotated signal).

Usage::

    python benchmarks/peers_rotation.py --bandwidths 32 64 128 --signals 16 --rotations 32 \
        --threads 2 --out results/peers/rotation.csv
"""

from __future__ import annotations

import argparse
import csv
import math
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
from harness.sphere import so3, wigner

try:
    from e3nn import o3
    import e3nn
    E3NN_ERROR = None
except Exception as e:  # ImportError, or an incompatible torch
    o3 = e3nn = None
    E3NN_ERROR = f"{type(e).__name__}: {e}"

COLUMNS = ["library", "b", "what", "ms", "per_rotation_ms", "notes", "versions"]


# --------------------------------------------------------------------------- helpers
def time_calls(fn, repeats: int, budget_s: float, warmup: int = 1) -> tuple[float, int]:
    """(median ms, number of timed calls) of ``fn()``: ``warmup`` untimed calls, then up to
    ``repeats`` timed ones, stopping early (after at least one) once ``budget_s`` is spent."""
    for _ in range(warmup):
        fn()
    ts: list[float] = []
    t_start = time.perf_counter()
    while len(ts) < repeats:
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - t_start > budget_s:
            break
    return statistics.median(ts), len(ts)


def random_coeffs(n: int, b: int, seed: int = 0) -> torch.Tensor:
    """``[n, b, b]`` complex128 ``[l, m]`` coefficients of real bandwidth-b signals."""
    gen = torch.Generator().manual_seed(seed)
    c = torch.randn(n, b, b, dtype=torch.complex128, generator=gen).tril()
    c[..., 0] = c[..., 0].real
    return c


def cached_table(b: int):
    """The cached table ``rotate_coefficients`` uses at bandwidth b (built on first use)."""
    return wigner.rotation_plan(b)


def table_name() -> str:
    return "rotation_plan(b)"


def cold_table(b: int):
    wigner._rotation_plan64.cache_clear()
    wigner._rotation_plan_cast.cache_clear()
    return cached_table(b)


def phase_vectors(t: torch.Tensor, b: int) -> torch.Tensor:
    """``[..., k]`` ``exp(-i m t)`` for m = 0..b-1 (the half a real signal needs)."""
    m = torch.arange(0, b, dtype=torch.float64)
    tm = t[..., None] * m
    return torch.polar(torch.ones_like(tm), -tm).to(torch.complex128)


def harness_construction(b: int, R: torch.Tensor):
    """What ``rotate_coefficients`` computes per call beyond the cached table."""
    half = math.pi / 2
    table = cached_table(b)
    alpha, beta, gamma = so3.matrix_to_euler_zyz(R)
    return table, [phase_vectors(t, b) for t in (alpha + half, beta, gamma - half)]


def e3nn_D(degrees, angles) -> list[torch.Tensor]:
    a, be, g = angles
    return [o3.wigner_D(l, a, be, g) for l in degrees]


def e3nn_apply(Ds: list[torch.Tensor], X: list[torch.Tensor]) -> list[torch.Tensor]:
    return [D @ x for D, x in zip(Ds, X)]  # [N, 2l+1, 2l+1] @ [2l+1, S] -> [N, 2l+1, S]


def orth_err(D: torch.Tensor) -> float:
    """max |D D^H - I| of a batch of square matrices."""
    eye = torch.eye(D.shape[-1], dtype=D.dtype)
    return float((D @ D.conj().transpose(-1, -2) - eye).abs().max())


# --------------------------------------------------------------------------- one bandwidth
def bench_bandwidth(b: int, a, versions: str) -> list[dict]:
    N, S = a.rotations, a.signals
    R = so3.random_rotations(N, seed=b)
    c = random_coeffs(S, b, seed=b)
    rows: list[dict] = []

    def row(library, what, ms, per, notes):
        rows.append(dict(library=library, b=b, what=what, ms=ms, per_rotation_ms=per, notes=notes,
                         versions=versions))
        per_s = "" if per is None else f"{per:12.4f} ms/unit"
        print(f"  {library:7s} b={b:4d} {what:24s} {ms:12.3f} ms {per_s}  {notes}", flush=True)

    # ---- harness
    cached_table(b)  # make sure the cache is warm for the per-call measurement
    ms, n = time_calls(lambda: harness_construction(b, R), a.repeats, a.budget)
    row("harness", "construction_per_call", ms, ms / N,
        f"{table_name()} cache hit + matrix_to_euler_zyz + 3 phase vectors; median of {n}")
    ms, n = time_calls(lambda: cold_table(b), a.repeats, a.budget, warmup=0)
    row("harness", "table_cold", ms, None,
        f"one-time {table_name()} build (d^l(pi/2), all l<b), shared by all rotations; median of {n}")
    cached_table(b)
    D = wigner.wigner_D(b, R[:2])
    err = orth_err(D[:, b - 1])  # top degree: the full (2b-1) x (2b-1) block
    del D
    ms, n = time_calls(lambda: wigner.wigner_D(b, R), a.repeats, a.budget)
    row("harness", "wigner_D_explicit", ms, ms / N,
        f"complex [N,b,2b-1,2b-1] ({N * b * (2 * b - 1) ** 2 * 16 / 2**30:.2f} GiB); "
        f"max|DD^H-I| at l=b-1 {err:.1e}; median of {n}")
    harness_D_ms = ms
    harness_call_ms = rows[0]["ms"]
    ms, n = time_calls(lambda: wigner.rotate_coefficients(c[:, None], R[None]), a.repeats, a.budget)
    row("harness", "application", ms, ms / (N * S),
        f"rotate_coefficients(c[:,None], R[None]): {S} signals x {N} rotations, whole call; "
        f"per_rotation_ms is per (signal, rotation); median of {n}")

    if o3 is None:
        return rows
    # ---- e3nn
    angles = o3.matrix_to_angles(R)  # float64 angles -> float64 D
    o3.wigner_D(b - 1, *angles)  # warm-up of the probe
    t0 = time.perf_counter()
    top = o3.wigner_D(b - 1, *angles)
    probe = time.perf_counter() - t0
    err = orth_err(top)
    del top
    # cost of degree l ~ (2l+1)^3 (matrix exponentials): predicted time of all degrees from the top one
    predicted = probe * sum(((2 * l + 1) / (2 * b - 1)) ** 3 for l in range(b))
    held: dict = {}
    if predicted <= a.e3nn_budget:
        def construct():
            held["Ds"] = e3nn_D(range(b), angles)

        ms_full, n = time_calls(construct, a.repeats, a.budget)
        extra = ""
    else:
        # blocks of `stride` consecutive degrees, each represented by its middle degree, timed alone
        stride = max(2, math.ceil(predicted / a.e3nn_budget))
        blocks = [range(s, min(s + stride, b)) for s in range(0, b, stride)]
        reps = [(blk[len(blk) // 2], len(blk)) for blk in blocks]
        times: dict[int, list[float]] = {l: [] for l, _ in reps}
        t_start = time.perf_counter()
        for _ in range(a.repeats):
            for l, _w in reps:
                t0 = time.perf_counter()
                o3.wigner_D(l, *angles)
                times[l].append((time.perf_counter() - t0) * 1e3)
            if time.perf_counter() - t_start > a.budget:
                break
        n = len(times[reps[0][0]])
        ms_full = sum(w * statistics.median(times[l]) for l, w in reps)
        extra = (f"; EXTRAPOLATED (probe predicted {predicted:.0f} s > {a.e3nn_budget:g} s): timed "
                 f"{len(reps)} of {b} degrees (middle of each block of {stride}), each weighted by its "
                 f"block length")
    ratio_D = ms_full / harness_D_ms
    ratio_call = ms_full / harness_call_ms
    row("e3nn", "wigner_D_explicit", ms_full, ms_full / N,
        f"o3.wigner_D(l,...) for l<b, real [N,2l+1,2l+1] per l; max|DD^T-I| at l=b-1 {err:.1e}; "
        f"median of {n}{extra}; ratio e3nn/harness wigner_D {ratio_D:.3g}, "
        f"e3nn/harness construction_per_call {ratio_call:.3g}")
    # application with prebuilt D's (all degrees; the matmuls are cheap even when construction is not)
    Ds = held.get("Ds")
    if Ds is None:  # stand-ins with the same shapes (e3nn's D's were not all built)
        Ds = [torch.linalg.qr(torch.randn(N, 2 * l + 1, 2 * l + 1, dtype=torch.float64))[0] for l in range(b)]
    gen = torch.Generator().manual_seed(b)
    X = [torch.randn(2 * l + 1, S, dtype=torch.float64, generator=gen) for l in range(b)]
    # the two applications timed interleaved (one call of each per round): a drift of the
    # machine's speed hits both alike, so their ratio stays meaningful
    both = {"e3nn": lambda: e3nn_apply(Ds, X), "harness": lambda: wigner.rotate_coefficients(c[:, None], R[None])}
    for f in both.values():
        f()
    ts: dict = {k: [] for k in both}
    for _ in range(a.repeats):
        for k, f in both.items():
            t0 = time.perf_counter()
            f()
            ts[k].append((time.perf_counter() - t0) * 1e3)
    ms, n = statistics.median(ts["e3nn"]), len(ts["e3nn"])
    h_ms = statistics.median(ts["harness"])
    app = next(r for r in rows if r["library"] == "harness" and r["what"] == "application")
    app["ms"], app["per_rotation_ms"] = h_ms, h_ms / (N * S)
    app["notes"] += f"; re-timed interleaved with e3nn's application: median of {n}"
    row("e3nn", "application", ms, ms / (N * S),
        f"per-degree batched real matmul D_l[{N},2l+1,2l+1] @ X_l[2l+1,{S}] with prebuilt D "
        f"(construction excluded){'' if 'Ds' in held else ' (random orthogonal stand-ins for D)'}; "
        f"per_rotation_ms is per (signal, rotation); median of {n}")
    del Ds, held
    rows[-2]["ratio_D"], rows[-2]["ratio_call"] = ratio_D, ratio_call
    return rows


# --------------------------------------------------------------------------- report
def markdown(rows: list[dict]) -> str:
    lines = ["| library | b | what | ms | per rotation ms |", "|---|---:|---|---:|---:|"]
    for r in rows:
        per = "" if r["per_rotation_ms"] is None else f"{r['per_rotation_ms']:.4g}"
        flag = " (extrapolated)" if "EXTRAPOLATED" in r["notes"] else ""
        lines.append(f"| {r['library']} | {r['b']} | {r['what']}{flag} | {r['ms']:.4g} | {per} |")
    by = {(r["library"], r["b"], r["what"]): r for r in rows}
    bs = sorted({r["b"] for r in rows})
    lines += ["", "Ratios (> 1: e3nn is slower)", "",
              "| b | e3nn D / harness wigner_D | e3nn D / harness per-call construction | "
              "harness application / e3nn application (D prebuilt) |",
              "|---:|---:|---:|---:|"]
    for b in bs:
        e = by.get(("e3nn", b, "wigner_D_explicit"))
        ha, ea = by.get(("harness", b, "application")), by.get(("e3nn", b, "application"))
        if e is None:
            lines.append(f"| {b} | n/a | n/a | n/a |")
            continue
        lines.append(f"| {b} | {e['ratio_D']:.3g} | {e['ratio_call']:.3g} | {ha['ms'] / ea['ms']:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bandwidths", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--signals", type=int, default=16)
    ap.add_argument("--rotations", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="at most this many timed calls (median reported)")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds per measurement after which no further timed call is started")
    ap.add_argument("--e3nn-budget", type=float, default=60.0,
                    help="above this predicted time for all degrees, e3nn is timed on a subset")
    ap.add_argument("--out", default="results/peers/rotation.csv")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    versions = (f"harness={harness.__version__} torch={torch.__version__} numpy={np.__version__} "
                f"e3nn={getattr(e3nn, '__version__', '-')}")
    print(f"{versions}; {a.threads} torch threads; {a.signals} signals x {a.rotations} rotations; "
          f"float64; median of <= {a.repeats} timed calls after 1 warm-up", flush=True)
    if o3 is None:
        print(f"note: e3nn skipped (not importable: {E3NN_ERROR})")

    rows: list[dict] = []
    with torch.no_grad():
        for b in a.bandwidths:
            rows += bench_bandwidth(b, a, versions)

    print()
    print(markdown(rows))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})
    print(f"\nwrote {out} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
