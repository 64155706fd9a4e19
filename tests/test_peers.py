"""Measuring third-party models: e3nn and torch-harmonics modules, with exact rotations.

The oracles are the peers' own: e3nn's D matrices and grids, torch-harmonics' transforms, and
group elements that act on a grid by permuting its columns."""

import math

import numpy as np
import pytest
import torch

import harness
from harness.sphere.fields import Irreps, S2Grid

e3nn_o3 = pytest.importorskip("e3nn.o3", reason="e3nn is a test dependency (make test installs it)")
e3nn_nn = pytest.importorskip("e3nn.nn")
th = pytest.importorskip("torch_harmonics", reason="torch-harmonics 0.9.3 is a test dependency (make test installs it)")


@pytest.fixture(autouse=True)
def float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the peers build their tables in the default dtype
    yield
    torch.set_default_dtype(old)


def sphere_irreps(lmax: int) -> str:
    return "+".join(f"{l}{'eo'[l % 2]}" for l in range(lmax + 1))


# --------------------------------------------------------------------------- e3nn
def test_e3nn_from_s2grid_is_exactly_equivariant_in_its_own_frame():
    b = 8
    module = e3nn_o3.FromS2Grid((2 * b, 2 * b), lmax=b - 1)
    field = S2Grid("soft", b, frame="e3nn")
    x = field.random(3, seed=0)
    R = harness.random_rotations(4, seed=1)
    df = harness.assert_equivariant(module, x, R, input=field, output=Irreps(sphere_irreps(b - 1)))
    assert df["rel_error"].max() <= 1e-12
    wrong = harness.equivariance_error(module, x, R, input=S2Grid("soft", b), output=Irreps(sphere_irreps(b - 1)))
    assert wrong["rel_error"].min() > 0.1  # its grid is y-up: the harness frame reads nonsense


def test_e3nn_s2activation_matches_e3nns_own_measurement():
    irreps = sphere_irreps(4)
    act = e3nn_nn.S2Activation(irreps, torch.relu, res=12)
    field = Irreps(irreps)
    x = field.random(4, seed=2)
    R = harness.random_rotations(3, seed=3)
    df = harness.equivariance_error(act, x, R, input=field, output=Irreps(str(act.irreps_out)))
    D_in = e3nn_o3.Irreps(irreps).D_from_matrix(R)
    D_out = e3nn_o3.Irreps(str(act.irreps_out)).D_from_matrix(R)
    with torch.no_grad():  # e3nn's definition: max |f(D x) - D f(x)|
        direct = (act(torch.einsum("kij,nj->kni", D_in, x)) - torch.einsum("kij,nj->kni", D_out, act(x))).abs().amax(-1)
    got = df.set_index(["rotation", "input"])["max_abs_error"].sort_index().to_numpy().reshape(3, 4)
    np.testing.assert_allclose(got, direct.numpy(), rtol=1e-9)
    assert 1e-3 < df["rel_error"].median() < 0.5  # sampled on a grid: aliasing, as e3nn's tests allow


def test_e3nn_linear_passes_assert_equivariant():
    lin = e3nn_o3.Linear("2x0e+3x1o+1x2e", "1x0e+2x1o+2x2e")
    harness.assert_equivariant(lin, Irreps("2x0e+3x1o+1x2e").random(3, seed=4), input=Irreps("2x0e+3x1o+1x2e"),
                               output=Irreps("1x0e+2x1o+2x2e"))
    ld = harness.lie_derivative(lin, Irreps("2x0e+3x1o+1x2e").random(3, seed=4), input=Irreps("2x0e+3x1o+1x2e"),
                                output=Irreps("1x0e+2x1o+2x2e"))
    assert ld["lie_derivative"].max() <= 1e-12


