import numpy as np
import pytest
from scipy.special import eval_legendre

import harness
from harness.sphere.grids import GRID_KINDS, bandwidth_from_shape, grid_shape


@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("b", [1, 2, 7, 32])
def test_weights_integrate_polynomials_of_degree_below_2b(kind, b):
    # sum_j w_j P_n(cos t_j) = int_{-1}^{1} P_n = 2 delta_n0 for every n < 2b: exactness for
    # products of two bandwidth-b functions.
    g = harness.grid(kind, b)
    n = np.arange(2 * b - 1)
    integrals = (g.weights[None, :] * eval_legendre(n[:, None], np.cos(g.theta)[None, :])).sum(axis=1)
    np.testing.assert_allclose(integrals, np.where(n == 0, 2.0, 0.0), atol=1e-13)


def test_grid_nodes_and_shapes_match_the_formulas():
    b = 5
    dh, soft, gl = (harness.grid(k, b) for k in ("dh", "soft", "gl"))
    j = np.arange(2 * b)
    np.testing.assert_allclose(dh.theta, np.pi * j / (2 * b))  # north pole in, south pole out
    np.testing.assert_allclose(soft.theta, np.pi * (2 * j + 1) / (4 * b))
    np.testing.assert_allclose(dh.phi, 2 * np.pi * j / (2 * b))
    x, w = np.polynomial.legendre.leggauss(b)
    np.testing.assert_allclose(np.cos(gl.theta), x[::-1], atol=1e-14)
    np.testing.assert_allclose(gl.weights, w[::-1], rtol=1e-12)
    assert dh.shape == soft.shape == (2 * b, 2 * b)  # (2b)^2 points, not the blog post's (2b+1)^2
    assert gl.shape == (b, 2 * b - 1)
    cc = harness.grid("cc", b)  # torch-harmonics' "equiangular": both poles
    np.testing.assert_allclose(cc.theta, np.pi * j / (2 * b - 1))
    assert cc.shape == (2 * b, 2 * b) and cc.theta[0] == 0 and cc.theta[-1] == np.pi


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_points_lie_on_the_unit_sphere(kind):
    p = harness.grid(kind, 6).points()
    np.testing.assert_allclose(np.linalg.norm(p, axis=-1), 1.0, atol=1e-15)


def test_shape_round_trip_and_errors():
    for kind in GRID_KINDS:
        for b in (1, 3, 16):
            assert bandwidth_from_shape(grid_shape(kind, b), kind) == b
    with pytest.raises(ValueError, match=r"fits no bandwidth of the 'dh' grid"):
        bandwidth_from_shape((10, 12), "dh")
    with pytest.raises(ValueError, match=r"valid grids are \['dh', 'soft', 'gl', 'cc'\]"):
        harness.grid("healpix", 4)
    with pytest.raises(ValueError, match=r"torch-harmonics' 'equiangular' grid is 'cc'"):
        harness.grid("equiangular", 4)
    with pytest.raises(ValueError, match="bandwidth: expected an int >= 1, got 0"):
        harness.grid("dh", 0)
    with pytest.raises(TypeError, match="bandwidth"):
        harness.grid("dh", 2.5)


def test_grid_arrays_are_read_only():
    g = harness.grid("dh", 4)
    with pytest.raises(ValueError):
        g.theta[0] = 1.0
