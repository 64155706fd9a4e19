"""The Lie derivative against finite rotations: ||L_X f|| / ||f|| = lim_{t->0} error(R_t) / t."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from torch import nn

import harness
from harness.measure.equivariance import equivariance_error, random_signals
from harness.nn.layers import SphericalConv

from .test_equivariance import EXACT, relu_model


def small_rotations(t: float) -> torch.Tensor:
    return torch.from_numpy(np.stack([Rotation.from_rotvec(t * a).as_matrix() for a in np.eye(3)]))


@pytest.mark.parametrize("mode", ["cumulative", "isolated"])
def test_exact_layers_have_zero_lie_derivative(mode):
    torch.manual_seed(1)
    df = harness.lie_derivative(harness.build_model(EXACT).double(), random_signals(2, 2, 10, seed=2), mode=mode)
    assert len(df) == 5 * 2 * 3 and set(df["generator"]) == {"x", "y", "z"}
    assert df["lie_derivative"].max() <= 1e-12


def test_sampled_relu_matches_finite_rotations_at_small_angles():
    model, x = relu_model(1.0, b=10), random_signals(3, 1, 10, seed=3)
    ld = harness.lie_derivative(model, x).set_index(["layer", "input", "generator"])["lie_derivative"]
    assert ld.loc["pointwise1"].min() > 0.1  # aliasing: far from equivariant, even infinitesimally
    t = 1e-6
    fin = equivariance_error(model, x, small_rotations(t))
    fin["generator"] = fin["rotation"].map({0: "x", 1: "y", 2: "z"})
    ratio = fin.set_index(["layer", "input", "generator"])["rel_error"] / t
    np.testing.assert_allclose(ratio.loc[["pointwise1", "conv2"]].sort_index(), ld.loc[["pointwise1", "conv2"]].sort_index(),
                               rtol=1e-3)
    assert ld.loc["conv1"].max() <= 1e-12


def test_isolated_lie_derivative_charges_each_layer_only_its_own_error():
    model, x = relu_model(1.0, b=10), random_signals(2, 1, 10, seed=4)
    iso = harness.lie_derivative(model, x, mode="isolated").groupby("layer")["lie_derivative"].max()
    cum = harness.lie_derivative(model, x).groupby("layer")["lie_derivative"].max()
    assert iso["conv2"] <= 1e-12 < 1e-2 < cum["conv2"]


def test_any_module_with_declared_fields():
    torch.manual_seed(5)
    seq = nn.Sequential(SphericalConv(1, 2, 8), nn.Tanh()).double()
    df = harness.lie_derivative(seq, random_signals(2, 1, 8, seed=6))
    worst = df.groupby("layer")["lie_derivative"].max()
    assert worst["0"] <= 1e-12 < 1e-3 < worst["1"]
    with pytest.raises(ValueError, match=r"mode: unknown mode 'both'"):
        harness.lie_derivative(seq, random_signals(2, 1, 8, seed=6), mode="both")


def test_zero_outputs_are_flagged_like_equivariance_error():
    x = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    df = harness.lie_derivative(nn.Sequential(SphericalConv(1, 2, 8, bias=False)).double(), x, input="dh")
    assert df["lie_derivative"].isna().all()
    assert (df["flag"] == "zero reference: relative errors undefined").all()
