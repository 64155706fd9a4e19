import math

import numpy as np
import pytest
import torch
from scipy.special import eval_legendre, roots_legendre

import harness
from harness.nn.layers import (
    InvariantDescriptor,
    Pointwise,
    SpectralPool,
    SphericalConv,
    interpolation_matrix,
)
from harness.sphere.resample import rotate
from harness.sphere.so3 import euler_zyz_to_matrix, random_rotations
from harness.sphere.wigner import rotate_coefficients

from .oracles import evaluate, quadrature, random_coefficients


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def bandlimited(batch: tuple[int, ...], b: int, kind: str = "dh", dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    return harness.isft(random_coefficients(batch, b, seed=seed), kind).to(dtype)


# --------------------------------------------------------------------------- the convolution constant
def test_convolution_matches_brute_force_so3_integral():
    """(f * h)(x) = int_SO(3) f(g eta) h(g^-1 x) dg, dg = sin(beta) da db dg, by quadrature over ZYZ
    Euler angles: uniform in alpha and gamma, Gauss-Legendre in beta on [0, pi] (the integrand is a
    trigonometric polynomial times sin(beta), so 48 nodes are exact to rounding)."""
    b = 5
    conv = SphericalConv(1, 1, b, bias=False).double()
    h = conv.filter_spectrum()[0, 0].detach().numpy()  # the layer's own zonal filter h^0_l
    c = random_coefficients((), b, seed=1).numpy()
    g = harness.grid("dh", b)
    x_pts = g.points().reshape(-1, 3)
    na = 2 * b + 2
    a = 2 * np.pi * np.arange(na) / na
    xb, wb = roots_legendre(48)
    beta, wbeta = np.pi / 2 * (xb + 1), np.pi / 2 * wb
    A, Bt, G = np.meshgrid(a, beta, a, indexing="ij")
    R = euler_zyz_to_matrix(torch.from_numpy(A), torch.from_numpy(Bt), torch.from_numpy(G)).numpy().reshape(-1, 3, 3)
    w = (np.ones(na)[:, None, None] * (wbeta * np.sin(beta))[None, :, None] * np.ones(na)[None, None, :]).ravel()
    w *= (2 * np.pi / na) ** 2
    geta = R[:, :, 2]  # g applied to the north pole
    f_geta = evaluate(c, np.arccos(np.clip(geta[:, 2], -1, 1)), np.arctan2(geta[:, 1], geta[:, 0]))
    ginv_x = np.einsum("nji,pj->npi", R, x_pts)  # R^T x
    l = np.arange(b)
    zonal = np.sqrt((2 * l + 1) / (4 * np.pi)) * h  # h(p) = sum_l h_l Y^0_l(p)
    h_vals = (eval_legendre(l[:, None, None], ginv_x[None, ..., 2]) * zonal[:, None, None]).sum(0)
    brute = np.einsum("n,n,np->p", w, f_geta, h_vals).reshape(g.shape)
    x = harness.isft(torch.from_numpy(c))[None, None]
    got = conv(x)[0, 0].detach().numpy()
    assert np.abs(got - brute).max() / np.abs(brute).max() <= 1e-10


def test_seed_constant_is_off_by_one_in_the_degree():
    # the constants differ exactly by sqrt((2l+2)/(2l+1)): the blog post's (2l+2) must be (2l+1)
    from harness.nn.layers import conv_constants

    l = torch.arange(6, dtype=torch.float64)
    seed = torch.sqrt(16 * math.pi**3 / (2 * l + 2))
    torch.testing.assert_close(conv_constants(6) / seed, torch.sqrt((2 * l + 2) / (2 * l + 1)))


def test_filter_params_interpolate_linearly_between_anchors():
    M = interpolation_matrix(3, 9)  # anchors at degrees 0, 4, 8
    a = torch.tensor([1.0, 3.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(a @ M, torch.tensor([1, 1.5, 2, 2.5, 3, 2, 1, 0, -1], dtype=torch.float64))
    conv = SphericalConv(2, 3, 9, filter_params=3)
    assert conv.filter_spectrum().shape == (3, 2, 9)
    assert "interp" not in conv.state_dict()  # derived table, not a parameter


# --------------------------------------------------------------------------- equivariance
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("kind", ["dh", "gl", "cc"])
def test_exact_layers_are_equivariant(kind, dtype, tol):
    b = 12
    R = random_rotations(2, seed=3)
    x = bandlimited((2, 3), b, kind, dtype, seed=4)
    conv = SphericalConv(3, 4, b, kind, filter_params=5).to(dtype)
    with torch.no_grad():
        conv.bias.normal_()
    for Ri in R:
        Ri = Ri.to(dtype)
        with torch.no_grad():
            assert rel(conv(rotate(x, Ri, kind)), rotate(conv(x), Ri, kind)) <= tol
    for layer in (conv, SpectralPool(5, kind), InvariantDescriptor(kind)):  # through the harness's own API
        harness.assert_equivariant(layer, x, R, rtol=tol)
    with pytest.raises(AssertionError, match="not equivariant"):
        harness.assert_equivariant(Pointwise("relu", kind=kind), x, R, rtol=tol)


def _pointwise_error(layer: Pointwise, x: torch.Tensor, R: torch.Tensor) -> float:
    # compared as the network passes it on: bandwidth-b coefficients, rotated exactly
    lhs = harness.sft(layer(rotate(x, R)))
    rhs = rotate_coefficients(harness.sft(layer(x)), R)
    return float((lhs - rhs).norm() / rhs.norm())


def test_relu_is_measurably_not_equivariant_and_oversampling_helps():
    b = 16
    x = bandlimited((4, 1), b, seed=5)  # white spectrum
    R = random_rotations(1, seed=6)[0]
    e1 = _pointwise_error(Pointwise("relu"), x, R)
    e2 = _pointwise_error(Pointwise("relu", oversampling=2.0), x, R)
    assert e1 > 1e-3
    assert e2 < e1 / 2
    # a polynomial of degree 2 doubles the bandwidth: 2x oversampling makes it exact
    assert _pointwise_error(Pointwise("square", oversampling=2.0), x, R) <= 1e-12
    assert _pointwise_error(Pointwise("square"), x, R) > 1e-3


def test_pointwise_oversampled_on_another_grid_kind():
    # x^2 of a bandwidth-8 signal has degrees < 15, so 2x oversampling on a GL grid is exact:
    # compare with the projection of x^2 onto l < 8 done by scipy quadrature on a fine grid
    b = 8
    c = random_coefficients((), b, seed=2)
    y = Pointwise("square", oversampling=2.0, fine_kind="gl")(harness.isft(c)[None, None])[0, 0]
    fine = harness.grid("gl", 2 * b)
    T, P = np.meshgrid(fine.theta, fine.phi, indexing="ij")
    sq = evaluate(c.numpy(), T, P) ** 2
    proj = quadrature(sq, fine.theta, fine.phi, fine.weights, b)
    g = harness.grid("dh", b)
    T, P = np.meshgrid(g.theta, g.phi, indexing="ij")
    ref = torch.from_numpy(evaluate(proj, T, P))
    assert rel(y, ref) <= 1e-12


# --------------------------------------------------------------------------- gradients, training
@pytest.mark.parametrize(
    "layer",
    [
        lambda: SphericalConv(2, 2, 3, filter_params=2).double(),
        lambda: SphericalConv(2, 1, 3, kind="soft").double(),
        lambda: Pointwise("softplus"),
        lambda: Pointwise("tanh", oversampling=1.5, fine_kind="gl"),
        lambda: SpectralPool(2),
        lambda: InvariantDescriptor(),
    ],
    ids=["conv-anchors", "conv-soft", "pointwise", "pointwise-oversampled", "pool", "descriptor"],
)
def test_gradcheck(layer):
    m = layer()
    kind = getattr(m, "kind", "dh")
    x = torch.randn(2, 2, *harness.grid(kind, 3).shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))
    for p in m.parameters():
        assert torch.autograd.gradcheck(lambda w: torch.func.functional_call(m, {n: w if q is p else q for n, q in m.named_parameters()}, (x.detach(),)), (p.detach().double().requires_grad_(True),))


def test_preset_trains_on_a_toy_batch():
    torch.manual_seed(0)
    model = harness.build_model("esteves_mnist", bandwidth=16)
    x = torch.randn(8, 1, 32, 32)
    y = torch.arange(8) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_model_traces_every_layer():
    model = harness.build_model("esteves_mnist", bandwidth=16).double().eval()
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    steps = list(model.trace(x))
    assert [n for n, _, _ in steps] == ["conv1", "pointwise1", "pool1", "conv2", "pointwise2", "pool2",
                                        "conv3", "pointwise3", "descriptor1", "batchnorm1", "linear1"]
    # between S^2 layers the model hands over coefficients; the descriptor flattens
    assert steps[2][2].shape == (2, 16, 8, 8) and steps[2][2].is_complex() and steps[8][2].shape == (2, 64 * 4)
    assert all(torch.equal(a[2], b[1]) for a, b in zip(steps, steps[1:]))  # each layer is fed the one before
    assert torch.equal(steps[-1][2], model(x)) and steps[0][1] is x


# --------------------------------------------------------------------------- bad input
class TestBadInput:
    def test_wrong_channels_and_grid(self):
        conv = SphericalConv(3, 2, 8)
        with pytest.raises(ValueError, match=r"SphericalConv: expected 3 input channels, got 2"):
            conv(torch.zeros(1, 2, 16, 16))
        with pytest.raises(ValueError, match=r"expected the 'dh' grid of bandwidth 8, got grid shape \(12, 12\)"):
            conv(torch.zeros(1, 3, 12, 12))
        with pytest.raises(ValueError, match=r"expected input \[batch, channels, nlat, nlon\]"):
            conv(torch.zeros(3, 16, 16))

    def test_pointwise_arguments(self):
        with pytest.raises(ValueError, match=r"oversampling must be a finite number >= 1, got 0.5"):
            Pointwise("relu", oversampling=0.5)
        with pytest.raises(ValueError, match=r"oversampling must be a finite number >= 1, got inf"):
            Pointwise("relu", oversampling=float("inf"))
        with pytest.raises(ValueError, match=r"fine_kind: unknown grid 'fine'"):
            Pointwise("relu", oversampling=2, fine_kind="fine")
        with pytest.raises(ValueError, match=r"unknown activation 'relu6'; known: \['abs', 'elu', 'gelu'"):
            Pointwise("relu6")

    def test_spec_validation(self):
        base = {"in_channels": 1, "bandwidth": 8}
        with pytest.raises(ValueError, match=r"layers\[0\]\.type: expected one of \['batchnorm', 'conv', .*got 'dense'"):
            harness.build_model({**base, "layers": [{"type": "dense"}]})
        with pytest.raises(ValueError, match=r"layers\[0\]: unknown key\(s\) \['channels'\]; valid keys are"):
            harness.build_model({**base, "layers": [{"type": "conv", "channels": 4, "out_channels": 2}]})
        with pytest.raises(ValueError, match=r"layers\[0\]\.out_channels: required \(an integer >= 1\), missing"):
            harness.build_model({**base, "layers": [{"type": "conv"}]})
        with pytest.raises(ValueError, match=r"layers\[1\]\.oversampling: expected a finite number >= 1, got 0"):
            harness.build_model({**base, "layers": [{"type": "conv", "out_channels": 2},
                                                    {"type": "pointwise", "oversampling": 0}]})
        with pytest.raises(ValueError, match=r"needs a 'descriptor' or 'integrate' before it"):
            harness.build_model({**base, "layers": [{"type": "linear", "out_features": 3}]})
        with pytest.raises(ValueError, match=r"model: expected a preset name, one of \['cohen_mnist', 'esteves_mnist'\], got 'resnet'"):
            harness.build_model("resnet")
        with pytest.raises(ValueError, match=r"bandwidth: required \(an integer >= 1\), missing"):
            harness.build_model({"in_channels": 1, "layers": [{"type": "descriptor"}]})

    def test_renamed_keys_are_read_with_a_warning(self):
        spec = {"in_channels": 1, "bandwidth": 8, "layers": [{"type": "pointwise", "oversampling": 2, "kind": "gl"}]}
        with pytest.warns(FutureWarning, match=r"layers\[0\]\.kind is renamed layers\[0\]\.fine_kind"):
            model = harness.build_model(spec)
        assert model.layers[0].fine_kind == "gl" and model.layers[0].kind == "dh"

    def test_every_problem_of_a_spec_is_reported_at_once(self):
        from harness.util.schema import ConfigError

        spec = {"in_channels": 1, "bandwidth": 8, "backend": "fftw", "layers": [
            {"type": "conv", "out_channels": 2, "bias": "no"}, {"type": "pointwise", "oversampling": float("inf")},
            {"type": "pool", "bandwidth": 9}]}
        with pytest.raises(ConfigError) as e:
            harness.build_model(spec)
        assert e.value.problems == [
            "backend: expected one of ['torch', 'ducc0'], got 'fftw'",
            "layers[0].bias: expected true or false, got 'no'",
            "layers[1].oversampling: expected a finite number >= 1, got inf (float)",
        ]  # the pool's bandwidth is checked once the keys are right
        spec["backend"], spec["layers"][0]["bias"], spec["layers"][1]["oversampling"] = None, False, 2
        with pytest.raises(ConfigError, match=r"layers\[2\]\.bandwidth: expected at most the bandwidth 8 reaching this layer, got 9"):
            harness.build_model(spec)


def test_empty_batches_pass_through_every_layer_and_the_preset():
    x = torch.zeros(0, 1, 32, 32, dtype=torch.float64)
    assert SphericalConv(1, 3, 16).double()(x).shape == (0, 3, 32, 32)  # was: a reshape error
    for s in (1.0, 2.0):
        assert Pointwise("relu", oversampling=s)(x).shape == (0, 1, 32, 32)
    assert SpectralPool()(x).shape == (0, 1, 16, 16)
    assert InvariantDescriptor()(x).shape == (0, 1, 16)
    assert harness.build_model("esteves_mnist", bandwidth=16).double().eval()(x).shape == (0, 10)
    df = harness.equivariance_error(harness.build_model("esteves_mnist", bandwidth=16).double(), x,
                                    random_rotations(2, seed=0))
    assert len(df) == 0 and "rel_error" in df.columns


# --------------------------------------------------------------------------- nothing silently wrong (issue 20)
class TestNothingSilentlyWrong:
    def test_booleans_are_booleans(self):
        with pytest.raises(TypeError, match=r"SphericalConv: bias must be True or False, got 'no' \(str\)"):
            SphericalConv(1, 1, 8, bias="no")  # was: taken as True
        with pytest.raises(TypeError, match=r"InvariantDescriptor: flatten must be True or False, got 'no'"):
            InvariantDescriptor(flatten="no")
        with pytest.raises(TypeError, match=r"S2ToSO3Conv: bias must be True or False, got 'no'"):
            harness.S2ToSO3Conv(1, 1, 8, 4, bias="no")
        with pytest.raises(TypeError, match=r"SO3Descriptor: flatten must be True or False, got 'no'"):
            harness.SO3Descriptor(flatten="no")

    def test_a_callable_that_is_not_elementwise_is_refused(self):
        with pytest.raises(ValueError, match=r"Pointwise: the activation must be elementwise .* returned \(\)"):
            Pointwise(lambda t: t.sum())  # was: a scalar output
        with pytest.raises(ValueError, match=r"Pointwise: the activation is not elementwise"):
            Pointwise(lambda t: torch.softmax(t, -1))
        assert Pointwise(lambda t: torch.tanh(2 * t)).activation_name == "<lambda>"

    def test_validation_does_not_depend_on_the_cache(self):
        harness.grid("dh", 8), harness.grid("dh", 1)
        with pytest.raises(TypeError, match=r"bandwidth: expected an int >= 1, got 8.0"):
            harness.grid("dh", 8.0)
        with pytest.raises(TypeError, match=r"bandwidth: expected an int >= 1, got True"):
            harness.grid("dh", True)

    def test_sizes_are_refused_before_anything_is_allocated(self):
        import time

        from harness.util.memory import TooLarge

        t0 = time.perf_counter()
        with pytest.raises(ValueError, match=r"Pointwise: oversampling must be a finite number >= 1, got int with 401 digits"):
            Pointwise("relu", 10**400)  # was: OverflowError
        with pytest.raises(TooLarge, match=r"SphericalConv\(in_channels=1, out_channels=16, bandwidth=1000000000\)'s filters needs about"):
            SphericalConv(1, 16, 10**9, filter_params=8)
        with pytest.raises(TooLarge, match=r"the 'dh' grid at bandwidth 1000000 needs about"):
            harness.grid("dh", 10**6)
        with pytest.raises(TooLarge, match=r"isft onto the grid of bandwidth 1000000 of 1 maps"):
            harness.isft(torch.zeros(1, 3, 3, dtype=torch.complex128), grid_bandwidth=10**6)  # was: the grid first
        assert time.perf_counter() - t0 < 5
