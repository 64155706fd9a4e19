"""The frontier's nonlinearities: exact equivariance where the theory says so (and aliasing just
below it), measured against exact coefficient-domain rotations; the polynomial fit against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import harness
from harness.nn.nonlinearities import (GatedActivation, NormActivation, PolynomialActivation, QuadraticActivation,
                                       chebyshev_fit, channel_rms, polynomial)

B = 8


def _error(layer: torch.nn.Module, seed: int = 0) -> float:
    f = harness.S2Grid("dh", B)
    x = f.random(3, channels=3, seed=seed)
    R = harness.random_rotations(3, seed=seed + 1)
    with torch.no_grad():
        a = layer.double()(f.rotate(x, R))
        r = f.rotate(layer(x), R)
    return float((a - r).norm() / r.norm())


def _exact_bandwidth(p: int, b: int = B) -> int:
    """The smallest fine bandwidth whose quadrature keeps every degree < b of a degree-p product
    exact: 2 B' - b >= p (b - 1)."""
    return math.ceil((p * (b - 1) + b) / 2)


@pytest.mark.parametrize("p", [2, 4, 6])  # even: a fit of relu = x/2 + |x|/2 has no odd terms above 1
def test_polynomial_is_exact_from_the_predicted_grid_and_aliases_below(p):
    bf = _exact_bandwidth(p)
    assert bf <= math.ceil((p + 1) / 2 * B)  # the default s = (p + 1)/2 is enough
    exact = _error(PolynomialActivation(p, oversampling=bf / B))
    below = _error(PolynomialActivation(p, oversampling=(bf - 1) / B))
    assert exact < 1e-13
    assert below > 1e-6  # one bandwidth short, the top product degrees alias


def test_polynomial_default_is_exact_and_fits_relu():
    assert _error(PolynomialActivation(4)) < 1e-13
    coef = chebyshev_fit("relu", 6)
    u = torch.linspace(-1, 1, 101, dtype=torch.float64)
    layer = PolynomialActivation(6)  # evaluates the fit in the monomial basis by Horner's rule
    np.testing.assert_allclose(polynomial(u, layer.monomial).numpy(), np.polynomial.chebyshev.chebval(u.numpy(), coef),
                               atol=1e-14)
    assert np.abs(np.polynomial.chebyshev.chebval(u.numpy(), coef) - np.maximum(u.numpy(), 0)).max() < 0.05


def test_channel_rms_is_the_grid_rms():
    x = harness.S2Grid("gl", B).random(2, channels=2, seed=3)
    g = harness.grid("gl", B)
    w = torch.tensor(g.weights)[:, None] * (2 * math.pi / g.nlon)
    ms = (x.square() * w).sum((-1, -2)) / (4 * math.pi)  # exact quadrature of x^2
    np.testing.assert_allclose(channel_rms(harness.sft(x, "gl"))[..., 0, 0].numpy(), ms.sqrt().numpy(), rtol=1e-12)


def test_quadratic_is_exact_from_1_5_and_aliases_below():
    torch.manual_seed(0)
    q = QuadraticActivation(3)
    assert _error(q) < 1e-13
    assert _error(QuadraticActivation(3, oversampling=(_exact_bandwidth(2) - 1) / B)) > 1e-6


def test_norm_and_gated_are_exact_and_nonlinear():
    torch.manual_seed(0)
    n, g = NormActivation(3, B), GatedActivation(3, B)
    with torch.no_grad():
        n.beta.fill_(-0.3)
        g.w.normal_()
    for layer in (n, g):
        assert _error(layer) < 1e-13
        x = harness.S2Grid("dh", B).random(2, channels=3, seed=5)
        with torch.no_grad():  # not linear: f(2x) != 2 f(x)
            assert (layer.double()(2 * x) - 2 * layer.double()(x)).norm() > 1e-3 * layer.double()(x).norm()


