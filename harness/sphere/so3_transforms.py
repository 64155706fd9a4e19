"""The SO(3) Fourier (Wigner) transform of real signals on the SOFT grid, and its inverse.

Conventions (``docs/conventions.md``, "Signals on SO(3)"): a grid signal is a real tensor
``[..., 2b, 2b, 2b]`` indexed ``[beta_j, alpha_k, gamma_p]`` with ``beta_j = pi (2j+1) / (4b)``,
``alpha_k = gamma_k = 2 pi k / (2b)``, the point ``g = Rz(alpha) Ry(beta) Rz(gamma)``. A signal of
bandwidth b is

    f(g) = sum_{l<b} sum_{|m|,|n|<=l} f^l_{mn} conj(D^l_{mn}(g)),
    f^l_{mn} = (2l+1)/(8 pi^2) int_SO(3) f(g) D^l_{mn}(g) dg,

with ``D^l_{mn} = exp(-i m alpha) d^l_{mn}(beta) exp(-i n gamma)`` (the D of the S^2 rotations) and
``dg = sin(beta) dalpha dbeta dgamma`` (total 8 pi^2). With this expansion the left translation
``(R.f)(g) = f(R^-1 g)`` acts as ``f^l -> D^l(R) f^l`` on the first index, as on S^2, and a function
lifted from the sphere, ``F(g e_z)``, has ``f^l_{m0} = sqrt((2l+1)/(4 pi)) F^m_l``.
Real signals have ``conj(f^l_{mn}) = (-1)^(m-n) f^l_{-m,-n}``: only ``m >= 0`` is stored.

**Layout**: complex ``[..., l, m, n]`` of shape ``[..., b, b, 2b-1]`` (m = 0..b-1, n at index
n + b - 1); entries with ``max(m, |n|) > l`` are zero on output and ignored on input, and the
m = 0 row is read as the real signal it belongs to (its part that breaks the symmetry is dropped).

Forward, exact for bandwidth-b signals (SOFT quadrature, Kostelec & Rockmore 2008)::

    f^l_{mn} = (2l+1)/2 sum_j w_j d^l_{mn}(beta_j) [ (2b)^-2 sum_{k,p} f(beta_j, alpha_k, gamma_p) e^{-i(m alpha_k + n gamma_p)} ]

with ``w_j`` the S^2 weights of the ``soft`` grid (sum 2): a 2-D FFT over (alpha, gamma), then one
matrix product per (m, n) pair over beta against a cached table of ``d^l_{mn}(beta_j)``, the pairs
grouped by ``max(m, |n|)`` into chunks so that the table holds (almost) only ``l >= max(m, |n|)``:
about (4/3) b^4 numbers per direction (2 x 200 MB in float64 at b = 64: the forward table has the
quadrature weights folded in). Inverse: the transposed products, then the inverse 2-D FFT. Plain differentiable torch ops (autograd and forward-mode AD), any device.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..util.memory import check_fits
from ..util.schema import SEED, Int, Number, check_arg
from .grids import check_bandwidth, grid
from .transforms import _tracked
from .so3 import check_rotation
from .wigner import wigner_D, wigner_d

_REAL_DTYPES = (torch.float32, torch.float64)
_COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def so3_grid_shape(bandwidth: int) -> tuple[int, int, int]:
    """``(2b, 2b, 2b)``: (beta, alpha, gamma) of the SOFT grid."""
    b = check_bandwidth(bandwidth)
    return (2 * b, 2 * b, 2 * b)


def so3_coefficient_shape(bandwidth: int) -> tuple[int, int, int]:
    """``(b, b, 2b - 1)``: (l, m >= 0, n)."""
    b = check_bandwidth(bandwidth)
    return (b, b, 2 * b - 1)


def so3_grid_angles(bandwidth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(beta [2b], alpha [2b], gamma [2b])`` float64 of the SOFT grid."""
    b = check_bandwidth(bandwidth)
    j = np.arange(2 * b, dtype=np.float64)
    return np.pi * (2 * j + 1) / (4 * b), 2 * np.pi * j / (2 * b), 2 * np.pi * j / (2 * b)


