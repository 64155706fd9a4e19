import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.linalg import expm
from scipy.spatial.transform import Rotation

import harness
from harness.sphere.resample import rotate
from harness.sphere.so3 import euler_zyz_to_matrix, matrix_to_euler_zyz, matrix_to_quaternion, quaternion_to_matrix, random_rotations
from harness.sphere.wigner import delta_block, rotation_plan, rotate_coefficients, wigner_D, wigner_d
from harness.sphere.transforms import degree_norms

from .oracles import evaluate, random_coefficients


def d_expm(l: int, beta: float) -> np.ndarray:
    """Independent Wigner d: exp(-i beta J_y) from the angular-momentum ladder operators."""
    m = np.arange(-l, l)
    jp = np.diag(np.sqrt((l - m) * (l + m + 1.0)), -1)  # J+ |m> = sqrt(...) |m+1>
    return expm(-beta * (jp - jp.T) / 2).real  # -i beta J_y with J_y = (J+ - J-)/(2i)


def block(D: torch.Tensor, l: int) -> torch.Tensor:
    b = (D.shape[-1] + 1) // 2
    return D[..., l, b - 1 - l : b + l, b - 1 - l : b + l]


# --------------------------------------------------------------------------- sampling, conversions
def test_random_rotations_are_reproducible_and_independent_of_global_rng():
    torch.manual_seed(0)
    a = random_rotations(5, seed=3)
    torch.manual_seed(1)
    b = random_rotations(5, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, random_rotations(5, seed=4))
    g = torch.Generator().manual_seed(3)
    assert torch.equal(random_rotations(5, generator=g), a)
    assert random_rotations(2, seed=0, dtype=torch.float32).dtype == torch.float32