def test_build_model_and_bad_input():
    from harness.nn.models import NONLINEARITY_VARIANTS

    for name, table in NONLINEARITY_VARIANTS.items():
        m = harness.build_model({"in_channels": 1, "bandwidth": 6, "layers": [{"type": "conv", "out_channels": 2},
                                                                               dict(table), {"type": "descriptor"}]})
        assert m(torch.randn(2, 1, 12, 12)).shape == (2, 12), name
    with pytest.raises(ValueError, match="degree"):
        PolynomialActivation(0)
    with pytest.raises(ValueError, match="channels"):
        QuadraticActivation(3)(torch.randn(1, 2, 16, 16))
    with pytest.raises(harness.util.schema.ConfigError, match="works on S\\^2"):
        harness.build_model({"in_channels": 1, "bandwidth": 6, "layers": [
            {"type": "s2_so3_conv", "out_channels": 2}, {"type": "norm"}]})


def test_training_axis_nonlinearity_validation():
    from harness.runs.train import load_train_config, model_spec
    from harness.util.schema import ConfigError

    cfg = load_train_config({"axes": {"nonlinearity": ["norm", "poly2"]}})
    assert [L["type"] for L in model_spec(cfg, "relu", 1.0, "norm")["layers"]].count("norm") == 3
    with pytest.raises(ConfigError, match="activation and oversampling must stay"):
        load_train_config({"axes": {"nonlinearity": ["norm"], "oversampling": [2.0]}})
    assert "nonlinearity" not in load_train_config({})["axes"]  # not stored when absent


def test_pareto_set_matches_brute_force():
    import pandas as pd

    from harness.plots import pareto

    rng = np.random.default_rng(0)
    pts = pd.DataFrame({"err": rng.random(30), "ms": rng.random(30), "acc": rng.random(30)})
    pts.loc[5] = pts.loc[4]  # ties: equal points dominate neither
    got = pareto(pts, ["err", "ms"], ["acc"])

    def dominates(a, b):
        ge = a.err <= b.err and a.ms <= b.ms and a.acc >= b.acc
        return ge and (a.err < b.err or a.ms < b.ms or a.acc > b.acc)

    want = [not any(dominates(pts.loc[j], pts.loc[i]) for j in pts.index if j != i) for i in pts.index]
    assert got.tolist() == want
    assert 0 < sum(want) < len(pts)  # the example has both kinds of points


def test_frontier_table_goal_and_intervals_from_hand_made_runs():
    import pandas as pd
    from scipy.stats import t as student

    from harness.plots import frontier_table

    # (isolated error, step ms, NR/NR accuracy per seed); the goal: error <= 1e-6, <= 2x relu_s1's
    # time, NR/NR >= relu_s1's mean - 0.005
    runs = {"relu_s1": (0.1, 100.0, [0.80, 0.82]), "meets": (1e-15, 199.0, [0.806]),
            "slow": (1e-15, 201.0, [0.90]), "worse": (1e-15, 120.0, [0.804]), "aliased": (2e-6, 110.0, [0.90])}
    errors = pd.DataFrame([{"nonlinearity": k, "bandwidth": 32, "rel_error": e, "lie_derivative": 0.0}
                           for k, (e, _, _) in runs.items()])
    steps = pd.DataFrame([{"nonlinearity": k, "step_ms": ms} for k, (_, ms, _) in runs.items()])
    acc = pd.DataFrame([{"nonlinearity": k, "setting": s, "seed": i, "accuracy": a}
                        for k, (_, _, accs) in runs.items() for i, a in enumerate(accs) for s in ("NR/NR", "NR/R")])
    table = frontier_table(errors, acc, steps)
    assert table.index[table["meets_goal"]].tolist() == ["meets"]
    assert table.loc["slow", "time_ratio"] == 2.01
    # the 95% t-interval over two seeds, by hand; one seed has none
    half = np.std([0.80, 0.82], ddof=1) * student.ppf(0.975, 1) / np.sqrt(2)
    assert table.loc["relu_s1", "NR/NR ci95"] == pytest.approx(half, rel=1e-12)
    assert np.isnan(table.loc["meets", "NR/NR ci95"])


