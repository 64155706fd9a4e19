#!/usr/bin/env python
"""Side-by-side timing of the SO(3) Fourier (Wigner) transform against peer libraries.

Libraries (``library`` column), all on the CPU, in one process, bandwidth b (degrees l < b, all
orders |m|, |n| <= l), a batch of ``--batch`` real signals:

* ``harness``  :func:`harness.sphere.so3_transforms.so3_fft` / ``so3_ifft`` (torch): real
               ``[batch, 2b, 2b, 2b]`` on the SOFT grid (beta, alpha, gamma) <-> complex
               ``[batch, b, b, 2b-1]`` (l, m >= 0, n). ``table_MiB``: ``so3_plan(b, dtype).table_bytes()``,
               its d-tables for both directions (the forward one with the quadrature weights
               folded in).
* ``s2fft``    s2fft's precompute Wigner transform (JAX), ``sampling="dh"``, ``reality=True``,
               L = N = b: ``s2fft.precompute_transforms.wigner.forward_transform_jax`` /
               ``inverse_transform_jax`` (what ``wigner.forward(..., method="jax")`` dispatches to)
               with the kernels of ``construct.wigner_kernel_jax(b, b, reality=True, sampling="dh",
               forward=True / False)`` passed in. s2fft transforms one signal per call, so the batch
               is ``jax.jit(jax.vmap(..., in_axes=(0, None)))`` (kernel shared); every timed call
               ends in ``.block_until_ready()``. Its own layouts: signal ``[gamma 2b-1, beta 2b,
               alpha 2b-1]`` (DH: ``beta_j = pi (2j+1)/(4b)``, the same beta samples as SOFT; one
               alpha and one gamma sample fewer than ours), coefficients ``[n 2b-1, l b, m 2b-1]``
               (all m and n; the n < 0 half is filled from the real-signal symmetry).
               ``table_MiB``: nbytes of the forward plus the inverse kernel (``[n >= 0, beta, l, m]``
               each, quadrature weights / normalisation folded in). s2fft hard-codes complex128 in
               its transforms, so float32 rows run with ``jax_enable_x64`` off (inside
               ``jax.enable_x64(False)``: every complex128 becomes complex64) on the float64
               kernels cast to float32; float64 rows run with ``jax_enable_x64`` on. Both of its
               transforms cast the real kernel to complex inside the jitted call
               (``kernel.astype(complex128)``), a temporary twice the kernel's size per call
               (1 GB at b = 64), which is part of what is timed. Its kernel
               builder picks the "direct" (Risbo) recursion for N = L, so the build is O(b^4)
               work in a Python loop over l.
* ``e3nn``     ``e3nn.o3.SO3Grid(lmax=b-1, resolution=b, aspect_ratio=1)``: ``from_grid`` (forward) /
               ``to_grid`` (inverse) between real ``[batch, sum_l (2l+1)^2]`` coefficients in
               e3nn's real basis and its grid ``[alpha 2b, beta 2b, gamma 2b]`` (beta the same
               SOFT/Kostelec-Rockmore samples and weights; resolution b with aspect ratio 1 is the
               smallest grid on which ``from_grid(to_grid(c)) == c``: e3nn's default aspect ratio 2
               doubles alpha and gamma). Both directions are one einsum against a dense buffer
               ``D [2b, 2b, 2b, sum_l (2l+1)^2]`` (~85 b^6 bytes in float64: 1.4 GB at b = 16,
               92 GB at b = 32). When the predicted build peak (~4x the float64 D: measured ~5.8 GB
               at b = 16) exceeds
               ``--max-gib``, nothing is built: the row gives ``table_MiB`` (the float64 D) and a
               note, no timings. The module is built under ``torch.set_default_dtype(float64)``
               (e3nn builds its grid in the default dtype) and cast with ``.to(dtype)``.

Timings: ``forward_ms`` / ``inverse_ms`` are the MEDIAN over ``--repeats`` calls of one batched
transform, after ``--warmup`` untimed calls (which also compile s2fft's jitted functions); for one
(b, dtype) the calls of all libraries and both directions are interleaved round-robin (one call of
each per round), so a drift of the machine's speed hits all alike; between two timed calls the
process sleeps ``--gap-ms`` (untimed), so that a library's worker threads still spinning after its
call (torch's OpenMP pool, XLA's Eigen pool) do not take cores from the next library's call;
``forward_best_ms`` / ``inverse_best_ms`` are the minimum. Inputs are built before timing: the
forward is timed on the grid signal of the inverse of random band-limited coefficients.
``ratio_forward`` / ``ratio_inverse`` = peer time / harness time at the same (b, dtype) (> 1: the
peer is slower). ``roundtrip_rel_err`` = ``max |forward(inverse(c)) - c| / max |c|`` for random
coefficients of real band-limited signals in each library's own layout (harness:
``random_so3_coefficients``; s2fft: ``s2fft.utils.signal_generator.generate_flmn(rng, b, b,
reality=True)``; e3nn: standard normal real vectors), each in the dtype under test.

``setup_s``: seconds to build the tables from scratch, float64 first: harness ``so3_plan(b, dtype)``
with its plan caches cleared (float32: the float64 build and the cast); s2fft both kernels
(``block_until_ready``; the first call's jit compile time is in ``note``); e3nn the SO3Grid
constructor. float32 rows of s2fft and e3nn reuse the float64 build of the same b, so their
``setup_s`` is that build's plus the cast. Bandwidths are the outer loop, dtypes the inner one.

Threads: torch ``set_num_threads(--threads)``; before jax is imported ``XLA_FLAGS`` is set to
``--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=<threads>`` (the second is the
commonly quoted form; XLA's CPU client sizes its pool from the CPUs the process may use), and when
``--threads`` is below the number of CPUs the whole process is pinned to the first ``--threads``
CPUs (``os.sched_setaffinity``), so XLA cannot use more. ``results/peers/so3.csv`` was measured on
a 2-CPU AMD EPYC virtual machine (24 GiB RAM) with ``--threads 2`` (every CPU; no pinning needed),
under ``nice -n -10``, while other jobs kept about one CPU busy (``other_cpus`` ~1 in every row):
the harness's torch path with 2 threads suffers most from that (its many small parallel regions
each wait for the second thread to be scheduled: against a ``--threads 1`` run made right after
under the same load, it was 3-45x slower at b <= 16, 1.4-2.6x at b = 32 and 1.1x at b = 64,
while s2fft's times hardly changed with 1 thread). Rerun on an idle machine before quoting the
ratios.
The ``threads``, ``xla_flags``, ``machine`` and ``nproc`` columns record this with every row;
``other_cpus`` is how many CPUs other processes kept busy, on average, during that (b, dtype)'s
timed calls (``/proc/stat`` busy time less this process's CPU time, per wall second): with 2
threads on 2 CPUs any other load makes the threads of one call wait for each other, so rows with
``other_cpus`` well above 0 are not clean measurements (a warning is printed when the load average
is above 0.5 at the start).

Run it from an environment that has jax, s2fft and e3nn besides the harness (a library that cannot
be imported is skipped with a note row), e.g. a separate venv::

    python3.11 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install -c constraints.txt torch==2.13.0 s2fft jax jaxlib e3nn==0.6.0 \
        numpy scipy ducc0 pandas pyarrow seaborn tqdm
    /work/peers-venv/bin/pip install --no-deps -e .

Usage::

    /work/peers-venv/bin/python benchmarks/peers_so3.py --bandwidths 8 16 32 64 --batch 16 \
        --threads 2 --repeats 20 --out results/peers/so3.csv
"""

