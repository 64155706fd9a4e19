"""Fields: exact rotations and Lie algebra actions against independent oracles (pointwise
``sph_harm_y`` evaluation, e3nn's own D matrices and grids, high-order finite differences)."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import harness
from harness.sphere.fields import FRAMES, Invariant, Irreps, S2Coeffs, S2Grid, field_from_table
from harness.sphere.grids import GRID_KINDS

from .oracles import evaluate, random_coefficients


def at_points(c: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The signal with harness coefficients ``c`` at unit vectors ``points`` [..., 3]."""
    return evaluate(c, np.arccos(np.clip(points[..., 2], -1, 1)), np.arctan2(points[..., 1], points[..., 0]))


@pytest.fixture
def float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its tables in the default dtype
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_s2grid_rotates_samples_to_f_at_r_inverse_p(kind):
    b = 7
    c = random_coefficients((3,), b, seed=1).numpy()
    g = harness.grid(kind, b)
    f = S2Grid(kind, b)
    x = torch.from_numpy(at_points(c, g.points()))  # [nlat, nlon, 3] -> [3, nlat, nlon]
    R = harness.random_rotations(3, seed=2)
    rotated = f.rotate(x, R).numpy()
    for p in range(3):
        expected = at_points(c[p], g.points() @ R[p].numpy())  # rows p R = (R^T p^T)^T = R^-1 p
        np.testing.assert_allclose(rotated[p], expected, atol=1e-12 * np.abs(expected).max())


def test_s2grid_in_the_e3nn_frame_rotates_e3nn_grid_samples():
    """A grid whose points are e3nn's y-up points (beta, alpha) -> (sin b sin a, cos b, sin b cos a)."""
    b = 6
    c = random_coefficients((2,), b, seed=3).numpy()
    g = harness.grid("soft", b)
    T, P = np.meshgrid(g.theta, g.phi, indexing="ij")
    pe = np.stack([np.sin(T) * np.sin(P), np.cos(T), np.sin(T) * np.cos(P)], -1)
    x = torch.from_numpy(at_points(c, pe))
    R = harness.random_rotations(2, seed=4)
    rotated = S2Grid("soft", b, frame="e3nn").rotate(x, R).numpy()
    for p in range(2):
        np.testing.assert_allclose(rotated[p], at_points(c[p], pe @ R[p].numpy()), atol=1e-12)
    assert not np.allclose(S2Grid("soft", b).rotate(x, R).numpy(), rotated, atol=1e-3)  # the frame matters


@pytest.mark.parametrize("field", [S2Grid("gl", 6), S2Grid("cc", 6), S2Coeffs(6)])
def test_sphere_lie_action_is_the_derivative_of_rotation(field):
    c = random_coefficients((2,), 6, seed=5)
    x = field.from_coefficients(c) if isinstance(field, S2Grid) else c
    g = harness.grid("gl", 6)
    for axis in np.eye(3):
        h = 1e-3
        def f_at(t):  # f(R_t^-1 p) on the GL grid, pointwise
            return at_points(c.numpy(), g.points() @ Rotation.from_rotvec(t * axis).as_matrix())
        fd = (-f_at(2 * h) + 8 * f_at(h) - 8 * f_at(-h) + f_at(-2 * h)) / (12 * h)  # O(h^4)
        got = harness.isft(field.lie_action(field.coefficients(x), axis), "gl").numpy()
        np.testing.assert_allclose(got, fd, atol=1e-9 * np.abs(fd).max())


IRREPS = "2x0e+1x1o+2x2e+1x3o+1x6e"


def test_irreps_rotate_with_e3nns_matrices(float64_default):
    o3 = pytest.importorskip("e3nn.o3")
    R = harness.random_rotations(6, seed=6)
    D = o3.Irreps(IRREPS).D_from_matrix(R)
    np.testing.assert_allclose(Irreps(IRREPS).matrices(R).numpy(), D.numpy(), atol=1e-13)
    x = Irreps(IRREPS).random(6, seed=1)
    np.testing.assert_allclose(Irreps(IRREPS).rotate(x, R).numpy(), torch.einsum("pij,pj->pi", D, x).numpy(), atol=1e-13)