# --------------------------------------------------------------------------- torch-harmonics
def test_the_cc_grid_is_torch_harmonics_equiangular_grid():
    b = 16
    g = harness.grid("cc", b)
    sht = th.RealSHT(*g.shape, lmax=b, mmax=b, grid="equiangular")
    x = harness.random_signals(2, 3, b, kind="cc", seed=5)
    np.testing.assert_allclose(sht(x).numpy(), harness.sft(x, "cc").numpy(), atol=1e-13)
    noise = torch.randn(2, *g.shape)  # the same quadrature beyond the bandlimit too
    np.testing.assert_allclose(sht(noise).numpy(), harness.sft(noise, "cc").numpy(), atol=1e-12)


def _spectral_conv(b: int, operator_type: str):
    from torch_harmonics.examples.models._layers import SpectralConvS2

    g = harness.grid("cc", b)
    sht = th.RealSHT(*g.shape, lmax=b, mmax=b, grid="equiangular")
    isht = th.InverseRealSHT(*g.shape, lmax=b, mmax=b, grid="equiangular")
    torch.manual_seed(6)
    return SpectralConvS2(sht, isht, 2, 2, operator_type=operator_type)


def test_sfno_spectral_convolution():
    """SFNO's "driscoll-healy" layer multiplies f^m_l (m >= 0) by a complex weight per degree, so
    the implied m < 0 half gets its conjugate: diagonal in m (it commutes with rotations about z)
    but a multiple of the identity per degree only when the weights are real. It computes in
    float32 whatever its input (``x.float()``)."""
    b = 10
    x = harness.random_signals(2, 2, b, kind="cc", seed=7)
    R = harness.random_rotations(3, seed=8)
    about_z = harness.euler_zyz_to_matrix(torch.tensor([0.3, 1.1, 2.9]), torch.zeros(3), torch.zeros(3))
    conv = _spectral_conv(b, "driscoll-healy")

    def f(t):
        return conv(t)[0]  # it returns (output, residual)

    assert harness.equivariance_error(f, x, about_z, input="cc")["rel_error"].max() < 1e-6
    assert harness.equivariance_error(f, x, R, input="cc")["rel_error"].min() > 0.1
    with torch.no_grad():
        conv.weight.imag.zero_()  # a real (zonal) filter: exactly equivariant, to float32 rounding
    harness.assert_equivariant(f, x, R, input="cc", rtol=1e-6)
    diagonal = _spectral_conv(b, "diagonal")  # weights per (degree, order): not even with real weights
    with torch.no_grad():
        diagonal.weight.imag.zero_()
    assert harness.equivariance_error(lambda t: diagonal(t)[0], x, R, input="cc")["rel_error"].min() > 1e-2


def test_disco_convolution_is_exact_under_grid_aligned_rotations():
    """Rotations about z by multiples of 2 pi / nlon permute grid columns; DISCO is built to
    commute with them, so the harness must read float32 rounding there, and more elsewhere."""
    b = 8
    g = harness.grid("cc", b)
    torch.manual_seed(9)
    conv = th.DiscreteContinuousConvS2(2, 2, in_shape=g.shape, out_shape=g.shape, kernel_shape=3,
                                       grid_in="equiangular", grid_out="equiangular").float()
    x = harness.random_signals(2, 2, b, kind="cc", seed=10, dtype=torch.float32)
    k = torch.arange(1, 4, dtype=torch.float64)
    aligned = harness.euler_zyz_to_matrix(2 * math.pi * k / g.nlon, 0 * k, 0 * k)
    df = harness.equivariance_error(conv, x, aligned, input="cc")
    assert df["rel_error"].max() < 1e-5
    generic = harness.equivariance_error(conv, x, harness.random_rotations(3, seed=11), input="cc")
    assert generic["rel_error"].min() > 1e-2  # white inputs at the grid's own bandwidth alias


