import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import harness
from harness.measure.aliasing import aliasing, model_aliasing
from harness.measure.equivariance import equivariance_error, random_signals
from harness.sphere.fields import Invariant, S2Coeffs, S2Grid
from harness.nn.layers import Pointwise, SphericalConv
from harness.sphere.so3 import random_rotations

from .oracles import evaluate, quadrature, random_coefficients

EXACT = {"in_channels": 2, "bandwidth": 10, "layers": [
    {"type": "conv", "out_channels": 3, "filter_params": 4}, {"type": "pool", "bandwidth": 6},
    {"type": "conv", "out_channels": 2}, {"type": "descriptor"}, {"type": "linear", "out_features": 3}]}


def relu_model(oversampling: float, b: int = 12) -> harness.SphericalModel:
    torch.manual_seed(0)
    return harness.build_model({"in_channels": 1, "bandwidth": b, "layers": [
        {"type": "conv", "out_channels": 3}, {"type": "pointwise", "activation": "relu", "oversampling": oversampling},
        {"type": "conv", "out_channels": 2}]}).double()


def sequential(b: int = 12) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(SphericalConv(1, 3, b), nn.ReLU(), SphericalConv(3, 2, b)).double()


@pytest.mark.parametrize("mode", ["cumulative", "isolated"])
def test_exact_layers_report_rounding_level_errors(mode):
    torch.manual_seed(1)
    model = harness.build_model(EXACT).double()
    x = random_signals(3, 2, 10, seed=2)
    df = equivariance_error(model, x, random_rotations(4, seed=3), mode=mode)
    assert len(df) == 5 * 3 * 4  # one row per (layer, input, rotation)
    assert df["rel_error"].max() <= 1e-12 and df["cohen_delta"].max() <= 1e-12
    assert set(df["error_kind"]) == {"equivariance", "invariance"}
    assert (df["flag"] == "").all()
    # between S^2 layers the model hands over coefficients (sampled on its grid for max/std)
    assert list(df.drop_duplicates("layer")["field"]) == ["S2Coeffs(10, 'dh')", "S2Coeffs(6, 'dh')",
                                                          "S2Coeffs(6, 'dh')", "Invariant()", "Invariant()"]


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
    the bandwidth-b coefficients of Phi(x) at R^-1 p on a GL grid (exact for bandwidth b).
    Checks rel_error, max_abs_error and cohen_delta (std over the DH samples of the difference)."""
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
    diff_grid, ref_grid = evaluate(phi_gx - g_phi_x, T, P), evaluate(phi_x, T, P)
    df = equivariance_error(Pointwise("square"), torch.from_numpy(x)[None, None], R)
    assert expected > 1e-3  # the case is not trivially exact
    row = df.iloc[0]
    assert abs(row["rel_error"] - expected) <= 1e-10 * expected
    assert abs(row["max_abs_error"] - np.abs(diff_grid).max()) <= 1e-10 * np.abs(diff_grid).max()
    assert abs(row["cohen_delta"] - diff_grid.std() / ref_grid.std()) <= 1e-10 * row["cohen_delta"]
    assert 0 < row["floor"] < 1e-13  # the identity's error on the same input and rotation: rounding


def test_error_spectrum_adds_up_to_the_total():
    x = random_signals(2, 1, 10, seed=10)
    df, spec = equivariance_error(relu_model(1.0, b=10), x, random_rotations(2, seed=11), spectrum=True)
    total = spec.assign(e2=spec["error"] ** 2).groupby(["layer", "input", "rotation"])["e2"].sum() ** 0.5
    merged = df.set_index(["layer", "input", "rotation"])["rel_error"]
    np.testing.assert_allclose(total.sort_index().values, merged.sort_index().values, rtol=1e-10)
    assert set(spec["degree"]) == set(range(10))


def test_chunks_and_pairing_give_the_same_numbers():
    model, x, R = relu_model(1.0, b=8), random_signals(3, 1, 8, seed=12), random_rotations(3, seed=13)
    whole = equivariance_error(model, x, R)
    for chunk in (1, 4):
        pd.testing.assert_frame_equal(equivariance_error(model, x, R, chunk_size=chunk), whole)
    paired = equivariance_error(model, x, R, paired=True)
    diag = whole[whole["input"] == whole["rotation"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(paired.sort_values(["layer_index", "input"]).reset_index(drop=True),
                                  diag.sort_values(["layer_index", "input"]).reset_index(drop=True))
    with pytest.raises(ValueError, match="paired=True rotates input i by rotation i, so it needs as many rotations as inputs; got 2"):
        equivariance_error(model, x, R[:2], paired=True)


# --------------------------------------------------------------------------- any model
def test_an_nn_sequential_is_measured_per_child():
    x, R = random_signals(2, 1, 12, seed=14), random_rotations(2, seed=15)
    for mode in ("cumulative", "isolated"):
        med = equivariance_error(sequential(), x, R, mode=mode).groupby("layer")["rel_error"].max()
        assert list(med.index) == ["0", "1", "2"]
        assert med["0"] <= 1e-12 and med["1"] > 1e-2
        assert (med["2"] <= 1e-12) if mode == "isolated" else (med["2"] > 1e-2)


class Residual(nn.Module):
    """A skip connection and an in-place op: y = relu_(conv2(act(conv1(x)))) + x."""

    def __init__(self, b: int) -> None:
        super().__init__()
        self.conv1, self.act, self.conv2 = SphericalConv(1, 2, b), nn.ReLU(), SphericalConv(2, 1, b)
        self.out = nn.ReLU(inplace=True)  # overwrites conv2's output tensor

    def forward(self, x):
        return self.out(self.conv2(self.act(self.conv1(x)))) + x


def test_hooks_read_models_with_skip_connections_and_in_place_ops():
    torch.manual_seed(2)
    b = 10
    model = Residual(b).double()
    x, R = random_signals(2, 1, b, seed=16), random_rotations(3, seed=17)
    layers = ["conv1", "act", "conv2", "out"]
    df = equivariance_error(model, x, R, layers=layers, input="dh")
    worst = df.groupby("layer", sort=False)["rel_error"].max()
    assert list(worst.index) == layers
    assert worst["conv1"] <= 1e-12 and worst["act"] > 1e-2
    iso = equivariance_error(model, x, R, layers=layers, input="dh", mode="isolated").groupby("layer")["rel_error"].max()
    # conv2 re-run on the rotated output of act is exact: its captured output is what conv2 returned,
    # not what the in-place ReLU made of that tensor afterwards
    assert iso["conv2"] <= 1e-12 and iso["out"] > 1e-2
    whole = equivariance_error(model, x, R, input="dh")  # the output, with the skip connection
    assert whole["layer"].unique().tolist() == ["output"] and whole["rel_error"].min() > 1e-3


class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2 * 16 * 16, 3)

    def forward(self, x):
        return self.lin(x.flatten(1))


def test_isolated_mode_needs_to_know_how_an_input_rotates():
    model = Head().double()
    x, R = random_signals(2, 2, 8, seed=16), random_rotations(1, seed=17)
    df = equivariance_error(model, x, R, input="dh", layers={"lin": Invariant()})  # declared, and wrong: it shows
    assert df["rel_error"].min() > 1e-3
    with pytest.raises(ValueError, match=r"layer 'lin': cannot tell how its input, a tensor of shape \(2, 512\).*isolated mode rotates it"):
        equivariance_error(model, x, R, input="dh", layers={"lin": Invariant()}, mode="isolated")


def test_measuring_leaves_the_model_exactly_as_it_was():
    model = harness.build_model("esteves_mnist", bandwidth=16).double()
    model.train()
    model.layers[1].training = False  # a mixed state must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    x, R = random_signals(4, 1, 16, seed=18), random_rotations(2, seed=19)
    df = equivariance_error(model, x, R)
    assert [m.training for m in model.modules()] == modes
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats, num_batches_tracked too
    model.eval()
    pd.testing.assert_frame_equal(equivariance_error(model, x, R), df)  # it was measured in eval mode


class Drifts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return x


def test_a_model_that_changes_itself_is_restored_and_reported():
    model = Drifts()
    x, R = random_signals(1, 1, 6, seed=20), random_rotations(1, seed=21)
    with pytest.raises(RuntimeError, match=r"its state changed while being measured.*\['calls'\]"):
        equivariance_error(model, x, R, input="dh")
    assert float(model.calls) == 0


def test_outputs_are_never_guessed():
    x, R = random_signals(2, 1, 8, seed=22), random_rotations(1, seed=23)

    class Flat(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :5]

    class Coeffs(nn.Module):
        def forward(self, x):
            return harness.resize_coefficients(harness.sft(x), 16)  # a [N, C, 16, 16] coefficient tensor

    with pytest.raises(ValueError, match=r"layer 'output': cannot tell how its output, a tensor of shape \(2, 5\)"):
        equivariance_error(Flat(), x, R, input="dh")
    with pytest.raises(ValueError, match=r"cannot tell how its output, a tensor of shape \(2, 1, 16, 16\) \(torch.complex128\)"):
        equivariance_error(Coeffs(), x, R, input="dh")
    df = equivariance_error(Coeffs(), x, R, input="dh", output=S2Coeffs(16))  # declared: exact
    assert df["rel_error"].max() <= 1e-12
    inv = equivariance_error(Flat(), x, R, input="dh", output=Invariant())  # declared, and wrong: it shows
    assert inv["rel_error"].min() > 1e-2


def test_inputs_are_checked_before_any_compute():
    model = relu_model(1.0, b=8)
    x, R = random_signals(2, 1, 8, seed=24), random_rotations(2, seed=25)
    with pytest.raises(ValueError, match=r"input: declared S2Grid\('soft', 8\), but the model's layers work on the 'dh' grid"):
        equivariance_error(model, x, R, input="soft")
    soft = random_signals(2, 1, 8, kind="soft", seed=26)  # SOFT samples read as DH samples
    with pytest.raises(ValueError, match=r"x: not band-limited on S2Grid\('dh', 8\): [0-9.e+-]+ of an input's energy"):
        equivariance_error(nn.Identity(), soft, R, input="dh")
    noisy = x + 1e-3 * torch.randn_like(x)
    with pytest.raises(ValueError, match="pass project=True|Pass project=True"):
        equivariance_error(model, noisy, R)
    projected = equivariance_error(model, noisy, R, project=True)
    pd.testing.assert_frame_equal(projected, equivariance_error(model, S2Grid("dh", 8).project(noisy), R))
    with pytest.raises(ValueError, match=r"input: cannot tell what x \(shape \(2, 1, 16, 16\)\) is for a Identity"):
        equivariance_error(nn.Identity(), x, R)
    with pytest.raises(ValueError, match="x: 1 of its 512 values are NaN or Inf"):
        bad = x.clone()
        bad[0, 0, 3, 3] = float("nan")
        equivariance_error(model, bad, R)
    with pytest.raises(ValueError, match=r"mode: unknown mode 'both'; valid modes are \['cumulative', 'isolated'\]"):
        equivariance_error(model, x, R, mode="both")
    with pytest.raises(ValueError, match="rotations: not a rotation"):
        equivariance_error(model, x, 2 * R)
    with pytest.raises(ValueError, match=r"layers: no submodule named 'conv9'"):
        equivariance_error(model, x, R, layers=["conv9"])


def test_nan_outputs_and_zero_references_are_never_silent():
    x, R = random_signals(2, 1, 8, seed=27), random_rotations(2, seed=28)

    class Blows(nn.Module):
        def forward(self, x):
            return torch.where(x > 1.5, torch.full_like(x, float("nan")), x)

    with pytest.raises(ValueError, match=r"layer 'output'.* values are NaN or Inf"):
        equivariance_error(Blows(), x, R, input="dh")
    df = equivariance_error(nn.Sequential(SphericalConv(1, 1, 8, bias=False).double(), nn.ReLU()).requires_grad_(False)
                            .apply(lambda m: m.weight.zero_() if isinstance(m, SphericalConv) else None), x, R)
    assert df["rel_error"].isna().all() and (df["flag"] == "zero reference: relative errors undefined").all()


def test_floor_is_the_identitys_error():
    x, R = random_signals(3, 1, 16, seed=29), random_rotations(2, seed=30)
    df = equivariance_error(nn.Identity(), x, R, input="dh")
    np.testing.assert_allclose(df["rel_error"], df["floor"], rtol=1e-12)  # the identity reads its floor
    assert 0 < df["floor"].max() < 1e-13
    x32 = x.float()
    assert equivariance_error(nn.Identity(), x32, R, input="dh")["floor"].max() < 1e-5


# --------------------------------------------------------------------------- aliasing
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


def test_aliasing_of_any_pointwise_module_or_callable():
    y = random_signals(3, 2, 8, seed=31)
    ref = aliasing(Pointwise("relu"), y)
    pd.testing.assert_frame_equal(aliasing(nn.ReLU(), y, kind="dh"), ref)
    pd.testing.assert_frame_equal(aliasing(torch.relu, y, kind="dh"), ref)
    seq = model_aliasing(sequential(8), random_signals(2, 1, 8, seed=1))
    assert list(seq["layer"].unique()) == ["1"] and (seq["aliasing_error"] > 1e-2).all()
    with pytest.raises(ValueError, match="kind: the grid of the input of a ReLU must be declared"):
        aliasing(nn.ReLU(), y)
    with pytest.raises(ValueError, match="is not pointwise"):
        aliasing(lambda t: torch.softmax(t, -1), y, kind="dh")
    with pytest.raises(TypeError, match="layer: expected a Pointwise layer, a pointwise nn.Module or a callable"):
        aliasing(3, y)


def test_random_signals_spectrum_and_scale():
    x = random_signals(200, 1, 16, decay=2.0, seed=13)
    g = harness.grid("dh", 16)
    ms = (torch.from_numpy(g.area_weights) * x**2).sum((-1, -2)).mean() / (4 * np.pi)
    assert abs(float(ms) - 1) < 1e-12  # unit mean square
    power = harness.degree_norms(harness.sft(x)).square().mean((0, 1))
    l = torch.arange(16, dtype=torch.float64)
    expected = (2 * l + 1) * (1 + l) ** -2.0
    ratio = power / expected
    assert float(ratio.std() / ratio.mean()) < 0.1  # flat: power follows (2l+1)(1+l)^-decay


# --------------------------------------------------------------------------- assert_equivariant
def test_assert_equivariant_passes_exact_models_and_names_failing_layers():
    torch.manual_seed(3)
    df = harness.assert_equivariant(harness.build_model(EXACT).double(), random_signals(2, 2, 10, seed=32))
    assert df["rel_error"].max() <= 1e-10
    with pytest.raises(AssertionError, match=r"not equivariant to rtol=1e-10.*failing: \['1', '2'\]"):
        harness.assert_equivariant(sequential(8), random_signals(2, 1, 8, seed=33))
    harness.assert_equivariant(sequential(8).float(), random_signals(2, 1, 8, seed=33, dtype=torch.float32),
                               layers=["0"])  # float32 default rtol 1e-4


# --------------------------------------------------------------------------- nothing silently wrong (issue 20)
class TestNothingSilentlyWrong:
    def test_an_assertion_that_measured_nothing_fails(self):
        model = sequential(8)
        x = random_signals(2, 1, 8, seed=0)
        for kw in ({"rotations": random_rotations(0)}, {"n_rotations": 0}):
            with pytest.raises(AssertionError, match=r"nothing was measured \(2 inputs, 0 rotations\)"):
                harness.assert_equivariant(model, x, input="dh", **kw)
        with pytest.raises(AssertionError, match=r"nothing was measured \(0 inputs, 4 rotations\)"):
            harness.assert_equivariant(model, x[:0], input="dh")

    @pytest.mark.parametrize("rtol", [-1.0, float("nan"), "1e-3", True])
    def test_rtol_is_validated(self, rtol):
        with pytest.raises(ValueError, match=r"rtol: expected a finite number >= 0"):
            harness.assert_equivariant(sequential(8), random_signals(1, 1, 8), input="dh", rtol=rtol)

    def test_cohen_delta_of_a_constant_reference_is_flagged_not_reported(self):
        # a constant input through an exact conv: its std is rounding noise, so std / std would read ~1
        torch.manual_seed(0)
        model = nn.Sequential(SphericalConv(1, 1, 8)).double()
        x = torch.full((2, 1, 16, 16), 3.0, dtype=torch.float64)
        df = equivariance_error(model, x, random_rotations(3, seed=1), input="dh")
        assert df["cohen_delta"].isna().all()
        assert (df["flag"] == "constant reference (to rounding): cohen_delta undefined").all()
        assert (df["rel_error"] < 1e-12).all()  # the relative error stays defined

    def test_aliasing_refuses_what_it_cannot_measure(self):
        relu = Pointwise("relu")
        y = random_signals(2, 1, 8, seed=3)
        wild = y + 0.1 * torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(0))
        with pytest.raises(ValueError, match=r"y: not band-limited on S2Grid\('dh', 8\)"):
            aliasing(relu, wild)
        assert aliasing(relu, wild, project=True)["aliasing_error"].notna().all()
        bad = y.clone()
        bad[0, 0, 3, 3] = float("nan")
        with pytest.raises(ValueError, match=r"y: 1 of its 512 values are NaN or Inf"):  # not "not pointwise"
            aliasing(relu, bad)
        zero = aliasing(relu, torch.zeros(1, 1, 16, 16, dtype=torch.float64))
        assert zero["aliasing_error"].isna().all() and (zero["flag"] == "zero reference: relative errors undefined").all()
        with pytest.raises(ValueError, match=r"layers: '0' is a SphericalConv, not a pointwise nonlinearity"):
            model_aliasing(sequential(8), y, input="dh", layers=["0"])

    def test_model_and_output_are_checked_by_type(self):
        x = random_signals(1, 1, 4)
        with pytest.raises(TypeError, match=r"model: expected an nn.Module or a callable, got int"):
            equivariance_error(5, x, random_rotations(1), input="dh")
        with pytest.raises(TypeError, match=r"output: expected a field \(harness.S2Grid\(kind, b\).*got 5"):
            equivariance_error(nn.Identity(), x, random_rotations(1), input="dh", output=5)
        with pytest.raises(harness.util.schema.ConfigError, match=r"layers\[0\].type: expected one of \["):
            harness.build_model({"in_channels": 1, "bandwidth": 8, "layers": [{"type": ["conv"]}]})  # was: unhashable


class TestFrictions:
    """What a user bringing their own modules hit (issue 21), each with the message that helps."""

    def test_a_declared_output_that_contradicts_a_harness_layer_is_refused(self):
        x = random_signals(2, 1, 8)
        m = nn.Sequential(SphericalConv(1, 1, 8)).double()
        with pytest.raises(ValueError, match=r"layer '0': declared output S2Grid\('soft', 8\), but the SphericalConv"
                                             r" writes S2Grid\('dh', 8\)"):
            equivariance_error(m, x, random_rotations(1), input="dh", layers={"0": S2Grid("soft", 8)})  # was: 0.57

    def test_output_types_the_last_child_of_a_sequential(self):
        m = nn.Sequential(SphericalConv(1, 2, 8), nn.ReLU()).double()
        df = equivariance_error(m, random_signals(2, 1, 8), random_rotations(1), input="dh", output=S2Grid("dh", 8))
        assert set(df["layer"]) == {"0", "1"}  # was: "declare it: layers=..." for the ReLU

    def test_removed_keywords_point_at_their_new_names(self):
        with pytest.raises(TypeError, match=r"'kind' is now input \(a grid kind or a field, e.g. input='dh'\)"):
            equivariance_error(nn.Identity(), random_signals(1, 1, 4), random_rotations(1), kind="dh")
        with pytest.raises(TypeError, match=r"'input_kind' is now kind"):
            Pointwise("relu", input_kind="dh")
        with pytest.raises(ValueError, match=r"input: 'coeffs' is not a grid kind; .* input=harness.S2Coeffs\(b\)"):
            equivariance_error(nn.Identity(), random_signals(1, 1, 4), random_rotations(1), input="coeffs")

    def test_e3nn_modules_say_their_own_irreps(self):
        o3 = pytest.importorskip("e3nn.o3")
        torch.set_default_dtype(torch.float64)
        try:
            lin = o3.Linear("2x0e+1x1o", "1x0e+2x1o")
        finally:
            torch.set_default_dtype(torch.float32)
        x = torch.randn(3, lin.irreps_in.dim, dtype=torch.float64)
        df = equivariance_error(lin.eval(), x, random_rotations(2, seed=0))  # no input= or output= needed
        assert set(df["field"]) == {"Irreps('1x0e+2x1o')"} and df["rel_error"].max() < 1e-12

    def test_a_model_in_training_mode_is_measured_in_eval_mode_and_says_so(self):
        m = harness.build_model("esteves_mnist", bandwidth=16).double().train()
        with pytest.warns(UserWarning, match=r"model: SphericalModel is in training mode; it is measured in eval mode"):
            equivariance_error(m, random_signals(2, 1, 16), random_rotations(1))
        assert m.training  # left as it was
