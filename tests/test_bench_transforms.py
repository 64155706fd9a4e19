"""pytest-benchmark micro-benchmarks of sft / isft against ducc0 (direct) and torch-harmonics.

Skipped by the default run (``--benchmark-skip`` in pyproject addopts); run them with
``pytest -o addopts="" --benchmark-only tests/test_bench_transforms.py`` (or ``make bench``).
Every benchmark transforms one batch of 16 signals on the DH grid (2b x 2b) with 2 threads; groups
are ``(direction, dtype, b)`` so each group compares the libraries at one size. Tables, caches and
inputs are built (and a first call made) before timing. torch-harmonics runs on its own
"equiangular" (Clenshaw-Curtis) grid of the same size, nlat = nlon = 2b, lmax = mmax = b.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import harness
from harness.sphere.transforms import legendre_plan

BANDWIDTHS = [32, 64, 128, 256]
BATCH = 16
THREADS = 2  # as the bench_threads fixture (tests/conftest.py) sets
DTYPES = {"float32": torch.float32, "float64": torch.float64}

pytestmark = [pytest.mark.usefixtures("bench_threads"), pytest.mark.benchmark(min_rounds=3, warmup=True, warmup_iterations=1)]

size = pytest.mark.parametrize("b", BANDWIDTHS, ids=[f"b{b}" for b in BANDWIDTHS])
dtypes = pytest.mark.parametrize("dtype", list(DTYPES))
directions = pytest.mark.parametrize("direction", ["sft", "isft"])


def _coeffs(b: int, dtype: str) -> torch.Tensor:
    """Random ``[BATCH, b, b]`` ``[l, m]`` coefficients of real bandwidth-b signals."""
    gen = torch.Generator().manual_seed(b)
    cdt = torch.complex64 if dtype == "float32" else torch.complex128
    c = torch.randn(BATCH, b, b, dtype=cdt, generator=gen).tril()
    c[..., 0] = c[..., 0].real
    return c


def _tol(dtype: str) -> float:
    return 1e-4 if dtype == "float32" else 1e-10


def _rel_err(got, want) -> float:
    got, want = np.asarray(got), np.asarray(want)
    return float(np.abs(got - want).max() / np.abs(want).max())


# --------------------------------------------------------------------------- harness
@size
@dtypes
@directions
@pytest.mark.parametrize("backend", harness.BACKENDS)
def test_bench_harness(benchmark, backend, direction, dtype, b):
    c = _coeffs(b, dtype)
    x = harness.isft(c, "dh", backend=backend)  # builds the tables (torch path)
    assert _rel_err(harness.sft(x, "dh", backend=backend), c) < _tol(dtype)
    benchmark.group = f"{direction} {dtype} b={b}"
    benchmark.extra_info["library"] = f"harness-{backend}"
    if backend == "torch":
        benchmark.extra_info["table_bytes"] = legendre_plan("dh", b, DTYPES[dtype]).table_bytes()
    if direction == "sft":  # what was timed is still the exact transform
        assert _rel_err(benchmark(harness.sft, x, "dh", backend=backend), c) < _tol(dtype)
    else:
        assert _rel_err(harness.sft(benchmark(harness.isft, c, "dh", backend=backend), "dh"), c) < _tol(dtype)


# --------------------------------------------------------------------------- ducc0, called directly
def _ducc_packed(c: torch.Tensor) -> np.ndarray:
    """``[B, b, b]`` ``[l, m]`` -> ducc0's default (healpy, m-major) layout, lmax = mmax = b - 1."""
    b = c.shape[-1]
    cn = c.numpy()
    out = np.zeros((c.shape[0], b * (b + 1) // 2), dtype=cn.dtype)
    for m in range(b):
        i0 = m * (2 * b + 1 - m) // 2
        out[:, i0 : i0 + b - m] = cn[:, m:, m]
    return out


@size
@dtypes
@directions
def test_bench_ducc0_direct(benchmark, direction, dtype, b):
    ducc0 = pytest.importorskip("ducc0")
    alm = _ducc_packed(_coeffs(b, dtype))
    rdt = np.float32 if dtype == "float32" else np.float64
    args = dict(spin=0, lmax=b - 1, geometry="DH", nthreads=THREADS)

    def synthesis(a):
        out = np.empty((a.shape[0], 2 * b, 2 * b), dtype=rdt)
        for i in range(a.shape[0]):
            ducc0.sht.experimental.synthesis_2d(alm=a[i : i + 1], map=out[i : i + 1], **args)
        return out

    def analysis(m):
        out = np.empty((m.shape[0], alm.shape[1]), dtype=alm.dtype)
        for i in range(m.shape[0]):
            ducc0.sht.experimental.analysis_2d(map=m[i : i + 1], alm=out[i : i + 1], **args)
        return out

    x = synthesis(alm)
    assert _rel_err(analysis(x), alm) < _tol(dtype)
    benchmark.group = f"{direction} {dtype} b={b}"
    benchmark.extra_info["library"] = "ducc0-direct"
    out = benchmark(analysis, x) if direction == "sft" else analysis(benchmark(synthesis, alm))
    assert _rel_err(out, alm) < _tol(dtype)


# --------------------------------------------------------------------------- torch-harmonics
@size
@dtypes
@directions
def test_bench_torch_harmonics(benchmark, direction, dtype, b):
    # exc_type: also skip when an extension built against another torch fails to load
    th = pytest.importorskip("torch_harmonics", exc_type=ImportError)
    n = 2 * b
    fwd = th.RealSHT(n, n, lmax=b, mmax=b, grid="equiangular", norm="ortho").to(DTYPES[dtype])
    inv = th.InverseRealSHT(n, n, lmax=b, mmax=b, grid="equiangular", norm="ortho").to(DTYPES[dtype])
    c = _coeffs(b, dtype)
    with torch.no_grad():
        x = inv(c)
        assert _rel_err(fwd(x), c) < _tol(dtype)
    benchmark.group = f"{direction} {dtype} b={b}"
    benchmark.extra_info["library"] = "torch-harmonics"
    benchmark.extra_info["table_bytes"] = sum(
        t.numel() * t.element_size() for mod in (fwd, inv) for t in mod.buffers())
    with torch.no_grad():
        out = benchmark(fwd, x) if direction == "sft" else fwd(benchmark(inv, c))
    assert _rel_err(out, c) < _tol(dtype)
