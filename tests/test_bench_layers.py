"""pytest-benchmark micro-benchmarks of the layers and of the ``esteves_mnist`` preset.

Skipped by the default run (``--benchmark-skip`` in pyproject addopts); run them with
``pytest -o addopts="" --benchmark-only tests/test_bench_layers.py`` (or ``make bench``).
Batch 32, float32, 2 threads, the default backend (ducc0 on the CPU), DH grid (2b x 2b).

Layers (16 channels in, 16 out): ``SphericalConv(16, 16, b, filter_params=8)``,
``Pointwise("relu")`` with oversampling 1.0 and 2.0, ``SpectralPool()`` (b -> b // 2),
``InvariantDescriptor()``; and ``build_model("esteves_mnist", bandwidth=b)`` on 1 input channel.

Directions:

* ``forward``:  the module call under ``torch.no_grad()`` (no graph is recorded);
* ``forward+backward``: input with ``requires_grad``, forward, the loss ``(y * w).sum()`` with a
  fixed random projection ``w`` (so the upstream gradient has no special structure), ``.backward()``.
  Gradients are reset to None between rounds outside the timed region (``benchmark.pedantic``,
  one call per round, rounds sized from a warm-up call to about ``TARGET_S`` seconds, at least 3).

Groups are ``(layer, b)``, so each group compares forward with forward+backward. Inputs, modules
and any cached transform tables are built, and a first call made, before timing.
"""

from __future__ import annotations

import time

import pytest
import torch

import harness

BANDWIDTHS = [16, 32, 64]
BATCH = 32
CHANNELS = 16
THREADS = 2  # as the bench_threads fixture (tests/conftest.py) sets
ROUNDS = 3  # at least
MAX_ROUNDS = 100
TARGET_S = 1.0  # forward+backward: rounds sized to about this many seconds
LAYERS = ["conv", "pointwise_s1", "pointwise_s2", "pool", "descriptor", "esteves_mnist"]
DIRECTIONS = ["forward", "forward+backward"]

pytestmark = [pytest.mark.usefixtures("bench_threads"), pytest.mark.benchmark(min_rounds=ROUNDS, warmup=True, warmup_iterations=1)]


def make_layer(name: str, b: int) -> tuple[torch.nn.Module, int]:
    """The module under test and its number of input channels."""
    if name == "conv":
        return harness.SphericalConv(CHANNELS, CHANNELS, b, filter_params=8), CHANNELS
    if name == "pointwise_s1":
        return harness.Pointwise("relu", oversampling=1.0), CHANNELS
    if name == "pointwise_s2":
        return harness.Pointwise("relu", oversampling=2.0), CHANNELS
    if name == "pool":
        return harness.SpectralPool(), CHANNELS
    if name == "descriptor":
        return harness.InvariantDescriptor(), CHANNELS
    if name == "esteves_mnist":
        return harness.build_model("esteves_mnist", bandwidth=b), 1
    raise ValueError(name)


def expected_shape(name: str, b: int) -> tuple[int, ...]:
    return {"pool": (BATCH, CHANNELS, b, b), "descriptor": (BATCH, CHANNELS, b),
            "esteves_mnist": (BATCH, 10)}.get(name, (BATCH, CHANNELS, 2 * b, 2 * b))


@pytest.mark.parametrize("b", BANDWIDTHS, ids=[f"b{b}" for b in BANDWIDTHS])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("layer", LAYERS)
def test_bench_layer(benchmark, layer, direction, b):
    gen = torch.Generator().manual_seed(1000 * b + LAYERS.index(layer))
    module, cin = make_layer(layer, b)
    x = torch.randn(BATCH, cin, 2 * b, 2 * b, generator=gen)
    with torch.no_grad():
        y = module(x)  # first call: builds any cached tables
        # a rotation about the polar axis by one grid step of the coarsest grid a layer reaches
        # permutes the columns of every DH grid on the way: every layer commutes with it exactly
        # (the descriptor and the classifier are invariant)
        shift = {"pool": 2, "esteves_mnist": 4}.get(layer, 1)
        yr = module(torch.roll(x, shift, dims=-1))
    assert y.shape == expected_shape(layer, b) and y.dtype == torch.float32
    want = y if y.dim() < 4 else torch.roll(y, shift * y.shape[-1] // x.shape[-1], dims=-1)
    assert float((yr - want).abs().max() / y.abs().max()) < 1e-4
    benchmark.group = f"{layer} b={b}"
    benchmark.extra_info.update(layer=layer, b=b, batch=BATCH, direction=direction, threads=THREADS)

    if direction == "forward":
        def fwd():
            with torch.no_grad():
                return module(x)

        out = benchmark(fwd)
        assert torch.equal(out, y)  # what was timed is the same computation, deterministic
        return

    w = torch.randn(y.shape, generator=gen)
    x.requires_grad_(True)
    params = [p for p in module.parameters() if p.requires_grad]

    def reset():
        x.grad = None
        for p in params:
            p.grad = None
        return (), {}

    def fwd_bwd():
        (module(x) * w).sum().backward()

    reset()
    t0 = time.perf_counter()
    fwd_bwd()  # warm-up; also sizes the number of rounds to about TARGET_S seconds
    rounds = min(MAX_ROUNDS, max(ROUNDS, round(TARGET_S / (time.perf_counter() - t0))))
    benchmark.pedantic(fwd_bwd, setup=reset, rounds=rounds)
    # the gradient is the derivative: <grad, v> against a central difference along v (float64)
    v = torch.randn(x.shape, generator=gen)
    xd, md = x.detach().double(), module.double()  # the same mode as the timed call (BatchNorm: batch statistics)
    with torch.no_grad():
        h = 1e-6  # small: sampled ReLUs have kinks
        fd = ((md(xd + h * v) * w).sum() - (md(xd - h * v) * w).sum()) / (2 * h)
    module.float()
    assert abs(float((x.grad.double() * v).sum()) - float(fd)) <= 2e-2 * abs(float(fd)) + 1e-6