from __future__ import annotations

import argparse
import copy
import csv
import gc
import importlib.metadata
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
from harness.sphere import so3_transforms as st

LIBRARIES = ("harness", "s2fft", "e3nn")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
COLUMNS = ["library", "b", "dtype", "batch", "forward_ms", "inverse_ms", "setup_s", "table_MiB",
           "roundtrip_rel_err", "note", "ratio_forward", "ratio_inverse", "forward_best_ms",
           "inverse_best_ms", "repeats", "threads", "xla_flags", "torch", "jax", "jaxlib", "s2fft",
           "e3nn", "numpy", "machine", "nproc", "other_cpus"]


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


def loadavg() -> float | None:
    """The 1-minute load average, None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine from /proc/stat, CPU seconds of this process)."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:8]]  # user nice system idle iowait irq softirq
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / hz, own.user + own.system


def other_cpus(before, after, wall: float) -> float | None:
    """How many CPUs other processes kept busy on average between two ``cpu_seconds()``."""
    if before is None or after is None or wall <= 0:
        return None
    return round(max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / wall, 2)


def rel_err(got, want) -> float:
    got, want = np.asarray(got), np.asarray(want)
    return float(np.abs(got - want).max() / np.abs(want).max())


def time_round_robin(fns: dict, repeats: int, warmup: int, gap_s: float) -> dict:
    """``{name: (median, best)}`` wall time in ms of each ``fn()``, the calls interleaved (one of
    each per round) with an untimed ``gap_s`` sleep before each call."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    ts: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            if gap_s:
                time.sleep(gap_s)
            t0 = time.perf_counter()
            fn()
            ts[k].append((time.perf_counter() - t0) * 1e3)
    return {k: (statistics.median(v), min(v)) for k, v in ts.items()}


