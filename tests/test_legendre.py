import mpmath
import numpy as np
import pytest
from scipy.special import sph_harm_y

import harness
from harness.sphere.legendre import legendre_diagonals, legendre_table


def test_table_matches_scipy_sph_harm_y():
    b = 48
    theta = np.concatenate([[0.0, np.pi], np.linspace(1e-3, np.pi - 1e-3, 41)])
    T = legendre_table(b, theta)
    l, m = np.meshgrid(np.arange(b), np.arange(b), indexing="ij")
    ok = (m <= l)[..., None]
    ref = sph_harm_y(l[..., None], np.where(ok[..., 0], m, 0)[..., None], theta, 0.0).real
    np.testing.assert_allclose(T, np.where(ok, ref, 0.0), atol=1e-13)


@pytest.mark.slow
def test_no_overflow_or_underflow_to_b_1024():
    # normalization sum_j w_j Pbar(l,m)^2 * 2 pi = 1 for every (l, m), l < 1024, on the exact GL grid
    b = 1024
    g = harness.grid("gl", b)
    worst = 0.0
    for k, p in legendre_diagonals(b, g.theta):
        assert np.isfinite(p).all()
        norms = 2 * np.pi * (g.weights * p * p).sum(axis=1)
        worst = max(worst, np.abs(norms - 1).max())
    assert worst < 1e-11
    # spot values against mpmath (scipy's sph_harm_y returns nan at l >= ~1000), including
    # high orders near a pole where sin^m underflows float64
    theta = np.array([0.01, 0.3, 1.2, np.pi / 2, 3.0])
    T = {}
    for k, p in legendre_diagonals(b, theta):
        for l, m in [(1023, 0), (1023, 1), (1023, 700), (900, 880), (1000, 3), (600, 599)]:
            if l - m == k:
                T[(l, m)] = p[m]
    mpmath.mp.dps = 30
    for (l, m), v in T.items():
        ref = np.array([float(mpmath.re(mpmath.spherharm(l, m, t, 0))) for t in theta])
        np.testing.assert_allclose(v, ref, atol=1e-13, rtol=1e-9)