def test_haar_rotation_angle_and_cos_beta():
    R = random_rotations(4000, seed=11)
    omega = torch.arccos(((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)).numpy()
    cdf = lambda w: (w - np.sin(w)) / np.pi  # noqa: E731  (density (1 - cos w) / pi on [0, pi])
    assert stats.kstest(omega, cdf).pvalue > 0.01
    _, beta, _ = matrix_to_euler_zyz(R)
    assert stats.kstest(np.cos(beta.numpy()), stats.uniform(loc=-1, scale=2).cdf).pvalue > 0.01
    # and the test can fail: rotations about z only are far from Haar
    assert stats.kstest(np.cos(np.zeros(4000) + 1e-3), stats.uniform(loc=-1, scale=2).cdf).pvalue < 1e-6


def test_conversions_agree_with_scipy():
    R = random_rotations(50, seed=2)
    r = Rotation.from_matrix(R.numpy())
    a, b, g = matrix_to_euler_zyz(R)
    np.testing.assert_allclose(torch.stack([a, b, g], -1).numpy(), r.as_euler("ZYZ"), atol=1e-12)
    np.testing.assert_allclose(euler_zyz_to_matrix(a, b, g).numpy(), R.numpy(), atol=1e-14)
    np.testing.assert_allclose(matrix_to_quaternion(R).numpy(), r.as_quat(canonical=True), atol=1e-14)
    np.testing.assert_allclose(quaternion_to_matrix(torch.from_numpy(r.as_quat())).numpy(), R.numpy(), atol=1e-14)


@pytest.mark.parametrize("beta", [0.0, 1e-9, math.pi - 1e-9, math.pi])
def test_gimbal_lock_angles_give_the_right_matrix(beta):
    R = euler_zyz_to_matrix(torch.tensor(0.7), torch.tensor(beta), torch.tensor(-1.9))
    back = euler_zyz_to_matrix(*matrix_to_euler_zyz(R))
    np.testing.assert_allclose(back.numpy(), R.numpy(), atol=1e-14)


# --------------------------------------------------------------------------- Wigner d and D
@pytest.mark.parametrize("beta", [1e-7, 0.4, math.pi / 2, 2.5])
def test_wigner_d_matches_matrix_exponential(beta):
    d = wigner_d(9, beta)
    for l in range(9):
        np.testing.assert_allclose(block(d, l).numpy(), d_expm(l, beta), atol=1e-14)


def test_wigner_d_closed_forms_at_0_and_pi():
    # d(0) = I and d^l_{m'm}(pi) = (-1)^(l-m) delta_{m', -m} exactly (expm is only good to ~1e-13
    # at beta l ~ 25, so the closed forms are the better oracle at the ends)
    b = 9
    d0, dpi = wigner_d(b, 0.0), wigner_d(b, math.pi)
    for l in range(b):
        m = np.arange(-l, l + 1)
        np.testing.assert_allclose(block(d0, l).numpy(), np.eye(2 * l + 1), atol=1e-15)
        np.testing.assert_allclose(block(dpi, l).numpy(), np.fliplr(np.diag((-1.0) ** (l - m[::-1]))), atol=1e-15)


def test_delta_blocks_match_matrix_exponential_and_plan_is_cached():
    for l in range(12):
        np.testing.assert_allclose(delta_block(12, l).numpy(), d_expm(l, math.pi / 2), atol=1e-14)
    assert rotation_plan(8) is rotation_plan(8)  # one table per (bandwidth, dtype, device)
    p32 = rotation_plan(8, torch.float32, "cpu")
    assert p32 is rotation_plan(8, torch.float32, torch.device("cpu"))
    assert all(e.dtype == torch.float32 for _, _, e, _ in p32.chunks)
    # the tables hold the quadrant m', m >= 0 of Delta^l, split by the parity of l + m' + m
    seen = set()
    for l0, l1, ev, od in rotation_plan(20).chunks:
        for l in range(l0, l1):
            q = delta_block(20, l)[l:, l:].numpy()
            k = np.arange(l + 1)
            even = (l + k[:, None] + k[None, :]) % 2 == 0
            np.testing.assert_allclose(ev[l - l0, : l + 1, : l + 1].numpy(), np.where(even, q, 0), atol=1e-15)
            np.testing.assert_allclose(od[l - l0, : l + 1, : l + 1].numpy(), np.where(even, 0, q), atol=1e-15)
            assert not ev[l - l0, l + 1 :].any() and not od[l - l0, :, l + 1 :].any()
            seen.add(l)
    assert seen == set(range(20))


@pytest.mark.parametrize("b", [16, 128])
def test_group_laws(b):
    R1, R2 = random_rotations(2, seed=b)
    D1, D2, D12 = wigner_D(b, R1), wigner_D(b, R2), wigner_D(b, R1 @ R2)
    assert float((D12 - D1 @ D2).abs().max()) <= 1e-12  # homomorphism, all degrees at once
    eye = torch.eye(2 * b - 1, dtype=torch.complex128)
    mask = torch.stack([torch.diag(torch.tensor([1.0 if abs(m) <= l else 0.0 for m in range(-b + 1, b)]))
                        for l in range(b)]).to(torch.complex128)
    assert float((D1.conj().transpose(-1, -2) @ D1 - mask).abs().max()) <= 1e-12  # unitary
    assert float((wigner_D(b, torch.eye(3, dtype=torch.float64)) - mask).abs().max()) <= 1e-12
    assert eye.shape[0] == D1.shape[-1]


@pytest.mark.slow
def test_group_laws_b512_on_selected_degrees():
    # the recurrence at full size on the Delta table: Delta^l is orthogonal and squares to the
    # parity matrix d^l(pi) (d(pi/2)^2 = d(pi): the homomorphism at beta = pi/2 + pi/2)
    b = 512
    for l in (1, 100, 255, 400, 511):
        dl = delta_block(b, l)
        assert float((dl.T @ dl - torch.eye(2 * l + 1, dtype=torch.float64)).abs().max()) <= 1e-12
        par = torch.fliplr(torch.diag(torch.tensor([(-1.0) ** (l - m) for m in range(-l, l + 1)])))
        assert float((dl @ dl - par).abs().max()) <= 1e-12
    # and the whole rotation at b = 512: R then R^-1, composition, per-degree norms
    c = random_coefficients((1,), b, seed=9)
    R = random_rotations(2, seed=9)
    rc = rotate_coefficients(c, R[0])
    assert float((rotate_coefficients(rc, R[0].T) - c).abs().max() / c.abs().max()) <= 1e-12
    assert float((degree_norms(rc) - degree_norms(c)).abs().max() / degree_norms(c).max()) <= 1e-12
    two = rotate_coefficients(rotate_coefficients(c, R[1]), R[0])
    assert float((two - rotate_coefficients(c, R[0] @ R[1])).abs().max() / c.abs().max()) <= 1e-12


# --------------------------------------------------------------------------- rotating signals
@pytest.mark.parametrize("kind", ["dh", "soft", "gl", "cc"])
@pytest.mark.parametrize("b", [4, 16, 32])
def test_rotate_matches_pointwise_evaluation_with_scipy(kind, b):
    # f(R^-1 p) evaluated with sph_harm_y from the original coefficients: pins direction and Euler
    g = harness.grid(kind, b)
    c = random_coefficients((2,), b, seed=b)
    R = random_rotations(3, seed=b)
    got = rotate(harness.isft(c, kind)[:, None], R[None], kind)  # [2, 3, nlat, nlon]
    pts = g.points()
    for j in range(3):
        q = pts @ R[j].numpy()  # rows: R^T p = R^-1 p
        th = np.arccos(np.clip(q[..., 2], -1, 1))
        ph = np.arctan2(q[..., 1], q[..., 0])
        ref = evaluate(c.numpy(), th, ph)
        err = np.abs(got[:, j].numpy() - ref).max() / np.abs(ref).max()
        assert err <= 1e-12


@pytest.mark.parametrize("b", [16, 128])
def test_rotation_round_trip_and_norms(b):
    c = random_coefficients((3,), b, seed=1)
    R = random_rotations(3, seed=2)
    rc = rotate_coefficients(c, R)
    back = rotate_coefficients(rc, R.transpose(-1, -2))
    assert float((back - c).abs().max() / c.abs().max()) <= 1e-12
    assert float((degree_norms(rc) - degree_norms(c)).abs().max() / degree_norms(c).max()) <= 1e-12
    composed = rotate_coefficients(rotate_coefficients(c, R[1]), R[0])
    assert float((composed - rotate_coefficients(c, R[0] @ R[1])).abs().max() / c.abs().max()) <= 1e-12
    ident = rotate_coefficients(c, torch.eye(3, dtype=torch.float64))
    assert float((ident - c).abs().max()) <= 1e-12


def test_rotate_coefficients_broadcasts_and_float32():
    c = random_coefficients((4,), 8, seed=0)
    R = random_rotations(5, seed=0)
    out = rotate_coefficients(c[:, None], R[None])
    assert out.shape == (4, 5, 8, 8)
    np.testing.assert_allclose(out[2, 3].numpy(), rotate_coefficients(c[2], R[3]).numpy(), atol=1e-13)
    out32 = rotate_coefficients(c.to(torch.complex64), R[0].float())
    assert out32.dtype == torch.complex64
    assert float((out32 - out[:, 0]).abs().max() / c.abs().max()) <= 1e-5


@pytest.mark.parametrize("kind", ["dh", "soft", "gl", "cc"])
def test_interpolated_rotation_converges_at_second_order(kind):
    # bilinear resampling of a fixed smooth (degree < 4) signal: the error against the exact
    # rotation falls ~16x when the grid is 4x finer (second order), poles included
    R = random_rotations(1, seed=5)[0]
    errs = []
    for b in (16, 64):
        c = harness.resize_coefficients(random_coefficients((), 4, seed=3), b)
        x = harness.isft(c, kind)
        exact, approx = rotate(x, R, kind), rotate(x, R, kind, method="interpolate")
        errs.append(float((approx - exact).abs().max() / exact.abs().max()))
    assert errs[0] < 0.05
    assert errs[1] < errs[0] / 12


class TestBadInput:
    def test_not_a_rotation(self):
        c = random_coefficients((), 4)
        with pytest.raises(ValueError, match=r"R: not a rotation: .*det R - 1"):
            rotate_coefficients(c, torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)))
        with pytest.raises(ValueError, match="R: not a rotation"):
            rotate_coefficients(c, 1.01 * torch.eye(3, dtype=torch.float64))

    def test_shapes(self):
        c = random_coefficients((3,), 4)
        with pytest.raises(ValueError, match=r"R: expected shape \[..., 3, 3\], got shape \(3, 4\)"):
            rotate_coefficients(c, torch.zeros(3, 4, dtype=torch.float64))
        with pytest.raises(ValueError, match=r"batch dims \(3,\) and \(2,\) do not broadcast"):
            rotate_coefficients(c, random_rotations(2, seed=0))
        with pytest.raises(ValueError, match="valid methods"):
            rotate(harness.isft(c), random_rotations(3, seed=0), method="nearest")
        with pytest.raises(TypeError, match="R: expected a torch.Tensor"):
            rotate_coefficients(c, np.eye(3))
        with pytest.raises(ValueError, match=r"n: expected an integer >= 0, got -1"):
            random_rotations(-1)

    def test_samplers_refuse_what_they_cannot_honour(self):
        with pytest.raises(ValueError, match=r"dtype: expected torch.float32 or torch.float64, got torch.int64"):
            random_rotations(2, dtype=torch.int64)  # was: zero matrices
        with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 9223372036854775807\], got 1.7 \(float\)"):
            random_rotations(2, seed=1.7)  # was: seed 1
        with pytest.raises(ValueError, match=r"dtype: expected torch.float32 or torch.float64, got torch.bool"):
            harness.random_signals(2, 1, 8, dtype=torch.bool)
        with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 9223372036854775807\], got True"):
            harness.random_signals(2, 1, 8, seed=True)
        assert random_rotations(0).shape == (0, 3, 3)


