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


# --------------------------------------------------------------------------- Representation
def _vector(R):  # rho(R) = R: 3-vectors
    return R


def _rank2(R):  # rho(R) = R (x) R on row-major flattened 3 x 3 matrices: vec(R M R^T)
    return torch.einsum("kij,kab->kiajb", R, R).reshape(R.shape[0], 9, 9)


def _measure(model, x, R, field):
    df = harness.equivariance_error(model, x, R, input=field, output=field)
    return df.sort_values(["input", "rotation"]).reset_index(drop=True)


def test_representation_of_irreps_matrices_agrees_with_irreps():
    ir = Irreps(IRREPS)
    rep = harness.Representation(ir.matrices, ir.dim)
    assert isinstance(ir, harness.Representation) and rep.check_group_law() < 1e-12
    R = harness.random_rotations(5, seed=11)
    x = ir.random(5, channels=2, seed=12)
    torch.testing.assert_close(rep.matrices(R), ir.matrices(R), rtol=0, atol=0)
    torch.testing.assert_close(rep.rotate(x, R), ir.rotate(x, R), rtol=0, atol=0)
    torch.testing.assert_close(rep.norm2(x), ir.norm2(x), rtol=0, atol=0)
    lin = torch.nn.Linear(ir.dim, ir.dim, dtype=torch.float64).eval()  # not equivariant
    torch.nn.init.normal_(lin.weight, generator=torch.Generator().manual_seed(0))
    gate = lambda t: t * torch.sigmoid(t[..., :1])  # noqa: E731 - scales each vector by a function of a scalar
    for model, bound in [(lin, None), (gate, 1e-13)]:
        a, b = _measure(model, x, R, ir), _measure(model, x, R, rep)
        for col in ["rel_error", "max_abs_error", "cohen_delta", "floor"]:
            np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy())
        if bound is None:
            assert a["rel_error"].min() > 0.1
        else:
            assert a["rel_error"].max() < bound
    assert set(b["field"]) == {repr(rep)} and repr(ir) == "Irreps('2x0e+1x1o+2x2e+1x3o+1x6e')"


def test_representation_closed_forms_vector_and_rank2_tensor():
    vec = harness.Representation(_vector, 3, name="vector")
    t2 = harness.Representation(_rank2, 9, name="R(x)R")
    assert repr(t2) == "Representation(R(x)R, dim=9)"
    R = harness.random_rotations(6, seed=13)
    M = torch.randn(6, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(14))
    torch.testing.assert_close(t2.rotate(M.reshape(6, 9), R), (R @ M @ R.transpose(1, 2)).reshape(6, 9))
    v = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(15))
    cases = [  # (model, input field, output field, x, equivariant?)
        (lambda u: u * u.square().sum(-1, keepdim=True), vec, vec, v, True),
        (lambda u: torch.relu(u), vec, vec, v, False),
        (lambda u: (u[:, :, None] * u[:, None, :]).reshape(-1, 9), vec, t2, v, True),  # v v^T
        (lambda m: (m.reshape(-1, 3, 3) @ m.reshape(-1, 3, 3).transpose(1, 2)).reshape(-1, 9), t2, t2, M.reshape(6, 9), True),
        (lambda m: torch.tanh(m), t2, t2, M.reshape(6, 9), False),
    ]
    for model, fin, fout, x, equivariant in cases:
        err = harness.equivariance_error(model, x, R, input=fin, output=fout)["rel_error"]
        if equivariant:
            assert err.max() < 1e-14, (fin, fout, err.max())
        else:
            assert err.min() > 1e-2, (fin, fout, err.min())


def test_representation_lie_action_is_exact_through_a_differentiable_rho():
    vec = harness.Representation(_vector, 3)
    t2 = harness.Representation(_rank2, 9)
    eye = torch.eye(3, dtype=torch.float64)
    for omega in [*np.eye(3), np.array([0.3, -1.2, 0.5])]:
        W = torch.tensor([[0, -omega[2], omega[1]], [omega[2], 0, -omega[0]], [-omega[1], omega[0], 0]])
        torch.testing.assert_close(vec.generator(omega), W, rtol=0, atol=1e-15)
        torch.testing.assert_close(t2.generator(omega), torch.kron(W, eye) + torch.kron(eye, W), rtol=0, atol=1e-15)
    v = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(16))
    ld = harness.lie_derivative(lambda u: u * u.square().sum(-1, keepdim=True), v, input=vec, output=vec)
    assert ld["lie_derivative"].max() < 1e-14
    ld = harness.lie_derivative(torch.relu, v, input=vec, output=vec)
    assert ld["lie_derivative"].max() > 0.1
    # a closed form given as lie= is used as it is
    ir = Irreps("1o+2e")
    rep = harness.Representation(ir.matrices, ir.dim, lie=lambda w: ir.lie_action(torch.eye(ir.dim, dtype=torch.float64), w).T)
    x = ir.random(2, seed=17)
    torch.testing.assert_close(rep.lie_action(x, np.eye(3)[1]), ir.lie_action(x, np.eye(3)[1]))


