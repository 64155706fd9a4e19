"""Property-based checks of the public API (Hypothesis): wrong types, shapes, dtypes, sizes and
special values raise ValueError or TypeError naming the argument, before any large allocation;
valid edge inputs (empty batches, b = 1, non-contiguous views) work. Bounded examples per test,
so the suite's time stays fixed."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import harness
from harness.sphere.so3_transforms import so3_fft, so3_ifft

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

# values no integer size argument (a bandwidth, a channel count) accepts; None is the default of the optional ones
_BAD_INTS = ["8", 8.0, 8.5, True, -1, 0, float("nan"), float("inf"), [8], -(10**30)]
BAD_INT = st.sampled_from([None, *_BAD_INTS])
BAD_OPTIONAL_INT = st.sampled_from(_BAD_INTS)
# values no tensor argument accepts
BAD_TENSOR = st.sampled_from([None, "x", 3, [[1.0]], torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.bool),
                              torch.zeros(4, 4).to_sparse()])
HUGE = st.integers(min_value=10**5, max_value=10**9)  # sizes no 24 GiB machine holds at these bandwidths


def _raises_naming(fn, name: str) -> None:
    with pytest.raises((ValueError, TypeError)) as e:
        fn()
    assert name in str(e.value), f"{type(e.value).__name__}: {e.value} (expected it to name {name!r})"


# --------------------------------------------------------------------------- grids and transforms
@SETTINGS
@given(bad=BAD_INT)
def test_grid_bandwidth(bad):
    _raises_naming(lambda: harness.grid("dh", bad), "bandwidth")


@SETTINGS
@given(kind=st.sampled_from(["DH", "equiangular", "", None, 3, "legendre-gauss"]))
def test_grid_kind(kind):
    _raises_naming(lambda: harness.grid(kind, 4), "kind")


@SETTINGS
@given(bad=BAD_TENSOR)
def test_transform_inputs(bad):
    _raises_naming(lambda: harness.sft(bad), "x")
    _raises_naming(lambda: harness.isft(bad), "coeffs")
    _raises_naming(lambda: harness.degree_norms(bad), "coeffs")
    _raises_naming(lambda: so3_fft(bad), "x")
    _raises_naming(lambda: so3_ifft(bad), "coeffs")


@SETTINGS
@given(shape=st.lists(st.integers(0, 7), min_size=0, max_size=4))
def test_sft_shapes_that_fit_no_grid(shape):
    x = torch.zeros(tuple(shape), dtype=torch.float64)
    if len(shape) >= 2 and shape[-2] == shape[-1] and shape[-1] % 2 == 0 and shape[-1] > 0:
        assert harness.sft(x).shape == (*shape[:-2], shape[-1] // 2, shape[-1] // 2)  # a DH grid: valid
    else:
        _raises_naming(lambda: harness.sft(x), "x")


@SETTINGS
@given(bad=BAD_OPTIONAL_INT)
def test_degree_and_grid_arguments(bad):
    x, c = torch.zeros(1, 8, 8, dtype=torch.float64), torch.zeros(1, 4, 4, dtype=torch.complex128)
    _raises_naming(lambda: harness.sft(x, degrees=bad), "degrees")
    _raises_naming(lambda: harness.isft(c, grid_bandwidth=bad), "grid_bandwidth")
    _raises_naming(lambda: harness.resize_coefficients(c, bad), "bandwidth")


@SETTINGS
@given(b=HUGE)
def test_huge_sizes_are_refused_before_allocation(b):
    c = torch.zeros(1, 2, 2, dtype=torch.complex128)
    _raises_naming(lambda: harness.isft(c, grid_bandwidth=b), "needs about")
    _raises_naming(lambda: harness.resize_coefficients(c, b), "needs about")
    _raises_naming(lambda: harness.grid("dh", b), "needs about")
    _raises_naming(lambda: harness.SphericalConv(4, 4, b), "bandwidth")  # "...(bandwidth=b)'s filters needs about"
    _raises_naming(lambda: harness.SphericalConv(b * 10**4, 4, 8), "in_channels")
    _raises_naming(lambda: harness.random_signals(1, 1, b), "needs about")
    _raises_naming(lambda: harness.random_rotations(b * 10**4), "random rotations needs about")
    _raises_naming(lambda: harness.build_model("esteves_mnist", bandwidth=b * 100), "bandwidth")
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    _raises_naming(lambda: harness.Pointwise("relu", oversampling=b)(x), "needs about")  # its fine grid, at once


# --------------------------------------------------------------------------- rotations
@SETTINGS
@given(bad=st.sampled_from([torch.eye(3) * 2, torch.zeros(3, 3), torch.eye(4), torch.eye(3).to(torch.int64),
                            torch.full((3, 3), float("nan")), "I", None, torch.eye(3)[None, :2]]))
def test_rotation_matrices(bad):
    c = torch.zeros(1, 3, 3, dtype=torch.complex128)
    _raises_naming(lambda: harness.rotate_coefficients(c, bad), "R")
    _raises_naming(lambda: harness.wigner_D(3, bad), "R")
    _raises_naming(lambda: harness.matrix_to_quaternion(bad), "R")


@SETTINGS
@given(bad=st.sampled_from([torch.zeros(4), torch.zeros(3), torch.full((4,), float("nan")), "q", None,
                            torch.zeros(2, 4, dtype=torch.int32)]))
def test_quaternions(bad):
    _raises_naming(lambda: harness.quaternion_to_matrix(bad), "q")


@SETTINGS
@given(n=st.sampled_from([None, "2", 2.0, True, -1, float("nan"), [2]]), seed=st.sampled_from([-1, 2**63, 1.5, "0", True]))
def test_random_rotations(n, seed):
    _raises_naming(lambda: harness.random_rotations(n, seed=0), "n")
    _raises_naming(lambda: harness.random_rotations(2, seed=seed), "seed")


# --------------------------------------------------------------------------- layers
@SETTINGS
@given(bad=BAD_INT)
def test_layer_sizes(bad):
    _raises_naming(lambda: harness.SphericalConv(bad, 2, 8), "in_channels")
    _raises_naming(lambda: harness.SphericalConv(2, bad, 8), "out_channels")
    _raises_naming(lambda: harness.SphericalConv(2, 2, bad), "bandwidth")
    if bad is not None:  # None: the default (b // 2)
        _raises_naming(lambda: harness.SpectralPool(bad), "bandwidth_out")


@SETTINGS
@given(s=st.sampled_from([0.5, 0, -1, float("nan"), float("inf"), "2", None, True, 10**400, [2.0]]))
def test_oversampling(s):
    _raises_naming(lambda: harness.Pointwise("relu", s), "oversampling")
    _raises_naming(lambda: harness.SO3Pointwise("relu", s), "oversampling")


@SETTINGS
@given(flag=st.sampled_from(["no", "yes", 0, 1, None, 1.0]))
def test_booleans(flag):
    _raises_naming(lambda: harness.SphericalConv(1, 1, 4, bias=flag), "bias")
    _raises_naming(lambda: harness.InvariantDescriptor(flatten=flag), "flatten")
    _raises_naming(lambda: harness.SO3Descriptor(flatten=flag), "flatten")


@SETTINGS
@given(bad=BAD_TENSOR)
def test_layer_inputs(bad):
    for layer in (harness.SphericalConv(1, 1, 4), harness.Pointwise("relu"), harness.SpectralPool(2),
                  harness.InvariantDescriptor(), harness.SO3Pointwise("relu")):
        with pytest.raises((ValueError, TypeError)):
            layer(bad)


# --------------------------------------------------------------------------- valid edge inputs
@SETTINGS
@given(kind=st.sampled_from(["dh", "soft", "gl", "cc"]), b=st.integers(1, 6), n=st.integers(0, 3),
       backend=st.sampled_from(["torch", "ducc0"]))
def test_edge_inputs_work(kind, b, n, backend):
    g = harness.grid(kind, b)
    x = harness.S2Grid(kind, b).random(max(n, 1), channels=2)[:n]  # empty batches included
    c = harness.sft(x, kind, backend=backend)
    assert c.shape == (n, 2, b, b)
    assert harness.isft(c, kind, backend=backend).shape == (n, 2, *g.shape)
    if n:
        xt = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # a non-contiguous view of the same values
        assert torch.allclose(harness.sft(xt, kind, backend=backend), c, atol=1e-12)
        R = harness.random_rotations(n, seed=n)
        assert harness.rotate_coefficients(c, R[:, None]).shape == c.shape
    m = harness.build_model({"in_channels": 2, "bandwidth": b, "kind": kind,
                             "layers": [{"type": "conv", "out_channels": 1}, {"type": "pointwise"},
                                        {"type": "descriptor"}]}).double()
    with torch.no_grad():
        assert m(x).shape == (n, b)
    assert math.isfinite(float(harness.grid(kind, b).weights.sum()))