def test_empty_batches_and_views():
    R = random_rotations(1, seed=0)[0]
    assert rotate_coefficients(torch.zeros(0, 5, 5, dtype=torch.complex128), R).shape == (0, 5, 5)
    for method in ("exact", "interpolate"):
        assert rotate(torch.zeros(0, 10, 10, dtype=torch.float64), R, method=method).shape == (0, 10, 10)
    c = random_coefficients((2,), 6)
    # a conjugate view is the conjugate signal's coefficients, rotated as such
    np.testing.assert_allclose(rotate_coefficients(c.conj(), R).numpy(), rotate_coefficients(c.conj().resolve_conj(), R).numpy())


def test_wigner_d_rejects_beta_outside_0_pi():
    with pytest.raises(ValueError, match=r"beta: expected angles in \[0, pi\]"):
        wigner_d(4, torch.tensor([0.3, -0.5]))


def test_explicit_wigner_matrices_too_large_for_the_machine_are_refused():
    from harness.util.memory import TooLarge

    with pytest.raises(TooLarge, match=r"explicit Wigner D at bandwidth 4096 needs about [0-9.,]+ GiB"):
        wigner_D(4096, random_rotations(1, seed=0))


# --------------------------------------------------------------------------- nothing silently wrong (issue 20)
class TestNothingSilentlyWrong:
    def test_quaternions_without_a_rotation_are_refused(self):
        with pytest.raises(ValueError, match=r"q: 1 quaternion\(s\) are zero or not finite"):
            quaternion_to_matrix(torch.zeros(4, dtype=torch.float64))  # was: NaN
        with pytest.raises(ValueError, match=r"q: expected shape \[\.\.\., 4\] \(x, y, z, w\), got shape \(3,\)"):
            quaternion_to_matrix(torch.ones(3, dtype=torch.float64))
        with pytest.raises(TypeError, match=r"q: expected float32 or float64 quaternions, got dtype torch.int64"):
            quaternion_to_matrix(torch.ones(4, dtype=torch.int64))

    def test_seed_and_generator(self):
        g = torch.Generator().manual_seed(0)
        with pytest.raises(ValueError, match=r"seed, generator: give one of them .*got both \(seed=1\)"):
            random_rotations(2, seed=1, generator=g)  # was: the seed ignored
        with pytest.raises(TypeError, match=r"generator: expected a torch.Generator, got str"):
            random_rotations(2, generator="abc")
        with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 9223372036854775807\], got 9223372036854775808"):
            random_rotations(2, seed=2**63)  # was: "Overflow when unpacking long long"
        with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 9223372036854775807\]"):
            harness.random_signals(2, 1, 8, seed=2**63)

    def test_exact_rotation_of_a_signal_that_is_not_band_limited_is_refused_or_projected(self):
        x = torch.randn(2, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        R = random_rotations(2, seed=1)
        with pytest.raises(ValueError, match=r"x: not band-limited on the 'dh' grid: .* pass project=True"):
            rotate(x, R)  # was: silently the rotation of its projection
        p = harness.isft(harness.sft(x))
        np.testing.assert_allclose(rotate(x, R, project=True).numpy(), rotate(p, R).numpy(), atol=1e-13)

    def test_rotations_are_differentiable(self):
        R = random_rotations(2, seed=2)
        c = random_coefficients((2,), 5, seed=4).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda t: rotate_coefficients(t, R), (c,))
        c1 = random_coefficients((1, 3), 4, seed=5).requires_grad_(True)  # broadcast: summed over the rotations
        assert torch.autograd.gradcheck(lambda t: rotate_coefficients(t, R[:, None]), (c1,))
        x = harness.isft(random_coefficients((2,), 5, seed=6)).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda t: rotate(t, R), (x,))
        # an equivariance penalty trains: the gradient of ||rotate(f) - f||^2 is finite and nonzero
        loss = (rotate(x, R) - x).square().sum()
        loss.backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
        with pytest.raises(ValueError, match=r"R: rotations that require grad are not supported"):
            rotate_coefficients(c.detach(), R.clone().requires_grad_(True))

    def test_euler_angles_are_validated(self):
        with pytest.raises(TypeError, match=r"alpha: expected a number or a real tensor of angles, got str"):
            euler_zyz_to_matrix("a", 0.0, 0.0)
        with pytest.raises(ValueError, match=r"alpha, beta, gamma: shapes \[\(2,\), \(3,\), \(\)\] do not broadcast"):
            euler_zyz_to_matrix(torch.zeros(2), torch.zeros(3), 0.0)