# --------------------------------------------------------------------------- torch-harmonics 0.9 changes
def test_sht_default_truncation_on_the_equiangular_grid():
    """Changed in 0.9.0: without ``lmax`` an equiangular RealSHT keeps degrees < (nlat + 1) // 2
    (0.8.0 kept nlat) and says so in a UserWarning. With lmax = b on the 2b x 2b grid that is the
    harness's exact bandwidth-b analysis; the oracle is the harness's own quadrature."""
    b = 12
    g = harness.grid("cc", b)
    with pytest.warns(UserWarning, match="Default SHT truncation changed in v0.9.0"):
        sht = th.RealSHT(*g.shape, grid="equiangular")
    assert (sht.lmax, sht.mmax) == ((g.nlat + 1) // 2,) * 2 == (b, b)  # orders follow the degrees
    x = harness.random_signals(2, 3, b, kind="cc", seed=12)
    np.testing.assert_allclose(sht(x).numpy(), harness.sft(x, "cc").numpy(), atol=1e-13)


def _disco_on_constant(b: int, **kw) -> torch.Tensor:
    g = harness.grid("cc", b)
    torch.manual_seed(13)
    conv = th.DiscreteContinuousConvS2(1, 2, in_shape=g.shape, out_shape=g.shape, kernel_shape=3, bias=False,
                                       grid_in="equiangular", grid_out="equiangular", **kw)
    with torch.no_grad():
        return conv(torch.ones(1, 1, *g.shape))[0]


def _spread(y: torch.Tensor) -> torch.Tensor:
    """(max - min) / |mean| per output channel: 0 for a constant."""
    return (y.amax((-1, -2)) - y.amin((-1, -2))) / y.mean((-1, -2)).abs()


def test_disco_default_normalization_sends_constants_to_constants():
    """Changed in 0.9: DISCO's default ``basis_norm_mode`` is "nodal" (0.8.0: "mean"). An equivariant
    map sends a constant to a constant (the oracle needs no rotation); "nodal" divides each basis
    function by its quadrature 1-norm at every output latitude, so a non-negative kernel integrates
    the constant to the same value everywhere (float32 rounding). "mean" divides by one norm
    averaged over latitudes and leaves a latitude-dependent field."""
    import inspect

    assert inspect.signature(th.DiscreteContinuousConvS2).parameters["basis_norm_mode"].default == "nodal"
    b = 16
    default = _disco_on_constant(b)
    assert _spread(default).max() < 1e-5
    assert _spread(_disco_on_constant(b, basis_norm_mode="mean")).min() > 0.1
    with pytest.warns(DeprecationWarning, match="individual"):  # 0.9: an alias of "nodal"
        individual = _disco_on_constant(b, basis_norm_mode="individual")
    assert torch.equal(individual, default)


def test_public_spectral_convolution_of_0_9():
    """New in 0.9: ``th.SpectralConvS2(in_shape, out_shape, c_in, c_out)``, everything by default
    (its own truncation, degrees < (nlat + 1) // 2). Like SFNO's layer it multiplies f^m_l (m >= 0)
    by one complex weight per degree: it commutes with rotations about z and with no other, and
    with the imaginary parts zeroed it is exactly equivariant (float32 rounding)."""
    b = 10
    g = harness.grid("cc", b)
    torch.manual_seed(14)
    with pytest.warns(UserWarning, match="Default SHT truncation"):
        conv = th.SpectralConvS2(g.shape, g.shape, 2, 2)
    assert conv.lmax == b and conv.weight.is_complex()
    x = harness.random_signals(2, 2, b, kind="cc", seed=15)
    about_z = harness.euler_zyz_to_matrix(torch.tensor([0.4, 1.3]), torch.zeros(2), torch.zeros(2))
    assert harness.equivariance_error(conv, x, about_z, input="cc")["rel_error"].max() < 1e-6
    R = harness.random_rotations(3, seed=16)
    assert harness.equivariance_error(conv, x, R, input="cc")["rel_error"].min() > 0.1
    with torch.no_grad():
        conv.weight.imag.zero_()
    harness.assert_equivariant(conv, x, R, input="cc", rtol=1e-6)
