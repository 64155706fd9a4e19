"""pytest-benchmark micro-benchmarks of exact rotation (Wigner-D), harness against e3nn.

Skipped by the default run (``--benchmark-skip`` in pyproject addopts); run them with
``pytest -o addopts="" --benchmark-only tests/test_bench_rotations.py`` (or ``make bench``).
float64, 2 threads, 32 Haar-random rotations, 16 random signals. Groups:

* ``rotation construction b=..``: harness ``wigner_D(b, R)`` (explicit complex D, all degrees l < b);
  harness per-call construction of ``rotate_coefficients`` (``matrix_to_euler_zyz`` + the three
  phase vectors + a cache hit of its table ``rotation_plan``); e3nn ``o3.wigner_D(l, ...)`` for all l < b
  (b <= 64 only: it grows like b^4 and takes tens of seconds at b = 128).
* ``rotation application b=..``: ``rotate_coefficients(c[:, None], R[None])``, every signal by
  every rotation (its per-call construction included; no D is formed).

The explicit harness D at b = 128 is ~4 GiB (complex128, 32 rotations) and takes tens of seconds,
so the slow cases run a fixed small number of rounds (``benchmark.pedantic``).
"""

from __future__ import annotations

import math

import pytest
import torch

from harness.sphere import so3, wigner
import harness

BANDWIDTHS = [32, 64, 128]
E3NN_BANDWIDTHS = [32, 64]
SIGNALS = 16
ROTATIONS = 32

pytestmark = [pytest.mark.usefixtures("bench_threads"), pytest.mark.benchmark(min_rounds=3, warmup=True, warmup_iterations=1)]

size = pytest.mark.parametrize("b", BANDWIDTHS, ids=[f"b{b}" for b in BANDWIDTHS])


def _rotations(b: int) -> torch.Tensor:
    return so3.random_rotations(ROTATIONS, seed=b)


def _coeffs(b: int) -> torch.Tensor:
    """Random ``[SIGNALS, b, b]`` complex128 ``[l, m]`` coefficients of real bandwidth-b signals."""
    gen = torch.Generator().manual_seed(b)
    c = torch.randn(SIGNALS, b, b, dtype=torch.complex128, generator=gen).tril()
    c[..., 0] = c[..., 0].real
    return c


def _cached_table(b: int):
    """The per-bandwidth table ``rotate_coefficients`` caches."""
    return wigner.rotation_plan(b)


def _orders(b: int) -> torch.Tensor:
    """The orders whose phases a call computes: m >= 0."""
    return torch.arange(0, b, dtype=torch.float64)


def _per_call_construction(b: int, R: torch.Tensor):
    """What ``rotate_coefficients`` computes per call beyond the cached table: a cache hit, the
    ZYZ angles and the three phase vectors ``exp(-i m t)``."""
    half = math.pi / 2
    table = _cached_table(b)
    alpha, beta, gamma = so3.matrix_to_euler_zyz(R)
    m = _orders(b)
    phases = []
    for t in (alpha + half, beta, gamma - half):
        tm = t[..., None] * m
        phases.append(torch.polar(torch.ones_like(tm), -tm).to(torch.complex128))
    return table, phases


# --------------------------------------------------------------------------- harness construction
@size
def test_bench_harness_wigner_D(benchmark, b):
    R = _rotations(b)
    benchmark.group = f"rotation construction b={b}"
    benchmark.extra_info.update(library="harness", what="wigner_D explicit", rotations=ROTATIONS)
    if b >= 128:  # ~4 GiB and tens of seconds per call
        D = benchmark.pedantic(wigner.wigner_D, args=(b, R), rounds=1, iterations=1, warmup_rounds=0)
    else:
        D = benchmark(wigner.wigner_D, b, R)
    top = D[:, b - 1]  # the full (2b-1) x (2b-1) block of the top degree: unitary
    eye = torch.eye(2 * b - 1, dtype=torch.complex128)
    assert float((top @ top.conj().transpose(-1, -2) - eye).abs().max()) < 1e-10
    del D, top


@size
def test_bench_harness_per_call_construction(benchmark, b):
    R = _rotations(b)
    _cached_table(b)  # the one-time table build is not part of a call
    benchmark.group = f"rotation construction b={b}"
    benchmark.extra_info.update(library="harness", what="matrix_to_euler_zyz + phases + cached table",
                                rotations=ROTATIONS)
    table, phases = benchmark(_per_call_construction, b, R)
    assert table is _cached_table(b)  # the call reused the table, built once
    m = _orders(b)
    for p in phases:  # exp(-i m t): unit modulus, and the m-th power of the m = 1 phase
        assert torch.allclose(p.abs(), torch.ones_like(p.abs()))
        assert torch.allclose(p, p[:, 1:2] ** m.to(p.dtype), atol=1e-9)


# --------------------------------------------------------------------------- harness application
@size
def test_bench_harness_application(benchmark, b):
    R, c = _rotations(b), _coeffs(b)
    out = wigner.rotate_coefficients(c[:, None], R[None])  # builds the table, first call
    # a rotation preserves every degree's norm
    err = (harness.degree_norms(out) - harness.degree_norms(c)[:, None]).abs().max()
    assert float(err / harness.degree_norms(c).max()) < 1e-10
    benchmark.group = f"rotation application b={b}"
    benchmark.extra_info.update(library="harness", what="rotate_coefficients", signals=SIGNALS,
                                rotations=ROTATIONS)
    out = benchmark(wigner.rotate_coefficients, c[:, None], R[None])
    assert out.shape == (SIGNALS, ROTATIONS, b, b)


# --------------------------------------------------------------------------- e3nn construction
@pytest.mark.parametrize("b", E3NN_BANDWIDTHS, ids=[f"b{b}" for b in E3NN_BANDWIDTHS])
def test_bench_e3nn_wigner_D(benchmark, b):
    o3 = pytest.importorskip("e3nn.o3")
    R = _rotations(b)
    angles = o3.matrix_to_angles(R)  # float64 angles -> float64 D

    def construct():
        return [o3.wigner_D(l, *angles) for l in range(b)]

    benchmark.group = f"rotation construction b={b}"
    benchmark.extra_info.update(library="e3nn", what="o3.wigner_D for all l < b", rotations=ROTATIONS)
    Ds = benchmark.pedantic(construct, rounds=3, iterations=1, warmup_rounds=1)
    top = Ds[-1]  # real orthogonal
    assert len(Ds) == b and float((top @ top.transpose(-1, -2) - torch.eye(2 * b - 1)).abs().max()) < 1e-10
