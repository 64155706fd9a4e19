import numpy as np
import pytest
import torch

import harness
from harness.equivariance import aliasing, equivariance_error, model_aliasing, random_signals
from harness.layers import Pointwise
from harness.rotations import random_rotations

from .oracles import evaluate, quadrature, random_coefficients

EXACT = {"in_channels": 2, "bandwidth": 10, "layers": [
    {"type": "conv", "out_channels": 3, "filter_params": 4}, {"type": "pool", "bandwidth": 6},
    {"type": "conv", "out_channels": 2}, {"type": "descriptor"}, {"type": "linear", "out_features": 3}]}


def relu_model(oversampling: float, b: int = 12) -> harness.SphericalModel:
    torch.manual_seed(0)
    return harness.build_model({"in_channels": 1, "bandwidth": b, "layers": [
        {"type": "conv", "out_channels": 3}, {"type": "pointwise", "activation": "relu", "oversampling": oversampling},
        {"type": "conv", "out_channels": 2}]}).double()


@pytest.mark.parametrize("mode", ["cumulative", "isolated"])
def test_exact_layers_report_rounding_level_errors(mode):
    torch.manual_seed(1)
    model = harness.build_model(EXACT).double()
    x = random_signals(3, 2, 10, seed=2)
    df = equivariance_error(model, x, random_rotations(4, seed=3), mode=mode)
    assert len(df) == 5 * 3 * 4  # one row per (layer, input, rotation)
    assert df["rel_error"].max() <= 1e-12
    assert set(df["error_kind"]) == {"equivariance", "invariance"}


def test_relu_error_is_clearly_nonzero_and_falls_with_oversampling():
    x = random_signals(4, 1, 12, seed=4)
    R = random_rotations(4, seed=5)
    med = {}
    for s in (1.0, 1.5, 2.0):
        df = equivariance_error(relu_model(s), x, R)
        med[s] = df[df["layer"] == "conv2"]["rel_error"].median()
    assert med[1.0] > 1e-2
    assert med[1.0] > med[1.5] > med[2.0]


def test_isolated_mode_charges_each_layer_only_its_own_error():
    x = random_signals(2, 1, 12, seed=6)
    R = random_rotations(2, seed=7)
    iso = equivariance_error(relu_model(1.0), x, R, mode="isolated").groupby("layer")["rel_error"].max()
    cum = equivariance_error(relu_model(1.0), x, R, mode="cumulative").groupby("layer")["rel_error"].max()
    assert iso["conv2"] <= 1e-12 < 1e-3 < cum["conv2"]  # conv2 is exact; the error came from relu
    assert iso["pointwise1"] > 1e-3


def test_measurement_matches_an_independent_computation():
    """One Pointwise(square) layer on the DH grid, computed here by direct quadrature with
    scipy's sph_harm_y: Phi(g.x) from pointwise evaluation of x at R^-1 p, g.Phi(x) by evaluating
    the bandwidth-b coefficients of Phi(x) at R^-1 p on a GL grid (exact for bandwidth b)."""
    b = 6
    c = random_coefficients((), b, seed=8).numpy()
    R = random_rotations(1, seed=9)
    Rn = R[0].numpy()
    dh, gl = harness.grid("dh", b), harness.grid("gl", b)

    def at(points, coeffs):  # f(R^-1 p) for rows p
        q = points @ Rn
        return evaluate(coeffs, np.arccos(np.clip(q[..., 2], -1, 1)), np.arctan2(q[..., 1], q[..., 0]))

    T, P = np.meshgrid(dh.theta, dh.phi, indexing="ij")
    x = evaluate(c, T, P)
    phi_gx = quadrature(at(dh.points(), c) ** 2, dh.theta, dh.phi, dh.weights, b)
    phi_x = quadrature(x**2, dh.theta, dh.phi, dh.weights, b)
    g_phi_x = quadrature(at(gl.points(), phi_x), gl.theta, gl.phi, gl.weights, b)

    def norm(a):
        return np.sqrt((np.abs(a[:, 0]) ** 2).sum() + 2 * (np.abs(a[:, 1:]) ** 2).sum())

    expected = norm(phi_gx - g_phi_x) / norm(phi_x)
    df = equivariance_error(Pointwise("square"), torch.from_numpy(x)[None, None], R)
    assert expected > 1e-3  # the case is not trivially exact
    assert abs(df["rel_error"].iloc[0] - expected) <= 1e-10 * expected


def test_error_spectrum_adds_up_to_the_total():
    x = random_signals(2, 1, 10, seed=10)
    df, spec = equivariance_error(relu_model(1.0, b=10), x, random_rotations(2, seed=11), spectrum=True)
    total = spec.assign(e2=spec["error"] ** 2).groupby(["layer", "input", "rotation"])["e2"].sum() ** 0.5
    merged = df.set_index(["layer", "input", "rotation"])["rel_error"]
    np.testing.assert_allclose(total.sort_index().values, merged.sort_index().values, rtol=1e-10)
    assert set(spec["degree"]) == set(range(10))


def test_aliasing_analysis():
    b = 8
    y = random_signals(3, 2, b, seed=12)
    exact = aliasing(Pointwise("square", oversampling=2.0), y)
    assert exact["aliasing_error"].max() <= 1e-12  # x^2 has degrees < 2b - 1
    assert (exact["out_of_band"] > 0.05).all()  # ... most of them above b
    sampled = aliasing(Pointwise("square"), y)
    assert (sampled["aliasing_error"] > 1e-2).all()
    np.testing.assert_allclose(sampled["out_of_band"], exact["out_of_band"])  # a property of sigma(y)
    df = model_aliasing(relu_model(1.0, b=8), random_signals(2, 1, 8, seed=1))
    assert list(df["layer"].unique()) == ["pointwise1"] and len(df) == 2


def test_random_signals_spectrum_and_scale():
    x = random_signals(200, 1, 16, alpha=2.0, seed=13)
    g = harness.grid("dh", 16)
    ms = (torch.from_numpy(g.area_weights) * x**2).sum((-1, -2)).mean() / (4 * np.pi)
    assert abs(float(ms) - 1) < 1e-12  # unit mean square
    power = harness.degree_norms(harness.sft(x)).square().mean((0, 1))
    l = torch.arange(16, dtype=torch.float64)
    expected = (2 * l + 1) * (1 + l) ** -2.0
    ratio = power / expected
    assert float(ratio.std() / ratio.mean()) < 0.1  # flat: power follows (2l+1)(1+l)^-alpha


class TestBadInput:
    def test_mode_and_shapes(self):
        x = random_signals(1, 1, 6)
        R = random_rotations(1, seed=0)
        with pytest.raises(ValueError, match=r"mode: unknown mode 'both'; valid modes are \['cumulative', 'isolated'\]"):
            equivariance_error(Pointwise(), x, R, mode="both")
        with pytest.raises(ValueError, match=r"x: expected inputs \[N, C, nlat, nlon\]"):
            equivariance_error(Pointwise(), x[0], R)
        with pytest.raises(ValueError, match="R: not a rotation"):
            equivariance_error(Pointwise(), x, 2 * R)
        with pytest.raises(TypeError, match="layer: expected a Pointwise layer"):
            aliasing(torch.nn.Identity(), x)
