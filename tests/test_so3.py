"""Signals on SO(3): the Wigner transform, its rotation and the correlations of Cohen et al.,
against independent oracles (Wigner's explicit sum for D, scipy's rotations and spherical
harmonics, brute-force quadrature)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from scipy.special import roots_legendre, sph_harm_y

import harness
from harness.nn.so3_layers import (S2ToSO3Conv, SO3Conv, SO3Descriptor, SO3Integrate, SO3Pointwise, SO3Pool,
                                   s2_near_identity_grid, s2_so3_correlation, so3_near_identity_grid,
                                   so3_so3_correlation)
from harness.sphere.so3_transforms import (full_m, so3_degree_norms, so3_fft, so3_grid_angles, so3_ifft,
                                           so3_lie_action, so3_resize_coefficients)


# --------------------------------------------------------------------------- the oracle
def wigner_d_sum(l: int, m: int, n: int, beta: np.ndarray) -> np.ndarray:
    """d^l_{mn}(beta) by Wigner's explicit sum (Wikipedia's convention)."""
    f = math.factorial
    pre = math.sqrt(f(l + m) * f(l - m) * f(l + n) * f(l - n))
    c, s = np.cos(beta / 2), np.sin(beta / 2)
    out = np.zeros_like(beta, dtype=np.float64)
    for k in range(max(0, n - m), min(l + n, l - m) + 1):
        out += ((-1) ** (m - n + k) / (f(l + n - k) * f(k) * f(m - n + k) * f(l - m - k))
                * c ** (2 * l + n - m - 2 * k) * s ** (m - n + 2 * k))
    return pre * out


def D_sum(l: int, m: int, n: int, alpha, beta, gamma) -> np.ndarray:
    return np.exp(-1j * m * alpha) * wigner_d_sum(l, m, n, beta) * np.exp(-1j * n * gamma)


def random_full(b: int, seed: int) -> np.ndarray:
    """``[b, 2b-1, 2b-1]`` coefficients (all m, n) of a random real signal of bandwidth b."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((b, 2 * b - 1, 2 * b - 1)) + 1j * rng.standard_normal((b, 2 * b - 1, 2 * b - 1))
    k = np.arange(-b + 1, b)
    l = np.arange(b)[:, None, None]
    c *= (np.abs(k)[None, :, None] <= l) & (np.abs(k)[None, None, :] <= l)
    sign = (-1.0) ** (k[:, None] - k[None, :])
    return (c + sign * c[:, ::-1, ::-1].conj()) / 2  # conj f_{mn} = (-1)^(m-n) f_{-m,-n}


def evaluate(c: np.ndarray, alpha, beta, gamma) -> np.ndarray:
    """``f(g) = sum f^l_{mn} conj(D^l_{mn}(g))`` pointwise by the explicit sum."""
    b = c.shape[0]
    out = np.zeros(np.broadcast(alpha, beta, gamma).shape, dtype=np.complex128)
    for l in range(b):
        for m in range(-l, l + 1):
            for n in range(-l, l + 1):
                out += c[l, m + b - 1, n + b - 1] * D_sum(l, m, n, alpha, beta, gamma).conj()
    return out


def soft_points(b: int):
    """(alpha, beta, gamma) arrays shaped like the SOFT grid [beta, alpha, gamma]."""
    be, al, ga = so3_grid_angles(b)
    B, A, G = np.meshgrid(be, al, ga, indexing="ij")
    return A, B, G


# --------------------------------------------------------------------------- the transform
@pytest.mark.parametrize("b", [1, 2, 3, 5])
def test_transform_matches_the_explicit_sum(b):
    c = random_full(b, seed=b)
    A, B, G = soft_points(b)
    x = evaluate(c, A, B, G)
    assert np.abs(x.imag).max() < 1e-12  # the oracle's signal is real
    xt = torch.from_numpy(x.real.copy())
    np.testing.assert_allclose(so3_fft(xt).numpy(), c[:, b - 1 :, :], atol=1e-12)
    np.testing.assert_allclose(so3_ifft(torch.from_numpy(c[:, b - 1 :, :].copy())).numpy(), x.real, atol=1e-12)