def setup_threads(threads: int) -> str:
    """Pin the process to ``threads`` CPUs when fewer than all, and set XLA_FLAGS (before jax)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if threads < len(cpus):
            os.sched_setaffinity(0, cpus[:threads])
    except (AttributeError, OSError):
        pass
    flags = f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    torch.set_num_threads(threads)
    return os.environ["XLA_FLAGS"]


# --------------------------------------------------------------------------- one library each
# Each returns dict(fwd, inv, err, table_bytes, setup_s, note) for one (b, dtype); inputs, tables
# and compiled functions are built here, outside the timed calls.
def setup_harness(b: int, dtype: torch.dtype, batch: int, cache: dict) -> dict:
    st._plan_float64.cache_clear()
    st._plan_cast.cache_clear()
    t0 = time.perf_counter()
    plan = st.so3_plan(b, dtype)
    setup_s = time.perf_counter() - t0
    cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
    c = st.random_so3_coefficients(batch, 1, b, seed=0)[:, 0].to(cdt)
    x = st.so3_ifft(c)
    err = rel_err(st.so3_fft(x), c)
    return dict(fwd=lambda: st.so3_fft(x), inv=lambda: st.so3_ifft(c), err=err,
                table_bytes=plan.table_bytes(), setup_s=setup_s, note="")


class S2fft:
    """s2fft imported lazily (after XLA_FLAGS is set), with x64 on for float64."""

    def __init__(self):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import jaxlib
        from s2fft.precompute_transforms import construct
        from s2fft.precompute_transforms import wigner as pw
        from s2fft.utils.signal_generator import generate_flmn
        self.jax, self.jnp, self.construct, self.pw, self.generate_flmn = jax, jnp, construct, pw, generate_flmn
        self.versions = dict(jax=jax.__version__, jaxlib=jaxlib.__version__, s2fft=importlib.metadata.version("s2fft"))

    @staticmethod
    def kernel_bytes(b: int, itemsize: int = 8) -> int:
        """Bytes of one reality kernel, ``[N, 2L, L, 2L-1]`` with L = N = b (DH sampling)."""
        return b * 2 * b * b * (2 * b - 1) * itemsize

    def setup(self, b: int, dtype: torch.dtype, batch: int, cache: dict) -> dict:
        jax, jnp, pw = self.jax, self.jnp, self.pw
        L = N = b
        if "s2fft" not in cache:  # the float64 kernels of this b, built once
            t0 = time.perf_counter()
            kf = self.construct.wigner_kernel_jax(L, N, reality=True, sampling="dh", forward=True).block_until_ready()
            ki = self.construct.wigner_kernel_jax(L, N, reality=True, sampling="dh", forward=False).block_until_ready()
            cache["s2fft"] = (kf, ki, time.perf_counter() - t0)
            cache["s2fft_fns"] = (
                jax.jit(jax.vmap(lambda f, k: pw.forward_transform_jax(f, k, L, N, "dh", True, None), in_axes=(0, None))),
                jax.jit(jax.vmap(lambda c, k: pw.inverse_transform_jax(c, k, L, N, "dh", True, None), in_axes=(0, None))))
        kf, ki, setup_s = cache["s2fft"]
        fwd_j, inv_j = cache["s2fft_fns"]
        rng = np.random.default_rng(0)
        c = np.stack([self.generate_flmn(rng, L, N, reality=True) for _ in range(batch)])
        if dtype == torch.float64:
            x64 = True
            ctx = lambda: jax.enable_x64(True)  # noqa: E731
        else:
            x64 = False
            ctx = lambda: jax.enable_x64(False)  # noqa: E731
            t0 = time.perf_counter()
            with ctx():
                kf = jnp.asarray(np.asarray(kf).astype(np.float32)).block_until_ready()
                ki = jnp.asarray(np.asarray(ki).astype(np.float32)).block_until_ready()
            setup_s += time.perf_counter() - t0
            c = c.astype(np.complex64)
        with ctx():
            cj = jnp.asarray(c)
            t0 = time.perf_counter()
            x = inv_j(cj, ki).block_until_ready()
            y = fwd_j(x, kf).block_until_ready()
            compile_s = time.perf_counter() - t0
            err = rel_err(y, c)
            out_dtypes = f"{x.dtype}/{y.dtype}"

        def fwd():
            with ctx():
                return fwd_j(x, kf).block_until_ready()

        def inv():
            with ctx():
                return inv_j(cj, ki).block_until_ready()

        note = (f"jax_enable_x64={x64}; grid [gamma {2 * N - 1}, beta {2 * L}, alpha {2 * L - 1}] (dh), "
                f"signal/coeffs {out_dtypes}; first calls (jit compile) {compile_s:.1f} s")
        return dict(fwd=fwd, inv=inv, err=err, table_bytes=int(kf.nbytes + ki.nbytes), setup_s=setup_s, note=note)


class E3nn:
    def __init__(self):
        import e3nn
        from e3nn import o3
        self.o3 = o3
        self.versions = dict(e3nn=e3nn.__version__)

    @staticmethod
    def d_bytes(b: int, itemsize: int = 8) -> int:
        """Bytes of SO3Grid(b-1, b, aspect_ratio=1).D: ``[2b, 2b, 2b, sum_{l<b} (2l+1)^2]``."""
        return (2 * b) ** 3 * (b * (4 * b * b - 1) // 3) * itemsize

    def setup(self, b: int, dtype: torch.dtype, batch: int, cache: dict) -> dict:
        if "e3nn" not in cache:
            old = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)
            try:
                t0 = time.perf_counter()
                grid64 = self.o3.SO3Grid(b - 1, b, aspect_ratio=1)
                cache["e3nn"] = (grid64, time.perf_counter() - t0)
            finally:
                torch.set_default_dtype(old)
        grid, setup_s = cache["e3nn"]
        if dtype != torch.float64:
            t0 = time.perf_counter()
            grid = copy.copy(cache["e3nn"][0])  # a cast copy; the float64 one stays cached
            grid._buffers = {k: v.to(dtype) for k, v in grid._buffers.items()}
            setup_s += time.perf_counter() - t0
        dim = grid.D.shape[-1]
        gen = torch.Generator().manual_seed(0)
        c = torch.randn(batch, dim, dtype=torch.float64, generator=gen).to(dtype)
        x = grid.to_grid(c)
        err = rel_err(grid.from_grid(x), c)
        table = sum(t.numel() * t.element_size() for t in grid.buffers())
        note = f"grid [alpha {grid.res_alpha}, beta {grid.res_beta}, gamma {grid.res_gamma}], real basis, {dim} coefficients"
        return dict(fwd=lambda: grid.from_grid(x), inv=lambda: grid.to_grid(c), err=err,
                    table_bytes=table, setup_s=setup_s, note=note)


# --------------------------------------------------------------------------- report
def fmt(v, spec: str) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(rows: list[dict]) -> str:
    lines = ["| library | b | dtype | forward ms | inverse ms | fwd / harness | inv / harness | setup s |"
             " table MiB | round-trip rel err | note |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['library']} | {r['b']} | {r['dtype']} | {fmt(r['forward_ms'], '.3f')} | "
                     f"{fmt(r['inverse_ms'], '.3f')} | {fmt(r.get('ratio_forward'), '.2f')} | "
                     f"{fmt(r.get('ratio_inverse'), '.2f')} | {fmt(r['setup_s'], '.2f')} | "
                     f"{fmt(r['table_MiB'], '.2f')} | {fmt(r['roundtrip_rel_err'], '.1e')} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bandwidths", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20, help="timed calls per measurement (median reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls before timing")
    ap.add_argument("--gap-ms", type=float, default=5.0, help="untimed sleep before each timed call")
    ap.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=["float64", "float32"])
    ap.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    ap.add_argument("--max-gib", type=float, default=6.0,
                    help="skip (with a note row) a library whose predicted table memory exceeds this")
    ap.add_argument("--out", default="results/peers/so3.csv")
    a = ap.parse_args(argv)

    xla_flags = setup_threads(a.threads)
    peers: dict = {}
    skipped: dict = {}
    for lib, cls in (("s2fft", S2fft), ("e3nn", E3nn)):
        if lib not in a.libraries:
            continue
        try:
            peers[lib] = cls()
        except Exception as e:  # ImportError, or a broken install
            skipped[lib] = f"not importable: {type(e).__name__}: {e}"
            print(f"note: {lib} skipped ({skipped[lib]})", flush=True)
    versions = dict(jax="", jaxlib="", s2fft="", e3nn="")
    for p in peers.values():
        versions.update(p.versions)
    common = dict(batch=a.batch, repeats=a.repeats, threads=a.threads, xla_flags=xla_flags,
                  torch=torch.__version__, numpy=np.__version__, machine=machine(), nproc=os.cpu_count(),
                  other_cpus=None, **versions)
    print(f"torch {common['torch']}, jax {versions['jax'] or '-'}, s2fft {versions['s2fft'] or '-'}, "
          f"e3nn {versions['e3nn'] or '-'}; {common['machine']}, {common['nproc']} CPUs, {a.threads} threads "
          f"(XLA_FLAGS={xla_flags!r}); batch {a.batch}; times: median of {a.repeats} after {a.warmup} "
          f"warm-up calls, round-robin, {a.gap_ms} ms gaps", flush=True)

    load = loadavg()
    if load is not None and load > 0.5:
        print(f"warning: 1-minute load average {load} before the run: other processes compete for the CPUs"
              " and the times (of multi-threaded calls most) will be inflated; see the other_cpus column", flush=True)
    rows: list[dict] = []

    def row(lib, b, dname, **kw):
        r = dict(library=lib, b=b, dtype=dname, forward_ms=None, inverse_ms=None, setup_s=None, table_MiB=None,
                 roundtrip_rel_err=None, note="", ratio_forward=None, ratio_inverse=None,
                 forward_best_ms=None, inverse_best_ms=None, **common)
        r.update(kw)
        rows.append(r)
        return r

    for lib, why in skipped.items():
        row(lib, "", "", note=f"skipped: {why}", repeats=0)
    limit = a.max_gib * 2**30
    with torch.no_grad():
        for b in a.bandwidths:
            cache: dict = {}  # the float64 builds of this b, reused by float32
            for dname in a.dtypes:
                dtype = DTYPES[dname]
                made, pending = {}, []
                for lib in a.libraries:
                    if lib in skipped:
                        continue
                    if lib == "s2fft":  # both float64 kernels + the complex128 copy made per call
                        need = 4 * S2fft.kernel_bytes(b)
                        if need > limit:
                            pending.append(dict(library=lib, repeats=0, table_MiB=2 * S2fft.kernel_bytes(b) / 2**20,
                                               note=f"not built: kernels + per-call complex cast need ~{need / 2**30:.1f} GiB"
                                                    f" > --max-gib {a.max_gib}"))
                            continue
                    if lib == "e3nn":  # build peak ~ 4 x the float64 D (wigner_D pieces, cat, cast)
                        need = 4 * E3nn.d_bytes(b)
                        if need > limit:
                            pending.append(dict(library=lib, repeats=0, table_MiB=E3nn.d_bytes(b, dtype.itemsize) / 2**20,
                                               note=f"not built: its dense D [{2 * b}, {2 * b}, {2 * b}, {b * (4 * b * b - 1) // 3}]"
                                                    f" is {E3nn.d_bytes(b, dtype.itemsize) / 2**30:.1f} GiB in {dname}, build"
                                                    f" peak ~{need / 2**30:.0f} GiB > --max-gib {a.max_gib}"))
                            continue
                    t0 = time.perf_counter()
                    made[lib] = setup_harness(b, dtype, a.batch, cache) if lib == "harness" else peers[lib].setup(b, dtype, a.batch, cache)
                    print(f"  set up {lib:8s} b={b:3d} {dname}: {time.perf_counter() - t0:.1f} s "
                          f"(tables {made[lib]['setup_s']:.2f} s, {made[lib]['table_bytes'] / 2**20:.1f} MiB)", flush=True)
                c0, w0 = cpu_seconds(), time.perf_counter()
                t = time_round_robin({(lib, d): m[d] for lib, m in made.items() for d in ("fwd", "inv")},
                                     a.repeats, a.warmup, a.gap_ms / 1e3)
                common["other_cpus"] = other_cpus(c0, cpu_seconds(), time.perf_counter() - w0)
                base = {}
                for lib, m in made.items():
                    (f_med, f_best), (i_med, i_best) = t[lib, "fwd"], t[lib, "inv"]
                    r = row(lib, b, dname, forward_ms=f_med, inverse_ms=i_med, forward_best_ms=f_best,
                            inverse_best_ms=i_best, setup_s=m["setup_s"], table_MiB=m["table_bytes"] / 2**20,
                            roundtrip_rel_err=m["err"], note=m["note"])
                    if lib == "harness":
                        base = r
                    print(f"  {lib:8s} b={b:3d} {dname}: fwd {f_med:10.3f} ms  inv {i_med:10.3f} ms  "
                          f"rt err {m['err']:.1e}  (other processes: {common['other_cpus']} CPUs)", flush=True)
                for r in rows:
                    if r["b"] == b and r["dtype"] == dname and r["forward_ms"] is not None and base:
                        r["ratio_forward"] = r["forward_ms"] / base["forward_ms"]
                        r["ratio_inverse"] = r["inverse_ms"] / base["inverse_ms"]
                for kw in pending:
                    r = row(kw.pop("library"), b, dname, **kw)
                    print(f"  {r['library']:8s} b={b:3d} {dname}: {r['note']}", flush=True)
                del made, t
                gc.collect()
            del cache
            gc.collect()

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