def so3_bandwidth_from_shape(shape: tuple[int, ...], name: str = "x") -> int:
    """The bandwidth of a SOFT grid signal from its last three dims, or a ValueError naming them."""
    if len(shape) < 3 or not (shape[-1] == shape[-2] == shape[-3]) or shape[-1] % 2 or shape[-1] < 2:
        raise ValueError(f"{name}: expected a SOFT grid [..., 2b, 2b, 2b] (beta, alpha, gamma) with the same even"
                         f" size 2b in the last three dims, got shape {tuple(shape)}")
    return shape[-1] // 2


# --------------------------------------------------------------------------- the cached plan
@dataclass(frozen=True, eq=False)
class SO3Plan:
    """Tables for one (grid bandwidth, degrees, dtype, device): the SOFT grid of ``bandwidth`` B
    and the coefficients of degrees l < ``degrees`` L (L <= B; only their work is done).

    Pairs (m >= 0, n) sorted by ``mu = max(m, |n|)``; chunk ``(p0, p1, mu0, F, T)`` holds the
    pairs p0..p1-1, the inverse table ``T[p, l - mu0, j] = d^l_{m_p n_p}(beta_j)`` (zero for
    l < mu_p) and the forward one ``F = (2l+1)/2 w_j T`` (the quadrature weights folded in: twice
    the memory, no scaling passes), so one bmm per chunk maps beta samples to degrees and back. ``fpos[p]``: the pair's place in the FFT output
    ``[b+1 (m), 2b (n, FFT order)]``; ``slot``: the flat coefficient index of every packed
    (pair, l) row (an always-valid entry for padding rows, whose table rows are zero);
    ``gather``: the packed row of every flat coefficient (the appended zero row where l < mu).
    """

    bandwidth: int  # of the grid
    degrees: int  # L: coefficients [L, L, 2L-1]
    fpos: torch.Tensor  # [pairs] long
    chunks: tuple[tuple[int, int, int, torch.Tensor, torch.Tensor], ...]  # (p0, p1, mu0, forward, inverse)
    slot: torch.Tensor  # [packed rows] long
    gather: torch.Tensor  # [L * L * (2L-1)] long

    def table_bytes(self) -> int:
        return sum(f.numel() * f.element_size() + i.numel() * i.element_size() for *_, f, i in self.chunks)