def test_representation_errors_name_what_came():
    R = harness.random_rotations(2, seed=18)
    with pytest.raises(ValueError, match=r"rho: expected a callable mapping rotations \[K, 3, 3\].*got str"):
        harness.Representation("R", 3)
    for dim in [0, -1, 2.5, True, "3"]:
        with pytest.raises(ValueError, match=r"dim: expected a positive int"):
            harness.Representation(_vector, dim)
    with pytest.raises(ValueError, match=r"expected shape \[7, 4, 4\], got \(7, 3, 3\)"):
        harness.Representation(_vector, 4).matrices(R)
    with pytest.raises(ValueError, match=r"expected shape \[2, 3, 3\], got \(3, 3\) \(one matrix for all rotations\?"):
        harness.Representation(lambda r: r[0], 3, check_group_law=False).matrices(R)
    with pytest.raises(ValueError, match=r"expected real float32/float64 matrices, got dtype torch.complex128"):
        harness.Representation(lambda r: r.to(torch.complex128), 3).matrices(R)
    with pytest.raises(ValueError, match=r"expected a torch.Tensor or numpy array \[7, 3, 3\], got list"):
        harness.Representation(lambda r: r.tolist(), 3).matrices(R)
    with pytest.raises(ValueError, match=r"expected finite matrices, got nan/inf"):
        harness.Representation(lambda r: r / 0 * 0, 3).matrices(R)
    with pytest.raises(ValueError, match=r"expected \[batch, \.\.\., 3\] vectors of Representation\(vector, dim=3\), got shape \(2, 4\)"):
        harness.Representation(_vector, 3, name="vector").check(torch.zeros(2, 4, dtype=torch.float64), "x")
    # the group law, checked on first use: R^T is an anti-homomorphism, R -> 2R not orthogonal
    with pytest.raises(ValueError, match=r"rho\(R1 R2\) = rho\(R1\) rho\(R2\) fails by .*evaluated at R\^-1 or transposed"):
        harness.equivariance_error(_vector, torch.ones(1, 3, dtype=torch.float64), R,
                                   input=harness.Representation(lambda r: r.transpose(1, 2), 3), output=harness.Representation(_vector, 3))
    with pytest.raises(ValueError, match=r"rho\(I\) = I fails by 1"):
        harness.Representation(lambda r: 2 * r, 3).matrices(R)
    with pytest.raises(ValueError, match=r"rho\(R\)\^T rho\(R\) = I \(orthogonal\) fails"):
        S = torch.diag(torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64))
        harness.Representation(lambda r: S @ r @ torch.linalg.inv(S), 3).matrices(R)
    assert harness.Representation(lambda r: 2 * r, 3, check_group_law=False).matrices(R).shape == (2, 3, 3)
    # a rho torch cannot differentiate: an error naming why, never a silent zero derivative
    x = torch.ones(1, 3, dtype=torch.float64)
    with pytest.raises(NotImplementedError, match=r"torch cannot differentiate rho: RuntimeError.*pass lie="):
        harness.Representation(lambda r: torch.from_numpy(r.numpy().copy()), 3).lie_action(x, np.eye(3)[0])
    with pytest.raises(NotImplementedError, match=r"differs from a central difference by 1 .*numpy or \.detach\(\)"):
        harness.Representation(lambda r: r.detach().clone(), 3).lie_action(x, np.eye(3)[0])
    with pytest.raises(ValueError, match=r"lie \(.*\): expected a real \[3, 3\] matrix, got \(2, 2\)"):
        harness.Representation(_vector, 3, lie=lambda w: np.eye(2)).lie_action(x, np.eye(3)[0])