def test_irreps_lie_action_is_the_derivative_of_e3nns_matrices(float64_default):
    o3 = pytest.importorskip("e3nn.o3")
    x = Irreps(IRREPS).random(3, seed=2)
    for axis in np.eye(3):
        h = 1e-3
        def D(t):
            return o3.Irreps(IRREPS).D_from_matrix(torch.from_numpy(Rotation.from_rotvec(t * axis).as_matrix()))
        dD = (-D(2 * h) + 8 * D(h) - 8 * D(-h) + D(-2 * h)) / (12 * h)
        np.testing.assert_allclose(Irreps(IRREPS).lie_action(x, axis).numpy(), (x @ dD.T).numpy(), atol=1e-10)


def test_irreps_group_law_and_e3nn_spherical_harmonics(float64_default):
    o3 = pytest.importorskip("e3nn.o3")
    ir = Irreps("0e+1o+2e+3o+4e")
    R = harness.random_rotations(4, seed=7)
    # Y(R v) = D(R) Y(v) for e3nn's own spherical harmonics: the basis is e3nn's
    v = torch.randn(4, 3, dtype=torch.float64)
    Y = o3.spherical_harmonics([0, 1, 2, 3, 4], v, normalize=True)
    YR = o3.spherical_harmonics([0, 1, 2, 3, 4], torch.einsum("pij,pj->pi", R, v), normalize=True)
    np.testing.assert_allclose(ir.rotate(Y, R).numpy(), YR.numpy(), atol=1e-12)
    D01 = ir.matrices(R[:1] @ R[1:2])[0]
    np.testing.assert_allclose(D01.numpy(), (ir.matrices(R[:1])[0] @ ir.matrices(R[1:2])[0]).numpy(), atol=1e-12)


def test_invariant_and_coeff_fields():
    R = harness.random_rotations(2, seed=8)
    t = torch.randn(2, 5, dtype=torch.float64)
    assert torch.equal(Invariant().rotate(t, R), t)
    c = random_coefficients((2, 3), 5, seed=9)
    rc = S2Coeffs(5).rotate(c, R)
    np.testing.assert_allclose(S2Coeffs(5).norm2(rc).numpy(), S2Coeffs(5).norm2(c).numpy(), rtol=1e-12)  # unitary


def test_out_of_band_and_projection():
    f = S2Grid("dh", 8)
    x = f.random(3, seed=0)
    assert float(f.out_of_band(x).max()) < 1e-28
    noise = torch.randn(3, 16, 16, dtype=torch.float64)
    assert float(f.out_of_band(noise).min()) > 0.5  # white grid noise: most of it beyond b
    assert float(f.out_of_band(f.project(noise)).max()) < 1e-28


def test_field_errors_name_what_came():
    with pytest.raises(ValueError, match=r"x: expected \[batch, \.\.\., 16, 16\] samples of S2Grid\('dh', 8\), got shape \(3, 16, 15\)"):
        S2Grid("dh", 8).check(torch.zeros(3, 16, 15, dtype=torch.float64), "x")
    with pytest.raises(ValueError, match="expected real float32/float64 samples"):
        S2Grid("dh", 8).check(torch.zeros(3, 16, 16, dtype=torch.complex128), "x")
    with pytest.raises(ValueError, match=r"cannot read '3y1o'"):
        Irreps("0e+3y1o")
    with pytest.raises(ValueError, match=r"expected \[batch, \.\.\., 4\] vectors of Irreps\('1x0e\+1x1o'\), got shape \(2, 5\)"):
        Irreps("0e+1o").check(torch.zeros(2, 5, dtype=torch.float64), "x")
    with pytest.raises(ValueError, match=r"unknown grid 'equiangular'.*torch-harmonics' 'equiangular' grid is 'cc'"):
        S2Grid("equiangular", 8)
    with pytest.raises(ValueError, match=r"frame: unknown frame 'z-up'"):
        S2Grid("dh", 8, frame="z-up")
    assert field_from_table({"field": "S2Grid", "kind": "soft"}, {"bandwidth": 5}) == S2Grid("soft", 5)
    with pytest.raises(ValueError, match=r"a S2Grid needs \['bandwidth'\]"):
        field_from_table({"field": "S2Grid", "kind": "soft"})
    assert set(FRAMES) == {"harness", "e3nn"}


def test_random_samples_refuse_a_nan_decay():
    with pytest.raises(ValueError, match=r"decay: expected a finite number >= 0, got nan"):
        Irreps("2x0e+1o").random(3, decay=float("nan"))  # was: NaN samples