@pytest.mark.parametrize("B, L", [(3, 2), (4, 1), (5, 3)])
def test_fewer_degrees_and_finer_grids_match_the_explicit_sum(B, L):
    """so3_fft(x, degrees=L) on the grid of bandwidth B: the degrees < L of a signal of bandwidth
    b_f exactly while b_f + L <= 2B + 1 (evaluated pointwise by Wigner's explicit sum), not
    beyond; so3_ifft(c, grid_bandwidth=B) evaluates degrees < L on the finer grid."""
    A, Bt, G = soft_points(B)
    bf = 2 * B + 1 - L
    for n, exact in ((bf, True), (bf + 1, False)):
        c = random_full(n, seed=n)
        x = torch.from_numpy(evaluate(c, A, Bt, G).real.copy())
        err = np.abs(so3_fft(x, degrees=L).numpy() - c[:L, n - 1 : n - 1 + L, n - L : n + L - 1]).max()
        assert (err < 1e-12) == exact, (n, err)
    c = random_full(L, seed=L)
    np.testing.assert_allclose(so3_ifft(torch.from_numpy(c[:, L - 1 :, :].copy()), grid_bandwidth=B).numpy(),
                               evaluate(c, A, Bt, G).real, atol=1e-12)


@pytest.mark.parametrize("b", [8, 20])  # one chunk, several chunks
def test_fewer_degrees_equal_the_full_transform_truncated(b):
    gen = torch.Generator().manual_seed(b)
    x = torch.randn(2, 2 * b, 2 * b, 2 * b, dtype=torch.float64, generator=gen)
    for L in (1, b // 2, b - 1):
        np.testing.assert_allclose(so3_fft(x, degrees=L).numpy(), so3_resize_coefficients(so3_fft(x), L).numpy(),
                                   atol=1e-13)
        c = so3_fft(x, degrees=L)
        np.testing.assert_allclose(so3_ifft(c, grid_bandwidth=b).numpy(),
                                   so3_ifft(so3_resize_coefficients(c, b)).numpy(), atol=1e-12)
    with pytest.raises(ValueError, match=r"degrees: expected at most the grid's bandwidth 8 .*got 9"):
        so3_fft(x[..., :16, :16, :16], degrees=9)
    with pytest.raises(ValueError, match=r"grid_bandwidth: expected at least the coefficients' bandwidth 3, got 2"):
        so3_ifft(so3_fft(x, degrees=3), grid_bandwidth=2)


@pytest.mark.parametrize("b", [2, 4])
def test_out_of_band_D_projects_to_zero(b):
    A, B, G = soft_points(b)
    for m, n in [(0, 0), (b, -b), (1, b), (-b, 2)]:
        parts = [torch.from_numpy(part(D_sum(b, m, n, A, B, G)).copy()) for part in (np.real, np.imag)]
        parts = [x for x in parts if x.abs().max() > 0.1]  # Im D^l_00 is zero
        assert parts
        for x in parts:
            assert so3_fft(x).abs().max() < 1e-12, (m, n)


@pytest.mark.parametrize("b", [8, 32, 64])
def test_round_trip(b):
    gen = torch.Generator().manual_seed(b)
    x = so3_ifft(so3_fft(torch.randn(2, 2 * b, 2 * b, 2 * b, dtype=torch.float64, generator=gen)))  # band-limited
    rel = lambda a, r: float((a - r).norm() / r.norm())  # noqa: E731
    assert rel(so3_ifft(so3_fft(x)), x) < 1e-12
    c = so3_fft(x)
    assert rel(so3_fft(so3_ifft(c)), c) < 1e-12
    assert rel(so3_ifft(so3_fft(x.float())).double(), x) < 1e-5


def test_lifted_sphere_function():
    """F(g e_z) = F(beta, alpha) has f^l_{m0} = sqrt((2l+1)/4pi) F^m_l and nothing at n != 0."""
    b = 6
    F = harness.S2Grid("soft", b).random(1, seed=3)[0]
    x = F[:, :, None].expand(2 * b, 2 * b, 2 * b).contiguous()
    c = so3_fft(x)
    l = torch.arange(b, dtype=torch.float64)[:, None]
    np.testing.assert_allclose(c[:, :, b - 1].numpy(), (torch.sqrt((2 * l + 1) / (4 * math.pi)) * harness.sft(F, "soft")).numpy(),
                               atol=1e-13)
    rest = torch.cat([c[..., : b - 1], c[..., b:]], dim=-1)
    assert rest.abs().max() < 1e-13


def test_quadrature_integrates_products_exactly():
    """Parseval: the grid's quadrature of f^2 equals sum_l 8 pi^2/(2l+1) ||f^l||^2."""
    b = 5
    c = random_full(b, 7)
    A, B, G = soft_points(b)
    x = evaluate(c, A, B, G).real
    # brute force on a finer Gauss-Legendre x uniform grid (exact for the degree-2(b-1) product)
    nodes, w = roots_legendre(2 * b)
    t = np.arange(2 * b) * 2 * np.pi / (2 * b)
    A2, B2, G2 = np.meshgrid(t, np.arccos(nodes), t, indexing="ij")
    f2 = evaluate(c, A2, B2, G2).real ** 2
    brute = (2 * np.pi / (2 * b)) ** 2 * (f2 * w[None, :, None]).sum()
    l = np.arange(b)
    n2 = (so3_degree_norms(torch.from_numpy(c[:, b - 1 :, :].copy())).numpy() ** 2 * 8 * np.pi ** 2 / (2 * l + 1)).sum()
    assert abs(n2 - brute) < 1e-10 * brute
    assert abs(harness.SO3Grid(b).norm2(so3_fft(torch.from_numpy(x))[None])[0].item() - brute) < 1e-10 * brute


def test_gradients_and_jvp():
    b = 3
    x = torch.randn(2, 2 * b, 2 * b, 2 * b, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.view_as_real(so3_fft(t)), (x,))
    c = so3_fft(x.detach()).requires_grad_()
    assert torch.autograd.gradcheck(so3_ifft, (c,))
    v = torch.randn_like(x)
    _, t = torch.func.jvp(so3_fft, (x.detach(),), (v,))
    np.testing.assert_allclose(t.numpy(), so3_fft(v).numpy(), atol=1e-14)  # linear: jvp = the map itself
    # fewer degrees than the grid, and a finer grid than the degrees: the same adjoint pair
    assert torch.autograd.gradcheck(lambda t: torch.view_as_real(so3_fft(t, degrees=2)), (x,))
    assert torch.autograd.gradcheck(lambda t: so3_ifft(t, grid_bandwidth=4), (c,))


def test_input_checks():
    with pytest.raises(ValueError, match="SOFT grid"):
        so3_fft(torch.zeros(2, 4, 4, 6))
    with pytest.raises(ValueError, match="dtype"):
        so3_fft(torch.zeros(4, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\[\.\.\., b, b, 2b-1\]"):
        so3_ifft(torch.zeros(3, 3, 4, dtype=torch.complex128))


# --------------------------------------------------------------------------- the rotation
def test_rotation_is_evaluation_at_R_inverse_g():
    b = 4
    c = random_full(b, 11)
    A, B, G = soft_points(b)
    x = torch.from_numpy(evaluate(c, A, B, G).real.copy())
    R = harness.random_rotations(2, seed=5)
    field = harness.SO3Grid(b)
    y = field.rotate(x[None].expand(2, -1, -1, -1), R)
    for p in range(2):
        g = Rotation.from_euler("ZYZ", np.stack([A.ravel(), B.ravel(), G.ravel()], 1))
        h = Rotation.from_matrix(R[p].numpy()).inv() * g
        a, be, ga = h.as_euler("ZYZ").T
        ref = evaluate(c, a, be, ga).real.reshape(x.shape)
        np.testing.assert_allclose(y[p].numpy(), ref, atol=1e-11)


def test_lie_action_is_the_derivative_of_rotation():
    b = 4
    c = torch.from_numpy(random_full(b, 2)[:, b - 1 :, :].copy())[None]
    omega = np.array([0.3, -0.5, 0.8])
    t = 1e-2
    f = harness.SO3Grid(b)

    def rot(s: float) -> torch.Tensor:
        return f.rotate_coefficients(c, torch.from_numpy(Rotation.from_rotvec(s * omega).as_matrix())[None])

    fd = (8 * (rot(t) - rot(-t)) - (rot(2 * t) - rot(-2 * t))) / (12 * t)  # fourth order
    np.testing.assert_allclose(so3_lie_action(c, omega).numpy(), fd.numpy(), atol=1e-7)


def test_full_m_is_the_real_symmetry():
    b = 4
    c = random_full(b, 9)
    np.testing.assert_allclose(full_m(torch.from_numpy(c[:, b - 1 :, :].copy())).numpy(), c, atol=0)


def test_grid_aligned_z_rotation_permutes_columns():
    b = 5
    x = harness.SO3Grid(b).random(1, seed=4)
    k = 3
    phi = 2 * math.pi * k / (2 * b)
    R = torch.from_numpy(Rotation.from_rotvec([0, 0, phi]).as_matrix())[None]
    y = harness.SO3Grid(b).rotate(x, R)
    np.testing.assert_allclose(y.numpy(), torch.roll(x, k, dims=-2).numpy(), atol=1e-12)


# --------------------------------------------------------------------------- correlations
def _sph_eval(coeffs: np.ndarray, theta, phi) -> np.ndarray:
    """A real S^2 signal from m >= 0 coefficients [b, b], by scipy's harmonics."""
    b = coeffs.shape[0]
    out = np.zeros(np.broadcast(theta, phi).shape)
    for l in range(b):
        out += (coeffs[l, 0] * sph_harm_y(l, 0, theta, phi)).real
        for m in range(1, l + 1):
            out += 2 * (coeffs[l, m] * sph_harm_y(l, m, theta, phi)).real
    return out


def test_s2_correlation_is_a_brute_force_integral():
    b = 3
    f = harness.S2Coeffs(b).random(1, seed=1)[0].numpy()
    psi = harness.S2Coeffs(b).random(1, seed=2)[0].numpy()
    # psi^l_n for all n: psi^{-n} = (-1)^n conj(psi^n)
    k = np.arange(-b + 1, b)
    psi_full = np.where(k[None, :] >= 0, psi[:, np.abs(k)], (-1.0) ** np.abs(k) * psi[:, np.abs(k)].conj())
    psi_full *= np.abs(k)[None, :] <= np.arange(b)[:, None]
    out = s2_so3_correlation(torch.from_numpy(f)[None, None], torch.from_numpy(psi_full.conj())[None, None])
    x = so3_ifft(out)[0, 0].numpy()
    nodes, w = roots_legendre(3 * b)
    th = np.arccos(nodes)
    ph = np.arange(3 * b) * 2 * np.pi / (3 * b)
    T, P = np.meshgrid(th, ph, indexing="ij")
    pts = np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1).reshape(-1, 3)
    fx = _sph_eval(f, T, P).ravel()
    W = (w[:, None] * np.full(P.shape, 2 * np.pi / (3 * b))).ravel()
    A, B, G = soft_points(b)
    rng = np.random.default_rng(0)
    for idx in rng.choice(A.size, 6, replace=False):
        Rm = Rotation.from_euler("ZYZ", [A.flat[idx], B.flat[idx], G.flat[idx]]).as_matrix()
        q = pts @ Rm  # R^-1 x as rows
        brute = (W * _sph_eval(psi, np.arccos(np.clip(q[:, 2], -1, 1)), np.arctan2(q[:, 1], q[:, 0])) * fx).sum()
        assert abs(x.flat[idx] - brute) < 1e-10


def test_so3_correlation_is_a_brute_force_integral():
    b = 3
    Fc, Pc = random_full(b, 21), random_full(b, 22)
    l = np.arange(b)[:, None, None]
    kern = (8 * np.pi ** 2 / (2 * l + 1)) * Pc.conj()
    out = so3_so3_correlation(torch.from_numpy(Fc[:, b - 1 :, :].copy())[None, None], torch.from_numpy(kern)[None, None])
    x = so3_ifft(out)[0, 0].numpy()
    nodes, w = roots_legendre(2 * b)
    t = np.arange(2 * b) * 2 * np.pi / (2 * b)
    A2, B2, G2 = np.meshgrid(t, np.arccos(nodes), t, indexing="ij")
    W = (2 * np.pi / (2 * b)) ** 2 * np.broadcast_to(w[None, :, None], A2.shape).ravel()
    hs = Rotation.from_euler("ZYZ", np.stack([A2.ravel(), B2.ravel(), G2.ravel()], 1))
    fh = evaluate(Fc, A2, B2, G2).real.ravel()
    A, B, G = soft_points(b)
    rng = np.random.default_rng(1)
    for idx in rng.choice(A.size, 4, replace=False):
        Rinv = Rotation.from_euler("ZYZ", [A.flat[idx], B.flat[idx], G.flat[idx]]).inv()
        a, be, ga = (Rinv * hs).as_euler("ZYZ").T
        brute = (W * evaluate(Pc, a, be, ga).real * fh).sum()
        assert abs(x.flat[idx] - brute) < 1e-10


def test_s2_to_so3_conv_is_a_sum_over_its_kernel_points():
    """psi = sum_k w_k delta_{x_k}: for f of bandwidth <= b_out the output is sum_k w_k f(R x_k)."""
    b_in, b_out = 6, 4
    layer = S2ToSO3Conv(1, 1, b_in, b_out, kind="dh", bias=False).double()
    c = harness.S2Coeffs(b_out).random(1, seed=5)[0]
    x = harness.isft(harness.resize_coefficients(c, b_in), "dh")[None, None]
    y = layer(x)[0, 0].detach().numpy()
    pts = s2_near_identity_grid()
    xk = np.stack([np.sin(pts[:, 0]) * np.cos(pts[:, 1]), np.sin(pts[:, 0]) * np.sin(pts[:, 1]), np.cos(pts[:, 0])], 1)
    w = layer.weight.detach()[0, 0].numpy()
    A, B, G = soft_points(b_out)
    Rs = Rotation.from_euler("ZYZ", np.stack([A.ravel(), B.ravel(), G.ravel()], 1)).as_matrix()  # [N, 3, 3]
    q = np.einsum("nij,kj->nki", Rs, xk)
    fv = _sph_eval(c.numpy(), np.arccos(np.clip(q[..., 2], -1, 1)), np.arctan2(q[..., 1], q[..., 0]))
    np.testing.assert_allclose(y.ravel(), fv @ w, atol=1e-10)


def test_so3_conv_is_a_sum_over_its_kernel_points():
    b_in, b_out = 4, 3
    layer = SO3Conv(1, 1, b_in, b_out, bias=False).double()
    c = random_full(b_out, 31)
    cin = so3_resize_coefficients(torch.from_numpy(c[:, b_out - 1 :, :].copy()), b_in)
    y = layer(so3_ifft(cin)[None, None])[0, 0].detach().numpy()
    ang = so3_near_identity_grid()
    gk = Rotation.from_euler("ZYZ", ang)
    w = layer.weight.detach()[0, 0].numpy()
    A, B, G = soft_points(b_out)
    rng = np.random.default_rng(2)
    for idx in rng.choice(A.size, 5, replace=False):
        R = Rotation.from_euler("ZYZ", [A.flat[idx], B.flat[idx], G.flat[idx]])
        a, be, ga = (R * gk).as_euler("ZYZ").T
        assert abs(y.flat[idx] - evaluate(c, a, be, ga).real @ w) < 1e-10


def test_invariants_and_pool():
    b = 4
    field = harness.SO3Grid(b)
    x = field.random(3, channels=2, seed=1)
    c = so3_fft(x)
    np.testing.assert_allclose(SO3Integrate()(x).numpy(), c[..., 0, 0, b - 1].real.numpy(), atol=1e-14)
    np.testing.assert_allclose(SO3Integrate()(torch.full((1, 1, 8, 8, 8), 2.5, dtype=torch.float64)).numpy(), 2.5,
                               atol=1e-14)
    R = harness.random_rotations(3, seed=2)
    d0, d1 = SO3Descriptor()(x), SO3Descriptor()(field.rotate(x, R))
    np.testing.assert_allclose(d1.numpy(), d0.numpy(), atol=1e-12)
    p = SO3Pool(2)(x)
    np.testing.assert_allclose(so3_fft(p).numpy(), so3_resize_coefficients(c, 2).numpy(), atol=1e-13)


def test_pointwise_oversampling_reduces_aliasing():
    b = 4
    field = harness.SO3Grid(b)
    x = field.random(4, channels=1, seed=3)
    R = harness.random_rotations(4, seed=1)
    errs = []
    for s in (1.0, 2.0):
        layer = SO3Pointwise("softplus", s)
        a, r = layer(field.rotate(x, R)), field.rotate(layer(x), R) if s > 1 else None
        if s == 1:  # s = 1 output is off-band: compare the band-limited parts
            a, r = field.project(a), field.rotate(field.project(layer(x)), R)
        errs.append(float((a - r).norm() / r.norm()))
    assert errs[1] < errs[0] / 10


def test_layer_input_checks():
    with pytest.raises(ValueError, match="expected input"):
        SO3Conv(2, 3, 4, 4)(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="bandwidth 4"):
        SO3Conv(2, 3, 4, 4)(torch.zeros(1, 2, 6, 6, 6))
    with pytest.raises(ValueError, match="n_alpha"):
        SO3Conv(2, 3, 4, 4, n_alpha=0)
    with pytest.raises(ValueError, match="expected input"):
        S2ToSO3Conv(1, 3, 4, 4)(torch.zeros(1, 2, 8, 8))


# --------------------------------------------------------------------------- measuring SO(3) models
def _stack(bandwidth: int, depth: int, channels: int, activation: str) -> torch.nn.Module:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "cohen2018.py"
    spec = importlib.util.spec_from_file_location("cohen2018_factory", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.stack(bandwidth, depth, channels, activation)


def _cohen_cfg(rotations: str, activation: str) -> dict:
    return {"name": "t", "axes": {"bandwidth": [4], "depth": [2], "channels": [2], "activation": [activation],
                                  "kind": ["soft"], "rotations": [rotations]},
            "run": {"n_inputs": 3, "n_rotations": 3, "paired": True, "modes": ["cumulative"], "timing_repeats": 1},
            "model": {"input": {"field": "S2Grid", "kind": "soft"}, "in_channels": 2}}


def test_cohen_stack_is_exact_on_grid_aligned_rotations_and_aliases_on_haar():
    from harness.runs.sweeps import cells, load_config, run_cell

    grid = run_cell(cells(load_config(_cohen_cfg("grid_z", "relu"), model_factory=_stack))[0].params, _stack)
    assert len(grid) == 3 * 4 and (grid["rotation"] == grid["input"]).all()  # paired: 3 pairs x 4 layers
    assert set(grid["field"]) >= {"SO3Grid(4)"}
    assert grid["rel_error"].max() < 1e-12  # permutations: ReLU included, nothing but rounding
    haar = run_cell(cells(load_config(_cohen_cfg("haar", "relu"), model_factory=_stack))[0].params, _stack)
    by = haar.groupby("layer_index")["rel_error"].median()
    assert by[0] < 1e-12  # the first correlation: exact
    assert by[1] > 1e-2  # its ReLU aliases


def test_paired_config_checks_and_unstored_defaults():
    from harness.runs.sweeps import load_config
    from harness.util.schema import ConfigError

    bad = _cohen_cfg("haar", "relu")
    bad["run"]["n_rotations"] = 4
    with pytest.raises(ConfigError, match="n_inputs and n_rotations must be equal"):
        load_config(bad, model_factory=_stack)
    from pathlib import Path

    d = load_config(Path(__file__).resolve().parents[1] / "experiments" / "default.toml")
    # defaults are not stored, so results written before these keys existed stay resumable
    assert "rotations" not in d["axes"] and "paired" not in d["run"]


def test_so3_shaped_output_is_never_guessed_as_a_sphere_grid():
    b = 4

    class Lift(torch.nn.Module):  # a third-party layer: S^2 grid -> [B, C, 2b, 2b, 2b]
        def forward(self, x):
            return x[:, :, :, :, None].expand(-1, -1, -1, -1, 2 * b).contiguous()

    x = harness.S2Grid("soft", b).random(2, channels=1, seed=0)
    R = harness.random_rotations(2, seed=0)
    with pytest.raises(ValueError, match="declare"):
        harness.equivariance_error(torch.nn.Sequential(Lift()), x, R, input=harness.S2Grid("soft", b))
    # declared, it is measured as what it is: a lifted function is exactly equivariant
    df = harness.equivariance_error(torch.nn.Sequential(Lift()), x, R, input=harness.S2Grid("soft", b),
                                    layers={"0": harness.SO3Grid(b)})
    assert df["rel_error"].max() < 1e-12


def test_cohen_mnist_preset_sizes_and_invariance():
    """The paper's network: bandwidths 30 -> 10 -> 6, channels 20 and 40, 24 + 72 kernel points,
    58,550 parameters plus the 80 of the batchnorm; its output is invariant to rounding in float64
    up to the ReLUs' aliasing, and its first correlation is exactly equivariant."""
    m = harness.build_model("cohen_mnist")
    assert sum(p.numel() for p in m.parameters()) == 1 * 20 * 24 + 20 + 20 * 40 * 72 + 40 + 2 * 40 + 40 * 10 + 10
    assert [type(L).__name__ for L in m.layers] == ["S2ToSO3Conv", "SO3Pointwise", "SO3Conv", "SO3Pointwise",
                                                   "SO3Integrate", "BatchNorm1d", "Linear"]
    x = harness.S2Grid("soft", 30).random(2, channels=1, seed=0)
    df = harness.equivariance_error(m.double(), x, harness.random_rotations(2, seed=1))
    by = df.groupby("layer", sort=False)["rel_error"].max()
    assert by["s2_so3_conv1"] < 1e-12
    assert by["pointwise1"] > 1e-2  # the sampled ReLU aliases


def test_empty_batches():
    assert so3_fft(torch.zeros(0, 4, 4, 4, dtype=torch.float64)).shape == (0, 2, 2, 3)  # was: an MKL error
    assert so3_ifft(torch.zeros(0, 2, 2, 3, dtype=torch.complex64)).shape == (0, 4, 4, 4)