def test_frontier_table_difference_interval_is_welchs():
    import pandas as pd
    from scipy.stats import ttest_ind

    from harness.plots import frontier_table

    runs = {"relu_s1": [0.884, 0.887, 0.879], "poly2": [0.877, 0.880, 0.871, 0.876], "one": [0.9]}
    errors = pd.DataFrame([{"nonlinearity": k, "bandwidth": 32, "rel_error": 0.1, "lie_derivative": 0.0} for k in runs])
    steps = pd.DataFrame([{"nonlinearity": k, "step_ms": 1.0} for k in runs])
    acc = pd.DataFrame([{"nonlinearity": k, "setting": s, "seed": i, "accuracy": a}
                        for k, accs in runs.items() for i, a in enumerate(accs) for s in ("NR/NR", "NR/R")])
    table = frontier_table(errors, acc, steps)
    # scipy's Welch test: its 95% confidence interval of the difference of means
    ci = ttest_ind(runs["poly2"], runs["relu_s1"], equal_var=False).confidence_interval(0.95)
    assert table.loc["poly2", "NR/NR vs reference"] == pytest.approx((ci.low + ci.high) / 2, rel=1e-12)
    assert table.loc["poly2", "NR/NR vs reference ci95"] == pytest.approx((ci.high - ci.low) / 2, rel=1e-10)
    assert np.isnan(table.loc["one", "NR/NR vs reference ci95"])
    assert np.isnan(table.loc["relu_s1", "NR/NR vs reference ci95"])


def test_training_cells_run_every_nonlinearity_before_a_second_seed():
    from harness.runs.train import load_train_config, training_cells

    cfg = load_train_config({"axes": {"nonlinearity": ["norm", "gated"], "seed": [0, 1]}})
    order = [(c.params["seed"], c.params["nonlinearity"]) for c in training_cells(cfg)]
    assert order == [(0, "norm"), (0, "gated"), (1, "norm"), (1, "gated")]


# --------------------------------------------------------------------------- the exact grid (issue 19)
def _oracle_projection(p_of: "callable", c: np.ndarray, b: int, n: int = 24) -> np.ndarray:
    """Degrees < b of p(f), f = sum c Y: f evaluated pointwise by scipy on numpy's Gauss-Legendre
    grid of n rings x 2n longitudes (exact for these degrees), then the direct quadrature."""
    from .oracles import evaluate, quadrature

    x, w = np.polynomial.legendre.leggauss(n)
    theta = np.arccos(x)[::-1].copy()
    phi = 2 * np.pi * np.arange(2 * n) / (2 * n)
    T, P = np.meshgrid(theta, phi, indexing="ij")
    return quadrature(p_of(evaluate(c, T, P)), theta, phi, w[::-1].copy(), b)


@pytest.mark.parametrize("p", [2, 4])
def test_polynomial_on_its_exact_grid_is_the_projection_and_one_ring_or_longitude_fewer_aliases(p):
    from harness.nn.nonlinearities import exact_grid

    from .oracles import random_coefficients

    b = 8
    g = exact_grid(p, b)
    D = (p + 1) * (b - 1)  # the integrand's degree
    assert (g.kind, g.nlat) == ("gl", math.ceil((D + 1) / 2)) and g.nlon >= D + 1
    assert g.nlat * g.nlon < (2 * math.ceil((D + 1) / 2)) ** 2 * 0.6  # vs the exact equiangular grid
    c = random_coefficients((1, 1), b, seed=p)
    layer = PolynomialActivation(p, input="coeffs", output="coeffs")
    rms = float(channel_rms(c)[0, 0, 0, 0])
    s = layer.kappa * rms
    a = layer.monomial
    ref = _oracle_projection(lambda f: s * sum(ak * (f / s) ** k for k, ak in enumerate(a)), c[0, 0].numpy(), b)
    with torch.no_grad():
        assert np.abs(layer(c)[0, 0].numpy() - ref).max() < 1e-12 * np.abs(ref).max()
        for fewer in (harness.grid("gl", g.nlat - 1, g.nlon), harness.grid("gl", g.nlat, D)):
            layer.fine_grid = lambda _b, fewer=fewer: fewer
            assert np.abs(layer(c)[0, 0].numpy() - ref).max() > 1e-6 * np.abs(ref).max()