def _chunk_mus(b: int) -> np.ndarray:
    """Chunk boundaries in mu: one chunk for small b, else ~b/4 chunks of equal padded work."""
    n = 1 if b <= 8 else min(16, b // 4)
    # pairs with mu = k: 4k + 1, work ~ (4k + 1)(b - k); split the cumulative work evenly
    k = np.arange(b)
    work = np.cumsum((4 * k + 1) * (b - k))
    cuts = np.searchsorted(work, work[-1] * np.arange(1, n) / n)
    return np.unique(np.concatenate([[0], cuts, [b]]))


def table_bytes(bandwidth: int, degrees: int | None = None) -> int:
    """Bytes of the float64 d-tables (both directions) for the grid of ``bandwidth`` B and the
    degrees < ``degrees`` (default B), before they are built."""
    B = check_bandwidth(bandwidth)
    L = B if degrees is None else check_bandwidth(degrees, "degrees")
    bounds = _chunk_mus(L)
    k = np.arange(L)
    return int(sum(16 * (4 * k[(k >= a) & (k < c)] + 1).sum() * (L - a) * 2 * B for a, c in zip(bounds[:-1], bounds[1:])))


@functools.lru_cache(maxsize=6)
def _plan_float64(B: int, b: int) -> SO3Plan:
    """The plan of the grid of bandwidth B for degrees < b (b <= B)."""
    check_fits(table_bytes(B, b) + 8 * 16 * b * (2 * b - 1) ** 2,
               f"the Wigner d table of the SO(3) transform at bandwidth {B}" + (f" (degrees < {b})" if b != B else ""))
    beta = so3_grid_angles(B)[0]
    m, n = np.meshgrid(np.arange(b), np.arange(-b + 1, b), indexing="ij")
    m, n = m.ravel(), n.ravel()
    mu = np.maximum(m, np.abs(n))
    order = np.lexsort((n, m, mu))
    m, n, mu = m[order], n[order], mu[order]
    nb = 2 * b - 1
    bounds = _chunk_mus(b)
    pb = np.searchsorted(mu, bounds)  # pair index where each chunk starts
    tabs = [np.zeros((pb[i + 1] - pb[i], b - bounds[i], 2 * B)) for i in range(len(bounds) - 1)]
    step = 16
    for j0 in range(0, 2 * B, step):  # d for a few angles at a time: [nb_j, b, 2b-1, 2b-1]
        d = wigner_d(b, torch.from_numpy(beta[j0 : j0 + step])).numpy()
        dp = d[:, :, m + b - 1, n + b - 1]  # [angles, l, pairs]
        for i, T in enumerate(tabs):
            T[:, :, j0 : j0 + step] = dp[:, bounds[i]:, pb[i] : pb[i + 1]].transpose(2, 1, 0)
    # packed rows: chunk after chunk, pair-major, l - mu0 minor
    slot, rows = [], 0
    gather = np.full(b * b * nb, -1, dtype=np.int64)
    for i in range(len(bounds) - 1):
        pp = np.arange(pb[i], pb[i + 1])
        ls = np.arange(bounds[i], b)
        flat = (ls[None, :] * b + m[pp, None]) * nb + (n[pp, None] + b - 1)  # [pairs, L]
        valid = ls[None, :] >= mu[pp, None]
        r = rows + np.arange(flat.size).reshape(flat.shape)
        gather[flat[valid]] = r[valid]
        slot.append(np.where(valid, flat, b - 1).ravel())  # (l, m, n) = (0, 0, 0) for padding
        rows += flat.size
    gather[gather < 0] = rows  # the zero row
    fpos = m * (2 * B) + n % (2 * B)  # in the FFT output of the B grid [B + 1 (m), 2B (n)]
    w = grid("soft", B).weights
    chunks = []
    for i, T in enumerate(tabs):
        ls = np.arange(bounds[i], b, dtype=np.float64)
        F = T * ((ls + 0.5)[None, :, None] * w[None, None, :])
        chunks.append((int(pb[i]), int(pb[i + 1]), int(bounds[i]), torch.from_numpy(F), torch.from_numpy(T)))
    return SO3Plan(
        bandwidth=B,
        degrees=b,
        fpos=torch.from_numpy(fpos),
        chunks=tuple(chunks),
        slot=torch.from_numpy(np.concatenate(slot)),
        gather=torch.from_numpy(gather),
    )


@functools.lru_cache(maxsize=8)
def _plan_cast(B: int, b: int, dtype: str, device: str) -> SO3Plan:
    p = _plan_float64(B, b)
    dt, dev = getattr(torch, dtype), torch.device(device)

    def mv(t: torch.Tensor) -> torch.Tensor:
        return t.to(device=dev, dtype=dt if t.is_floating_point() else t.dtype).contiguous()

    return SO3Plan(bandwidth=B, degrees=b, fpos=mv(p.fpos),
                   chunks=tuple((p0, p1, mu0, mv(F), mv(T)) for p0, p1, mu0, F, T in p.chunks),
                   slot=mv(p.slot), gather=mv(p.gather))


def so3_plan(bandwidth: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu",
             degrees: int | None = None) -> SO3Plan:
    """The cached plan of the grid of ``bandwidth`` for the degrees < ``degrees`` (default: the
    bandwidth), keyed on (bandwidth, degrees, dtype name, device name); built once in float64."""
    B = check_bandwidth(bandwidth)
    b = B if degrees is None else _check_degrees(degrees, B)
    dev = torch.device(device)
    if dtype == torch.float64 and dev.type == "cpu":
        return _plan_float64(B, b)
    return _plan_cast(B, b, str(dtype).removeprefix("torch."), str(dev))


def _check_degrees(degrees: object, bandwidth: int, name: str = "degrees") -> int:
    L = check_bandwidth(degrees, name)
    if L > bandwidth:
        raise ValueError(f"{name}: expected at most the grid's bandwidth {bandwidth} (the SOFT grid of bandwidth B"
                         f" resolves degrees l < B), got {L}")
    return L


# --------------------------------------------------------------------------- transforms
def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(torch.view_as_real(t) if t.is_complex() else t).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")


_FORWARD, _INVERSE = 3, 4  # the table in a plan chunk (p0, p1, mu0, forward, inverse)


def _so3_analysis(x: torch.Tensor, p: SO3Plan, table: int) -> torch.Tensor:
    """``[B, 2B2, 2B2, 2B2]`` real -> ``[B, b, b, 2b-1]``: ``sum_j Tab[l, j] X_mn(j)`` with
    ``X = rfftn over (alpha, gamma)`` (norm "forward") at the plan's (m, n) pairs; ``Tab`` the
    forward table (the sft: weights folded in) or the inverse one (the adjoint of the synthesis)."""
    B, B2, b = x.shape[0], p.bandwidth, p.degrees
    # rfft over alpha (m >= 0), full FFT over gamma (all n): [B, beta, B2+1, 2 B2]
    X = torch.fft.rfftn(x, dim=(-1, -2), norm="forward").reshape(B, 2 * B2, (B2 + 1) * 2 * B2)
    X = X.index_select(-1, p.fpos)  # [B, j, pairs]: a gather along the contiguous dim, then
    Xp = torch.view_as_real(X).permute(2, 1, 0, 3).contiguous().view(-1, 2 * B2, 2 * B)  # one transpose (1.6x faster)
    packed = Xp.new_empty(p.slot.numel() + 1, 2 * B)
    o = 0
    for chunk in p.chunks:
        p0, p1, mu0 = chunk[:3]
        n_rows = (p1 - p0) * (b - mu0)
        torch.bmm(chunk[table], Xp[p0:p1], out=packed[o : o + n_rows].view(p1 - p0, b - mu0, 2 * B))
        o += n_rows
    packed[o] = 0  # the row that entries with l < max(m, |n|) read
    out = packed.view(-1, B, 2).transpose(0, 1)[:, p.gather]  # [B, (l, m, n), re/im]: one gather-copy
    return torch.view_as_complex(out).view(B, b, b, 2 * b - 1)


def _so3_synthesis(c: torch.Tensor, p: SO3Plan, table: int) -> torch.Tensor:
    """``[B, b, b, 2b-1]`` complex -> ``[B, 2B2, 2B2, 2B2]`` real: ``Re sum_{m >= 0, n} f_m
    (sum_l Tab[l, j] c^l_mn) e^{i (m alpha + n gamma)}`` with f_0 = 1, f_m = 2 (the m < 0 half),
    by the inverse rfftn; ``Tab`` the inverse table (the isft) or the forward one (an adjoint)."""
    B, B2, b = c.shape[0], p.bandwidth, p.degrees
    nb = 2 * b - 1
    C = torch.view_as_real(c.resolve_conj().reshape(B, b * b * nb)).permute(1, 0, 2)  # [(l, m, n), B, 2], a view
    packed = C[p.slot].reshape(-1, 2 * B)  # one gather-copy
    npairs = p.fpos.numel()
    Y = packed.new_empty(npairs, 2 * B2, 2 * B)  # [pairs, j, B re/im]
    o = 0
    for chunk in p.chunks:
        p0, p1, mu0 = chunk[:3]
        n = (p1 - p0) * (b - mu0)
        torch.bmm(chunk[table].transpose(1, 2), packed[o : o + n].view(p1 - p0, b - mu0, 2 * B), out=Y[p0:p1])
        o += n
    Yt = torch.view_as_complex(Y.view(npairs, 2 * B2, B, 2).permute(2, 1, 0, 3).contiguous())  # [B, j, pairs]
    F = Yt.new_zeros(B, 2 * B2, (B2 + 1) * 2 * B2)  # [B, j, (m, n)]: the pairs scattered along the contiguous dim
    F.index_copy_(-1, p.fpos, Yt)
    return torch.fft.irfftn(F.view(B, 2 * B2, B2 + 1, 2 * B2), s=(2 * B2, 2 * B2), dim=(-1, -2), norm="forward")


def _m_factor(b: int, mpos: float, like: torch.Tensor) -> torch.Tensor:
    """``[b, 1]`` (broadcast over [l, m, n]): 1 for m = 0, ``mpos`` for m > 0."""
    f = torch.full((b, 1), mpos, dtype=like.real.dtype, device=like.device)
    f[0] = 1.0
    return f


class _SO3FFT(torch.autograd.Function):
    """so3_fft with its exact adjoint as backward, ``grad_x = (2B)^-2 synthesis_F(g, m > 0 halved)``
    (autograd through the rfftn spends 5x the forward on a dense complex FFT of padded zeros);
    linear, so ``jvp`` transforms the tangent."""

    @staticmethod
    def forward(x: torch.Tensor, p: SO3Plan) -> torch.Tensor:  # type: ignore[override]
        return _so3_analysis(x, p, _FORWARD)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.p = inputs[1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        p = ctx.p
        gx = _so3_synthesis(g * _m_factor(p.degrees, 0.5, g), p, _FORWARD)
        return gx / (2 * p.bandwidth) ** 2, None

    @staticmethod
    def jvp(ctx, x_t: torch.Tensor, _p_t) -> torch.Tensor:  # type: ignore[override]
        return _so3_analysis(x_t.contiguous(), ctx.p, _FORWARD)


class _SO3IFFT(torch.autograd.Function):
    """so3_ifft with its exact adjoint as backward, ``grad_c = (2B)^2 f_m analysis_T(g)``
    (f_0 = 1, f_m = 2); linear, so ``jvp`` synthesizes the tangent."""

    @staticmethod
    def forward(c: torch.Tensor, p: SO3Plan) -> torch.Tensor:  # type: ignore[override]
        return _so3_synthesis(c, p, _INVERSE)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.p = inputs[1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        p = ctx.p
        gc = _so3_analysis(g.contiguous(), p, _INVERSE) * _m_factor(p.degrees, 2.0, g)
        return gc * (2 * p.bandwidth) ** 2, None

    @staticmethod
    def jvp(ctx, c_t: torch.Tensor, _p_t) -> torch.Tensor:  # type: ignore[override]
        return _so3_synthesis(c_t, ctx.p, _INVERSE)


def so3_fft(x: torch.Tensor, *, degrees: int | None = None, check_finite: bool = False) -> torch.Tensor:
    """SO(3) Fourier transform: real ``[..., 2B, 2B, 2B]`` (beta, alpha, gamma) on the SOFT grid
    -> complex ``[..., L, L, 2L-1]`` (l, m >= 0, n) for the degrees l < L = ``degrees`` (default
    B; at most B; only their work is done); see the module docstring for the formula. The
    quadrature sum of the grid: exact for signals of bandwidth b_f when b_f + L <= 2B + 1."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _REAL_DTYPES:
        raise ValueError(f"x: expected real float32 or float64 samples, got dtype {x.dtype}")
    B2 = so3_bandwidth_from_shape(tuple(x.shape))
    b = B2 if degrees is None else _check_degrees(degrees, B2)
    if check_finite:
        _check_finite(x, "x")
    lead = x.shape[:-3]
    B = math.prod(lead)
    check_fits(3 * B * (2 * B2) ** 3 * x.element_size() * 2, f"the SO(3) transform of {B} signals at bandwidth {B2}")
    if B == 0:
        return torch.zeros(*lead, b, b, 2 * b - 1, dtype=torch.complex64 if x.dtype == torch.float32 else torch.complex128,
                           device=x.device)
    p = so3_plan(B2, x.dtype, x.device, b)
    xb = x.reshape(B, 2 * B2, 2 * B2, 2 * B2)
    out = _SO3FFT.apply(xb, p) if _tracked(xb) else _so3_analysis(xb, p, _FORWARD)
    return out.reshape(*lead, b, b, 2 * b - 1)


def check_so3_coefficients(c: object, name: str = "coeffs") -> int:
    """The bandwidth of a coefficient tensor ``[..., b, b, 2b-1]`` complex, or a ValueError."""
    if not isinstance(c, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(c).__name__}")
    if c.dtype not in _COMPLEX_DTYPES:
        raise ValueError(f"{name}: expected complex64/complex128 SO(3) coefficients, got dtype {c.dtype}")
    if c.dim() < 3 or c.shape[-2] != c.shape[-3] or c.shape[-1] != 2 * c.shape[-2] - 1 or c.shape[-2] < 1:
        raise ValueError(f"{name}: expected SO(3) coefficients [..., b, b, 2b-1] (l, m >= 0, n), got shape"
                         f" {tuple(c.shape)}")
    return c.shape[-2]


def so3_ifft(coeffs: torch.Tensor, *, grid_bandwidth: int | None = None, check_finite: bool = False) -> torch.Tensor:
    """Inverse SO(3) Fourier transform: ``[..., b, b, 2b-1]`` complex -> real ``[..., 2B, 2B, 2B]``
    on the SOFT grid of bandwidth B = ``grid_bandwidth`` (default b; at least b; only the work of
    the b degrees is done), ``f(g) = sum f^l_{mn} conj(D^l_{mn}(g))`` (real part of the m = 0
    row's terms)."""
    b = check_so3_coefficients(coeffs)
    B2 = b if grid_bandwidth is None else check_bandwidth(grid_bandwidth, "grid_bandwidth")
    if B2 < b:
        raise ValueError(f"grid_bandwidth: expected at least the coefficients' bandwidth {b}, got {B2}")
    if check_finite:
        _check_finite(coeffs, "coeffs")
    lead = coeffs.shape[:-3]
    B = math.prod(lead)
    rdt = coeffs.real.dtype
    check_fits(3 * B * (2 * B2) ** 3 * coeffs.element_size(),
               f"the inverse SO(3) transform of {B} signals at bandwidth {B2}")
    if B == 0:
        return torch.zeros(*lead, 2 * B2, 2 * B2, 2 * B2, dtype=rdt, device=coeffs.device)
    p = so3_plan(B2, rdt, coeffs.device, b)
    cb = coeffs.reshape(B, b, b, 2 * b - 1)
    x = _SO3IFFT.apply(cb, p) if _tracked(cb) else _so3_synthesis(cb, p, _INVERSE)
    return x.reshape(*lead, 2 * B2, 2 * B2, 2 * B2)


def so3_degree_norms(coeffs: torch.Tensor) -> torch.Tensor:
    """``[..., b]`` real: ``||f^l||_F = sqrt(sum_{m,n} |f^l_{mn}|^2)`` over all 2l+1 x 2l+1 entries
    (m < 0 by the real-signal symmetry), invariant under left and right translations (D unitary).
    ``int |f|^2 dg = sum_l 8 pi^2/(2l+1) ||f^l||^2``."""
    check_so3_coefficients(coeffs)
    a2 = coeffs.real.square() + coeffs.imag.square()
    w = torch.full((coeffs.shape[-2],), 2.0, dtype=a2.dtype, device=a2.device)
    w[0] = 1.0
    s = (a2 * w[:, None]).sum((-1, -2))
    return s.sqrt()


def so3_resize_coefficients(coeffs: torch.Tensor, bandwidth: int) -> torch.Tensor:
    """Zero-pad or truncate ``[..., b, b, 2b-1]`` to bandwidth ``bandwidth`` (degrees < it kept)."""
    b = check_so3_coefficients(coeffs)
    bo = check_bandwidth(bandwidth)
    if bo == b:
        return coeffs
    if bo < b:
        return coeffs[..., :bo, :bo, b - bo : b + bo - 1]
    out = coeffs.new_zeros(*coeffs.shape[:-3], bo, bo, 2 * bo - 1)
    out[..., :b, :b, bo - b : bo + b - 1] = coeffs
    return out


# --------------------------------------------------------------------------- the action of SO(3)
def full_m(coeffs: torch.Tensor) -> torch.Tensor:
    """``[..., b, b, 2b-1]`` (m >= 0) -> ``[..., b, 2b-1, 2b-1]`` (all m, index m + b - 1), the
    rows m < 0 from the real-signal symmetry ``f^l_{-m,n} = (-1)^(m+n) conj(f^l_{m,-n})``."""
    b = check_so3_coefficients(coeffs)
    k = torch.arange(-b + 1, b, device=coeffs.device)
    m = torch.arange(b - 1, 0, -1, device=coeffs.device)  # the rows -m = -(b-1) .. -1 come from m = b-1 .. 1
    sign = (1 - 2 * ((m[:, None] + k[None, :]) % 2)).to(coeffs.real.dtype)
    neg = coeffs[..., 1:, :].flip(-2).flip(-1).conj() * sign
    return torch.cat([neg, coeffs.resolve_conj()], dim=-2)


def so3_rotate_coefficients(coeffs: torch.Tensor, R: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Left translation ``(R.f)(g) = f(R^-1 g)`` in coefficients: ``f^l -> D^l(R) f^l`` on the
    first index. coeffs ``[P, *C, b, b, 2b-1]``, R ``[P, 3, 3]`` (one rotation per sample) ->
    the same shape. D is formed explicitly (``wigner_D``), ``chunk`` rotations at a time:
    O(b^4) per (signal, rotation), for measurement at the bandwidths SO(3) networks use."""
    b = check_so3_coefficients(coeffs)
    check_rotation(R)
    if R.dim() != 3 or coeffs.dim() < 4 or R.shape[0] != coeffs.shape[0]:
        raise ValueError(f"R: expected one rotation per sample, [{coeffs.shape[0] if coeffs.dim() else '?'}, 3, 3],"
                         f" got {tuple(R.shape)} for coeffs of shape {tuple(coeffs.shape)}")
    extra = coeffs.dim() - 4
    out = []
    for s in range(0, R.shape[0], chunk):
        D = wigner_D(b, R[s : s + chunk].cpu())[:, :, b - 1 :, :].to(device=coeffs.device, dtype=coeffs.dtype)
        D = D.reshape(D.shape[0], *([1] * extra), *D.shape[1:])  # [p, 1.., l, m >= 0, k]
        out.append(D @ full_m(coeffs[s : s + chunk]))
    return torch.cat(out) if out else coeffs.clone()


def so3_lie_action(coeffs: torch.Tensor, omega: torch.Tensor | tuple[float, float, float]) -> torch.Tensor:
    """The infinitesimal left translation ``d/dt (exp(t [omega]_x) . f)`` at t = 0: ``-i (omega . J)``
    on the first index of every ``f^l`` (the S^2 generator, docs/conventions.md), m >= 0 rows kept."""
    b = check_so3_coefficients(coeffs)
    w = [float(v) for v in (omega.tolist() if isinstance(omega, torch.Tensor) else omega)]
    if len(w) != 3:
        raise ValueError(f"omega: expected 3 numbers (an axis times a speed), got {omega!r}")
    rdt, dev = coeffs.real.dtype, coeffs.device
    f = full_m(coeffs)  # [..., l, m, n]
    l = torch.arange(b, dtype=rdt, device=dev)[:, None, None]
    m = torch.arange(-b + 1, b, dtype=rdt, device=dev)[None, :, None]
    up = ((l - m + 1) * (l + m)).clamp_min(0).sqrt()  # (J+ f)_m = up_m f_{m-1}
    down = ((l + m + 1) * (l - m)).clamp_min(0).sqrt()  # (J- f)_m = down_m f_{m+1}
    zero = torch.zeros_like(f[..., :1, :])
    jp = up * torch.cat([zero, f[..., :-1, :]], dim=-2)
    jm = down * torch.cat([f[..., 1:, :], zero], dim=-2)
    out = (-0.5j * w[0] - 0.5 * w[1]) * jp + (-0.5j * w[0] + 0.5 * w[1]) * jm - 1j * w[2] * m * f
    return out[..., b - 1 :, :]


def random_so3_coefficients(n: int, channels: int, bandwidth: int, decay: float = 0.0, seed: int = 0) -> torch.Tensor:
    """``[n, channels, b, b, 2b-1]`` complex128 coefficients of random real SO(3) signals with
    ``E|f^l_{mn}|^2 = (2l+1) (1+l)^-decay`` (so each degree carries power ``(1+l)^-decay`` per
    function ``conj(D^l_{mn})``), scaled to unit mean square over SO(3) (batch average). Own generator."""
    b = check_bandwidth(bandwidth)
    n, channels = check_arg(Int(0), n, "n"), check_arg(Int(1), channels, "channels")
    decay = check_arg(Number(0.0), decay, "decay")
    gen = torch.Generator().manual_seed(check_arg(SEED, seed, "seed"))
    nb = 2 * b - 1
    check_fits(3 * 16 * n * channels * b * nb * nb, f"{n} x {channels} random SO(3) signals at bandwidth {b}")
    c = torch.randn(n, channels, b, nb, nb, dtype=torch.complex128, generator=gen)
    l = torch.arange(b)[:, None, None]
    k = torch.arange(-b + 1, b)
    keep = (k[None, :, None].abs() <= l) & (k[None, None, :].abs() <= l)
    c = c * keep * ((2 * l + 1) * (1.0 + l) ** (-decay)).sqrt()
    sign = (1 - 2 * ((k[:, None] + k[None, :]) % 2)).double()
    c = (c + sign * c.flip(-2, -1).conj()) / math.sqrt(2)  # real signals: conj f_{mn} = (-1)^(m-n) f_{-m,-n}
    c = c[..., b - 1 :, :].contiguous()
    if n * channels:
        ms = (so3_degree_norms(c).square() / (2 * l[:, 0, 0] + 1)).sum(-1).mean()  # mean of f^2 over SO(3)
        c = c / ms.sqrt()
    return c


__all__ = ["SO3Plan", "so3_plan", "so3_fft", "so3_ifft", "so3_degree_norms", "so3_resize_coefficients",
           "so3_grid_shape", "so3_coefficient_shape", "so3_grid_angles", "so3_bandwidth_from_shape",
           "check_so3_coefficients", "table_bytes", "full_m", "so3_rotate_coefficients",
           "so3_lie_action", "random_so3_coefficients"]
