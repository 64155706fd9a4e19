"""Wigner d and D, and the exact rotation of band-limited signals in the coefficient domain.

Conventions (``docs/conventions.md``): a rotation acts on signals by ``(g.f)(p) = f(R^-1 p)``; in
the complex basis of :mod:`harness.sphere.transforms`,
``(g.f)^{m'}_l = sum_m D^l_{m'm}(R) f^m_l`` with
``D^l_{m'm} = exp(-i m' alpha) d^l_{m'm}(beta) exp(-i m gamma)``, ``d^l(beta) = exp(-i beta J_y)``
(Wikipedia's Wigner d), and the factorization used to apply it
``d^l(beta) = Z(pi/2) Delta^l Z(beta) Delta^lT Z(-pi/2)``, ``Z(t) = diag(exp(-i m t))``,
``Delta^l = d^l(pi/2)`` real and cached per bandwidth: applying D costs O(l^2) per degree, so
O(b^3) per (signal, rotation), and no D matrix is ever formed. The infinitesimal rotations
(:func:`lie_algebra_action`) act as ``-i n.J``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import gammaln

from ..util.memory import check_fits
from .grids import check_bandwidth
from .recurrence import rescale, unscale
from .so3 import _euler_zyz, check_rotation
from .transforms import _tracked, check_coefficients


def wigner_d(bandwidth: int, beta: torch.Tensor | float) -> torch.Tensor:
    """Wigner small-d for all degrees, ``[..., b, 2b-1, 2b-1]`` float64:
    ``d[..., l, m' + b - 1, m + b - 1] = d^l_{m'm}(beta)``, zero where ``max(|m|, |m'|) > l``.

    Three-term recurrence in l (Kostelec & Rockmore 2008, eq. 4.5) from the closed form at
    ``l = max(|m|, |m'|)``, with seeds in log space and running rescaling (no underflow near beta = 0
    or pi). O(b^3) per angle.
    """
    b = check_bandwidth(bandwidth)
    beta = torch.as_tensor(beta, dtype=torch.float64).cpu()
    if beta.numel() and not bool(((beta >= 0) & (beta <= math.pi)).all()):
        raise ValueError(f"beta: expected angles in [0, pi] (ZYZ), got values from {float(beta.min()):.4g}"
                         f" to {float(beta.max()):.4g}; use d(-beta) = d(beta)^T or matrix_to_euler_zyz")
    bt = beta.reshape(-1).numpy()[:, None, None]
    k = np.arange(-b + 1, b, dtype=np.float64)
    mp, m = k[:, None], k[None, :]
    l0 = np.maximum(np.abs(mp), np.abs(m))
    # the one surviving term of Wigner's sum at l = l0
    s = np.select([l0 == mp, l0 == -mp, l0 == m], [0 * m, l0 + m, l0 - mp], 0 * m)
    lf = 0.5 * (gammaln(l0 + mp + 1) + gammaln(l0 - mp + 1) + gammaln(l0 + m + 1) + gammaln(l0 - m + 1)) - (
        gammaln(l0 + m - s + 1) + gammaln(s + 1) + gammaln(mp - m + s + 1) + gammaln(l0 - mp - s + 1))
    pc, ps = 2 * l0 + m - mp - 2 * s, mp - m + 2 * s  # powers of cos(beta/2), sin(beta/2)
    sign = np.where((mp - m + s) % 2 == 0, 1.0, -1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        logc, logs = np.log(np.cos(bt / 2)), np.log(np.sin(bt / 2))
        logseed = lf + np.where(pc > 0, pc * logc, 0.0) + np.where(ps > 0, ps * logs, 0.0)
    zero = ~np.isfinite(logseed)
    logseed = np.where(zero, 0.0, logseed)
    seed = np.where(zero, 0.0, sign * np.ones_like(logseed))
    cb = np.cos(bt)
    out = np.zeros((bt.shape[0], b, 2 * b - 1, 2 * b - 1))
    d1 = np.zeros_like(seed)
    d2 = np.zeros_like(seed)
    logscale = np.zeros_like(seed)
    for l in range(b):  # table construction: vectorized over angles and (m', m)
        j = l - 1  # the recurrence goes from degree j to j + 1 = l
        with np.errstate(divide="ignore", invalid="ignore"):
            A = (j + 1) * (2 * j + 1) / np.sqrt(((j + 1) ** 2 - m * m) * ((j + 1) ** 2 - mp * mp))
            B = m * mp / (j * (j + 1.0)) if j > 0 else 0.0 * m
            C = np.sqrt((j * j - m * m) * (j * j - mp * mp)) / (j * (2 * j + 1.0)) if j > 0 else 0.0 * m
        with np.errstate(invalid="ignore"):
            rec = np.where(l0 < l, A * ((cb - B) * d1 - np.where(l0 < j, C, 0.0) * d2), 0.0)
        new = np.where(l0 == l, seed, rec)
        logscale = np.where(l0 == l, logseed, logscale)
        new, d1, logscale = rescale(new, d1, logscale)
        d2, d1 = d1, new
        out[:, l] = unscale(new, logscale)
    return torch.from_numpy(out).reshape(*beta.shape, b, 2 * b - 1, 2 * b - 1)


def _delta_quadrant(b: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(l, q_l)`` with ``q_l[m', m] = d^l_{m'm}(pi/2)`` for m', m = 0..b-1 (zero past l).

    The recurrence of :func:`wigner_d` at cos(beta) = 0 on the quadrant m', m >= 0, with seeds
    ``sqrt(binom(2l, l+k)) 2^-l`` from running products rather than exp(gammaln): a seed's
    relative error carries over to every later degree of its (m', m) sequence, and exp of a
    log near -350 is only good to ~4e-14. This keeps ``Delta^T Delta = I`` to ~5e-15 at l = 511
    (1.2e-12 with gammaln seeds). O(b^3) work, O(b^2) memory.
    """
    k = np.arange(b, dtype=np.float64)
    # C[l, k] = sqrt(binom(2l, l+k)) / 2^l for k <= l: C[l, 0]^2 = prod_{i<l} (2i+1)/(2i+2),
    # C[l, k+1] / C[l, k] = sqrt((l-k)/(l+k+1))
    c0 = np.sqrt(np.concatenate([[1.0], np.cumprod((2 * k[:-1] + 1) / (2 * k[:-1] + 2))]))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(k[None, :] < k[:, None], np.sqrt((k[:, None] - k[None, :]) / (k[:, None] + k[None, :] + 1)), 0.0)
    C = c0[:, None] * np.concatenate([np.ones((b, 1)), np.cumprod(ratio[:, :-1], axis=1)], axis=1)
    mp, m = k[:, None], k[None, :]
    l0 = np.maximum(mp, m)
    li0, mi = l0.astype(np.int64), m.astype(np.int64)
    seed = C[li0, np.minimum(mp, m).astype(np.int64)] * np.where((mp >= m) & ((li0 - mi) % 2 == 1), -1.0, 1.0)
    d1, d2 = np.zeros((b, b)), np.zeros((b, b))
    for l in range(b):  # table construction, vectorized over (m', m)
        j = l - 1.0
        if l < 2:
            rec = np.zeros((b, b))  # d^1_00(pi/2) = cos(pi/2) = 0; nothing else precedes its seed
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                A = (j + 1) * (2 * j + 1) / np.sqrt(((j + 1) ** 2 - m * m) * ((j + 1) ** 2 - mp * mp))
                Cc = np.sqrt((j * j - m * m) * (j * j - mp * mp)) / (j * (2 * j + 1))
                rec = np.where(l0 < l, A * (-(m * mp / (j * (j + 1))) * d1 - np.where(l0 < j, Cc, 0.0) * d2), 0.0)
        new = np.where(l0 == l, seed, rec)
        yield l, new
        d2, d1 = d1, new


def delta_block(bandwidth: int, l: int) -> torch.Tensor:
    """``[2l+1, 2l+1]`` float64 ``Delta^l = d^l(pi/2)`` (index m + l), from the quadrant by
    ``d_{m',-m} = (-1)^(l+m') d_{m'm}``, ``d_{-m',m} = (-1)^(l+m) d_{m'm}``, ``d_{-m',-m} = (-1)^(m'-m) d_{m'm}``."""
    for deg, q in _delta_quadrant(l + 1):
        if deg == l:
            break
    ms = np.arange(-l, l + 1)
    a = np.abs(ms)
    ap, am = a[:, None], a[None, :]
    negp, negm = (ms < 0)[:, None], (ms < 0)[None, :]
    sign = np.where(negp & negm, (-1.0) ** (ap + am),
                    np.where(negm, (-1.0) ** (l + ap), np.where(negp, (-1.0) ** (l + am), 1.0)))
    return torch.from_numpy(sign * q[ap, am])


@dataclass(frozen=True, eq=False)
class RotationPlan:
    """Cached tables to rotate coefficients of bandwidth b: per degree the quadrant m', m >= 0 of
    ``Delta^l = d^l(pi/2)``, split by the parity of l + m' + m — the even part acts on real parts,
    the odd part on imaginary parts — in degree chunks ``(l0, l1, even [l1-l0, l1, l1], odd
    [l1-l0, l1, l1])``, every degree padded with zeros to the chunk's last one."""

    bandwidth: int
    chunks: tuple[tuple[int, int, torch.Tensor, torch.Tensor], ...]

    def table_bytes(self) -> int:
        return sum(e.numel() * e.element_size() * 2 for _, _, e, _ in self.chunks)


def _chunk_bounds(b: int) -> np.ndarray:
    """Degree chunks of 8 (at most 16 chunks): every degree of a chunk is padded to its last one,
    so narrow chunks waste little work; more chunks would cost more per-call overhead."""
    n = 1 if b <= 8 else min(16, max(2, b // 8))
    return np.unique(np.round(np.linspace(0, b, n + 1)).astype(int))


@functools.lru_cache(maxsize=4)
def _rotation_plan64(b: int) -> RotationPlan:
    bounds = _chunk_bounds(b)
    check_fits(2 * 8 * sum(int(l1 - l0) * int(l1) ** 2 for l0, l1 in zip(bounds[:-1], bounds[1:])),
               f"the rotation tables at bandwidth {b}")
    tabs = [(int(l0), int(l1), np.zeros((l1 - l0, l1, l1)), np.zeros((l1 - l0, l1, l1)))
            for l0, l1 in zip(bounds[:-1], bounds[1:])]
    k = np.arange(b)
    for l, q in _delta_quadrant(b):
        l0, l1, ev, od = next(t for t in tabs if t[0] <= l < t[1])
        even = (l + k[:l1, None] + k[None, :l1]) % 2 == 0
        ev[l - l0] = np.where(even, q[:l1, :l1], 0.0)
        od[l - l0] = np.where(even, 0.0, q[:l1, :l1])
    return RotationPlan(b, tuple((l0, l1, torch.from_numpy(e), torch.from_numpy(o)) for l0, l1, e, o in tabs))


@functools.lru_cache(maxsize=8)
def _rotation_plan_cast(b: int, dtype: str, device: str) -> RotationPlan:
    dt, dev = getattr(torch, dtype), torch.device(device)
    return RotationPlan(b, tuple((l0, l1, e.to(dev, dt), o.to(dev, dt)) for l0, l1, e, o in _rotation_plan64(b).chunks))


def rotation_plan(bandwidth: int, dtype: torch.dtype = torch.float64,
                  device: torch.device | str = "cpu") -> RotationPlan:
    """The cached rotation tables, keyed on (bandwidth, dtype name, device name); built in float64."""
    b, dev = check_bandwidth(bandwidth), torch.device(device)
    if dtype == torch.float64 and dev.type == "cpu":
        return _rotation_plan64(b)
    return _rotation_plan_cast(b, str(dtype).removeprefix("torch."), str(dev))


def _phases(t: torch.Tensor, m: torch.Tensor, cdtype: torch.dtype) -> torch.Tensor:
    """``[..., len(m)]`` ``exp(-i m t)``."""
    tm = t[..., None].double() * m.double()
    return torch.polar(torch.ones_like(tm), -tm).to(cdtype)


def wigner_D(bandwidth: int, R: torch.Tensor) -> torch.Tensor:
    """Explicit Wigner D for all degrees: ``[..., b, 2b-1, 2b-1]`` complex128,
    ``D[..., l, m' + b - 1, m + b - 1] = D^l_{m'm}(R)``; O(b^3) per rotation (recurrence).

    Memory is 16 (2b-1)^2 b bytes per rotation (128 MiB at b = 128): it is for checks and small
    bandwidths. To rotate signals use :func:`rotate_coefficients`, which never forms D.
    """
    b = check_bandwidth(bandwidth)
    check_rotation(R)
    check_fits(24 * (2 * b - 1) ** 2 * b * max(1, R[..., 0, 0].numel()), f"explicit Wigner D at bandwidth {b}")
    alpha, beta, gamma = _euler_zyz(R.double().cpu())
    m = torch.arange(-b + 1, b, dtype=torch.float64)
    d = wigner_d(b, beta).to(torch.complex128)
    D = _phases(alpha, m, torch.complex128)[..., None, :, None] * d * _phases(gamma, m, torch.complex128)[..., None, None, :]
    return D.to(R.device)


def _broadcast_lead(a: torch.Tensor, R: torch.Tensor, name: str) -> torch.Size:
    try:
        return torch.broadcast_shapes(a.shape[:-2], R.shape[:-2])
    except RuntimeError:
        raise ValueError(f"{name} and R: batch dims {tuple(a.shape[:-2])} and {tuple(R.shape[:-2])}"
                         " do not broadcast") from None


def _phase(t: torch.Tensor, b: int, weight: bool, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``[P, b]`` ``w_m cos(m t)`` and ``w_m sin(m t)`` for the pairs' angles ``t`` ``[P]``
    (computed in float64, cast once), with ``w_m = 1`` (m = 0) or 2 (m > 0, for +m and -m
    together) when ``weight``: multiplying by them is ``X_m <- w_m X_m exp(-i m t)``."""
    mt = t.double()[:, None] * torch.arange(b, dtype=torch.float64, device=t.device)[None, :]
    c, s = torch.cos(mt), torch.sin(mt)
    if weight:
        c[:, 1:] *= 2
        s[:, 1:] *= 2
    return c.to(dtype), s.to(dtype)


def _turn(re: torch.Tensor, im: torch.Tensor, c: torch.Tensor, s: torch.Tensor, out_re: torch.Tensor,
          out_im: torch.Tensor) -> None:
    """``out = (re + i im)(c - i s)`` on real and imaginary planes (``c, s`` broadcast)."""
    torch.mul(re, c, out=out_re).addcmul_(im, s)
    torch.mul(im, c, out=out_im).addcmul_(re, s, value=-1)


class _Rotate(torch.autograd.Function):
    """rotate_coefficients, differentiable in the coefficients: the map is linear and orthogonal
    for the L2(S^2) inner product, whose weight on the stored half is ``W`` (1 for m = 0, 2 for
    m > 0, the mirror m < 0 included), so its adjoint for the plain sum over stored entries
    (autograd's) is ``W D(R)^-1 W^-1``: the rotation by ``R^T`` between two scalings; a broadcast
    input sums its gradient over the broadcast dims. Forward mode: the rotation of the tangent."""

    @staticmethod
    def forward(coeffs: torch.Tensor, R: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _rotate_coefficients(coeffs, R)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.R, ctx.shape = inputs[1], inputs[0].shape  # R is a constant (refused if it requires grad)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        R, b = ctx.R, g.shape[-1]
        w = torch.full((b,), 2.0, dtype=g.real.dtype, device=g.device)
        w[0] = 1.0
        gx = _rotate_coefficients(g / w, R.transpose(-1, -2)) * w
        gx[..., 0] = gx[..., 0].real  # Im f^0_l never enters the output
        return gx.sum_to_size(ctx.shape), None

    @staticmethod
    def jvp(ctx, c_t: torch.Tensor, _R_t) -> torch.Tensor:  # type: ignore[override]
        return _rotate_coefficients(c_t, ctx.R)


def rotate_coefficients(coeffs: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Exact rotation of bandlimited real signals in the coefficient domain.

    coeffs ``[*S, b, b]`` complex; R ``[*N, 3, 3]``. Leading dims broadcast as in torch
    (``coeffs[:, None]`` with ``R[None]`` rotates every signal by every rotation); returns
    ``[*broadcast(S, N), b, b]``, the coefficients of ``f(R^-1 p)``. Differentiable in the
    coefficients (backward and forward mode); rotations that require grad are refused (the
    derivative along a rotation is :func:`harness.lie_derivative`'s business).

    ``D = Z(alpha + pi/2) Delta Z(beta) Delta^T Z(gamma - pi/2)`` applied per degree on the m >= 0
    half only (a real signal's other half is its mirror): the even part of Delta acts on real
    parts, the odd part on imaginary parts (:class:`RotationPlan`), two real matmuls of (l+1)^2 per
    degree and step, a quarter of the work of the full complex (2l+1)^2 product. Degrees are
    independent, so the chain runs per degree chunk on real and imaginary planes ``[l, pairs, m]``
    (m innermost, so every matmul reads unit-stride rows): phase, matmul, phase, matmul, and the
    last phase written straight into the output. No D is formed.
    """
    check_coefficients(coeffs)
    check_rotation(R)
    _broadcast_lead(coeffs, R, "coeffs")
    if R.requires_grad:
        raise ValueError("R: rotations that require grad are not supported; rotate by R.detach(), and differentiate"
                         " along rotations with harness.lie_derivative")
    if _tracked(coeffs):
        return _Rotate.apply(coeffs, R)
    return _rotate_coefficients(coeffs, R)


def _rotate_coefficients(coeffs: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """The kernel of :func:`rotate_coefficients` (arguments already validated; no autograd)."""
    b = coeffs.shape[-1]
    lead = _broadcast_lead(coeffs, R, "coeffs")
    P = math.prod(lead)
    check_fits(6 * P * b * b * coeffs.element_size(), f"rotating {P} signals at bandwidth {b}")
    rdt, dev = coeffs.real.dtype, coeffs.device
    alpha, beta, gamma = (t.expand(lead).reshape(P) for t in _euler_zyz(R.double()))
    half = math.pi / 2
    c1, s1 = _phase(gamma - half, b, True, rdt)
    c1i = c1.clone()
    c1i[:, 0] = 0  # Im f^0_l is ignored: it never enters
    c2, s2 = _phase(beta, b, True, rdt)
    c3, s3 = _phase(alpha + half, b, False, rdt)
    # [*lead, l, m, 2], broadcast (not copied) across the pairs; the first phase step reads it
    x = torch.view_as_real(coeffs.resolve_conj()).expand(*lead, b, b, 2)
    nl = len(lead)
    out = torch.empty(P, b, b, 2, dtype=rdt, device=dev)
    for l0, l1, ev, od in rotation_plan(b, rdt, dev).chunks:
        lc, k = l1 - l0, slice(0, l1)
        xs = x[..., l0:l1, :l1, :].movedim(nl, 0)  # [lc, *lead, l1, 2]
        re, im = torch.empty(lc, P, l1, dtype=rdt, device=dev), torch.empty(lc, P, l1, dtype=rdt, device=dev)
        rv, iv = re.view(lc, *lead, l1), im.view(lc, *lead, l1)
        cv, civ, sv = (t[:, k].view(*lead, l1) for t in (c1, c1i, s1))
        torch.mul(xs[..., 0], cv, out=rv).addcmul_(xs[..., 1], sv)  # w X exp(-i m (gamma - pi/2))
        torch.mul(xs[..., 1], civ, out=iv).addcmul_(xs[..., 0], sv, value=-1)
        zr, zi = torch.bmm(re, ev), torch.bmm(im, od)  # Delta^T: Y_k = sum_m X_m Delta_mk
        _turn(zr, zi, c2[:, k], s2[:, k], re, im)  # w exp(-i k beta)
        zr, zi = torch.bmm(re, ev.transpose(1, 2)), torch.bmm(im, od.transpose(1, 2))  # Delta
        out[:, l0:l1, l1:] = 0  # m beyond the chunk (in natural order: contiguous row tails)
        o = out[:, l0:l1].permute(3, 1, 0, 2)  # [2, lc, P, m]: the output, as planes
        _turn(zr, zi, c3[:, k], s3[:, k], o[0, :, :, :l1], o[1, :, :, :l1])  # exp(-i m' (alpha + pi/2))
    return torch.view_as_complex(out).reshape(*lead, b, b)


# --------------------------------------------------------------------------- the Lie algebra
def _ladder(b: int, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``[b, b]`` ``sqrt((l - m + 1)(l + m))`` and ``sqrt((l + m + 1)(l - m))`` (zero where m > l):
    ``(J+ f)_m = up[l, m] f_{m-1}``, ``(J- f)_m = down[l, m] f_{m+1}`` (Condon-Shortley)."""
    l = torch.arange(b, dtype=torch.float64)[:, None]
    m = torch.arange(b, dtype=torch.float64)[None, :]
    ok = m <= l
    up = torch.where(ok, ((l - m + 1) * (l + m)).clamp_min(0).sqrt(), 0.0)
    down = torch.where(ok, ((l + m + 1) * (l - m)).clamp_min(0).sqrt(), 0.0)
    return up.to(device=device, dtype=dtype), down.to(device=device, dtype=dtype)


def lie_algebra_action(coeffs: torch.Tensor, omega: torch.Tensor | tuple[float, float, float]) -> torch.Tensor:
    """The infinitesimal rotation ``d/dt (exp(t [omega]_x) . f)`` at t = 0 in the coefficient
    domain: ``-i (omega . J) f`` per degree, on the m >= 0 half of real signals.

    coeffs ``[..., b, b]`` complex; omega: the rotation axis times the angular speed, 3 numbers
    (harness frame). ``J_z = m``, ``J_x = (J+ + J-)/2``, ``J_y = (J+ - J-)/(2i)``, so that
    ``D(R) = exp(-i t n.J)`` for the rotation by t about n (docs/conventions.md). The result is
    again the m >= 0 half of a real signal (its m = 0 entries are real).
    """
    b = check_coefficients(coeffs)
    w = [float(v) for v in (omega.tolist() if isinstance(omega, torch.Tensor) else omega)]
    if len(w) != 3:
        raise ValueError(f"omega: expected 3 numbers (an axis times a speed), got {omega!r}")
    rdt = coeffs.real.dtype
    c = torch.cat([coeffs[..., :1].real.to(coeffs.dtype), coeffs[..., 1:]], dim=-1)  # Im f^0_l ignored
    up, down = _ladder(b, rdt, coeffs.device)
    prev = torch.cat([-c[..., 1:2].conj(), c[..., :-1]], dim=-1)  # f_{m-1}; f_{-1} = -conj(f_1)
    nxt = torch.cat([c[..., 1:], torch.zeros_like(c[..., :1])], dim=-1)  # f_{m+1}
    jp, jm = up * prev, down * nxt
    m = torch.arange(b, device=coeffs.device, dtype=rdt)
    # -i (wx (J+ + J-)/2 + wy (J+ - J-)/(2i) + wz J_z)
    out = (-0.5j * w[0] - 0.5 * w[1]) * jp + (-0.5j * w[0] + 0.5 * w[1]) * jm - 1j * w[2] * m * c
    return out * torch.tril(torch.ones(b, b, dtype=rdt, device=coeffs.device))