def _pair(spec, **kw):
    torch.manual_seed(0)
    a = harness.build_model(spec, **kw).double().eval()  # between="coeffs", the default
    torch.manual_seed(0)
    g = harness.build_model(spec, between="grid", **kw).double().eval()
    return a, g


def _variant(name: str) -> dict:
    from harness.nn.models import NONLINEARITY_VARIANTS, PRESETS

    spec = dict(PRESETS["esteves_mnist"])
    spec["layers"] = [dict(NONLINEARITY_VARIANTS[name]) if L["type"] == "pointwise" else L for L in spec["layers"]]
    return spec


@pytest.mark.parametrize("name", ["esteves_mnist", "cohen_mnist", "relu_s1", "relu_s1.5", "relu_s2", "poly2", "poly4",
                                  "poly4_s1.5", "quadratic", "norm", "gated"])
def test_coefficients_between_layers_give_the_grid_models_numbers(name):
    """Every preset and every named nonlinearity: the model that hands coefficients between its
    layers and the one on grid samples agree to rounding (float64), outputs and per-layer errors."""
    from harness.nn.models import PRESETS

    spec, b = (name, 16) if name in PRESETS else (_variant(name), 16)
    a, g = _pair(spec, bandwidth=b)
    x = harness.S2Grid(a.kind, b).random(2, channels=1, seed=1)
    with torch.no_grad():
        ya, yg = a(x), g(x)
    assert float((ya - yg).abs().max()) <= 1e-12 * float(yg.abs().max())
    R = harness.random_rotations(2, seed=2)
    for mode in ("cumulative", "isolated"):
        ea, eg = (harness.equivariance_error(m, x, R, mode=mode) for m in (a, g))
        assert list(ea["layer"]) == list(eg["layer"])
        cols = ["rel_error", "max_abs_error", "cohen_delta"]
        np.testing.assert_allclose(ea[cols].to_numpy(float), eg[cols].to_numpy(float), rtol=1e-9, atol=1e-12)
    if name not in PRESETS:  # coefficients between every pair of S^2 layers, grid samples in
        assert [getattr(m, "input", None) for m in a.layers][:3] == ["grid", "coeffs", "coeffs"]


@pytest.mark.parametrize("layer", [{"type": "pointwise", "oversampling": 1.5}, {"type": "pointwise"},
                                   {"type": "polynomial", "degree": 2}, {"type": "quadratic"}])
def test_conv_sigma_conv_costs_one_synthesis_and_one_analysis(monkeypatch, layer):
    """Between two convolutions a nonlinearity costs one synthesis onto its grid and one analysis
    of the degrees kept; pooling and the descriptor cost none (the model input's sft is the one
    other transform)."""
    import harness.sphere.transforms as T

    m = harness.build_model({"in_channels": 1, "bandwidth": 8, "layers": [
        {"type": "conv", "out_channels": 2}, dict(layer), {"type": "pool"}, {"type": "conv", "out_channels": 2},
        {"type": "descriptor"}]}).double()
    x = harness.S2Grid("dh", 8).random(1, channels=1)
    fine = m.layers[1].fine_grid(8).shape
    calls = []
    for name in ("analysis", "synthesis"):
        real = getattr(T, name)
        monkeypatch.setattr(T, name, lambda *a, _r=real, _n=name, **k: calls.append((_n, a[1].shape)) or _r(*a, **k))
    with torch.no_grad():
        m(x)
    assert calls == [("analysis", (16, 16)), ("synthesis", fine), ("analysis", fine)]
