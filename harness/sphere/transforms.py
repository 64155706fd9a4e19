"""Spherical Fourier transform (SFT) and its inverse on the grids of :mod:`harness.sphere.grids`.

Coefficients (``docs/conventions.md``): a real signal of bandwidth b has complex coefficients
``f^m_l = int f conj(Y^m_l)`` with orthonormal, Condon-Shortley ``Y^m_l`` (``sph_harm_y``). Only
``m >= 0`` is stored (``f^{-m}_l = (-1)^m conj(f^m_l)``), in a square ``[..., b, b]`` tensor
indexed ``[..., l, m]``; entries with ``m > l`` are zero and are ignored on input, and
``Im f^0_l`` is ignored on input (it is zero for every real signal).

Forward (exact for bandwidth-b signals, the blog post's eq. "sampling", corrected)::

    f^m_l = (2 pi / nlon) sum_j w_j Pbar(l, m, theta_j) sum_k f(theta_j, phi_k) exp(-i m phi_k)

Inverse: ``f(theta, phi) = sum_l [ f^0_l Pbar(l,0) + 2 Re sum_{m>0} f^m_l Pbar(l,m) e^{i m phi} ]``.

Two paths behind one API:

* ``"torch"``: FFT over longitude, then a Legendre transform as batched matrix products against a
  cached table of ``Pbar`` holding only ``l >= m`` and only the northern rows; the southern rows
  follow from ``Pbar(l, m, pi - t) = (-1)^(l+m) Pbar(l, m, t)``, so each order m splits into an
  even and an odd block (half the table, half the work). Differentiable, any device.
* ``"ducc0"``: ``ducc0.sht.experimental`` (C++, CPU), reading and writing the same square layout
  in place (``mstart``/``lstride``), inside an ``autograd.Function`` whose backward is ducc0's
  exact adjoint transform. The default on the CPU from b = 128 up, where it is the faster path.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..util.memory import check_fits
from .grids import Grid, _grid, bandwidth_from_shape, check_bandwidth, check_kind, grid, grid_shape, mirror_pairs
from .legendre import legendre_diagonals, legendre_table

BACKENDS: tuple[str, ...] = ("torch", "ducc0")
_DUCC_GEOMETRY = {"dh": "DH", "soft": "F1", "gl": "GL", "cc": "CC"}
_REAL_DTYPES = (torch.float32, torch.float64)
_COMPLEX_DTYPES = (torch.complex64, torch.complex128)


# --------------------------------------------------------------------------- the torch path tables
@dataclass(frozen=True, eq=False)
class LegendrePlan:
    """Index tables and packed Legendre table for one (kind, grid bandwidth, degrees, dtype, device).

    The grid is ``grid(kind, bandwidth)``; the coefficients are those of degrees ``l < degrees``
    (``degrees <= bandwidth``), so a transform between a fine grid and few degrees does only the
    Legendre work of those degrees. Blocks ``q = 2m + p`` (order m, parity p of l - m) hold rows ``l = m + p, m + p + 2, ...``;
    consecutive blocks are grouped into chunks, each a ``[blocks, rows, nN]`` tensor padded with
    zero rows to its longest block, so one ``torch.bmm`` per chunk does the Legendre transform.
    """

    kind: str
    bandwidth: int  # of the grid
    degrees: int  # L: the coefficients are [L, L] (l, m < L)
    nlat: int
    nlon: int
    wscale: torch.Tensor  # [nlat] real: 2 pi w_j (the FFT already divides by nlon)
    n_north: int  # rows 0..nN-1 have theta <= pi/2
    paired: tuple[int, int]  # north rows h0..h1-1 have mirror rows at pi - theta ...
    south: tuple[int, int]  # ... namely rows s1-1 down to s0 (a reversed contiguous range)
    chunks: tuple[tuple[int, int, torch.Tensor], ...]  # (q0, q1, table [q1-q0, rows, nN])
    slot: torch.Tensor  # [packed rows] long: l*L + m of each packed row (0 for padding rows)
    gather: torch.Tensor  # [L*L] long: packed row of (l, m), or the appended zero row if m > l
    dense: torch.Tensor | None  # small L only: [m, l, nlat] full table, used instead of chunks
    dft: tuple[torch.Tensor, torch.Tensor]  # [nlon, 2L] synthesis and [2L, nlon] analysis (cos, sin) tables

    def table_bytes(self) -> int:
        tabs = [t for _, _, t in self.chunks] + ([self.dense] if self.dense is not None else [])
        return sum(t.numel() * t.element_size() for t in tabs)


def _n_chunks(b: int) -> int:
    return max(1, min(16, b // 8))


# Up to this bandwidth the plan is one plain [m, l, nlat] table and each direction is a single
# bmm between two transposes: the work is too small for the triangle/parity packing to pay for
# its extra data movement (measured: at b = 16-32 one plain bmm is 10-50% faster, at b = 48-64 they are even).
DENSE_MAX_BANDWIDTH = 32


def plan_bytes(kind: str, b: int, degrees: int | None = None) -> int:
    """Bytes of the float64 Legendre plan for the ``kind`` grid of bandwidth b and degrees < L
    (default b; an upper bound: the dense table is L x L x nlat)."""
    L = b if degrees is None else degrees
    nlat = b if kind == "gl" else 2 * b
    return 8 * L * L * nlat if L <= DENSE_MAX_BANDWIDTH else 8 * (L * (L + 1) // 2 + 2 * L) * (nlat // 2 + 1)


def _dft_tables(phi: np.ndarray, L: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The longitude stage of the points-first layout as matrices over (re/im, m), m < L:
    synthesis ``x_k = sum_m f_m (Re F_m cos(m phi_k) - Im F_m sin(m phi_k))`` (f_0 = 1, f_m = 2)
    and analysis ``F_m = (1/nlon) sum_k x_k (cos(m phi_k) - i sin(m phi_k))``."""
    mp = np.outer(np.arange(L), phi)  # [m, k]
    f = np.where(np.arange(L) == 0, 1.0, 2.0)[:, None]
    syn = np.concatenate([f * np.cos(mp), -f * np.sin(mp)]).T  # [k, (re/im, m)]
    ana = np.concatenate([np.cos(mp), -np.sin(mp)]) / phi.size  # [(re/im, m), k]
    return torch.from_numpy(np.ascontiguousarray(syn)), torch.from_numpy(ana)


@functools.lru_cache(maxsize=16)
def _plan_float64(kind: str, b: int, L: int, nlon: int | None) -> LegendrePlan:
    check_fits(plan_bytes(kind, b, L), f"the Legendre table for the {kind!r} grid at bandwidth {b}"
               + (f" (degrees < {L})" if L != b else ""))
    g = grid(kind, b, nlon)
    north, mirror = mirror_pairs(g)
    nN = north.size
    common = dict(kind=kind, bandwidth=b, degrees=L, nlat=g.nlat, nlon=g.nlon,
                  wscale=torch.from_numpy(2 * np.pi * g.weights), n_north=nN, dft=_dft_tables(g.phi, L))
    if L <= DENSE_MAX_BANDWIDTH:
        dense = torch.from_numpy(legendre_table(L, g.theta).transpose(1, 0, 2).copy())  # [m, l, j]
        empty = torch.zeros(0, dtype=torch.long)
        return LegendrePlan(**common, paired=(0, 0), south=(g.nlat, g.nlat), chunks=(), slot=empty, gather=empty,
                            dense=dense)
    # blocks q = 2m + p have rows k = p, p+2, ... < L - m  (l = m + k)
    q = np.arange(2 * L)
    rows = np.maximum((L - q // 2 - q % 2 + 1) // 2, 0)
    bounds = np.linspace(0, 2 * L, _n_chunks(L) + 1).round().astype(int)
    base = np.zeros(2 * L, dtype=np.int64)
    spans, offset = [], 0
    for q0, q1 in zip(bounds[:-1], bounds[1:]):
        rmax = max(int(rows[q0]), 1)
        base[q0:q1] = offset + (np.arange(q0, q1) - q0) * rmax
        spans.append((int(q0), int(q1), rmax, offset))
        offset += (q1 - q0) * rmax
    packed = np.zeros((offset, nN))
    slot = np.zeros(offset, dtype=np.int64)
    gather = np.full(L * L, offset, dtype=np.int64)
    for k, p in legendre_diagonals(L, g.theta[north]):
        m = np.arange(L - k)
        r = base[2 * m + k % 2] + k // 2
        packed[r] = p
        slot[r] = (m + k) * L + m
        gather[(m + k) * L + m] = r
    packed_t = torch.from_numpy(packed)
    chunks = tuple(
        (q0, q1, packed_t[o : o + (q1 - q0) * rmax].view(q1 - q0, rmax, nN))
        for q0, q1, rmax, o in spans
    )
    has = np.flatnonzero(mirror >= 0)
    h0, h1 = (int(has[0]), int(has[-1]) + 1) if has.size else (0, 0)
    s0, s1 = g.nlat - (h1 - h0), g.nlat
    if not (np.array_equal(north, np.arange(nN)) and np.array_equal(has, np.arange(h0, h1))
            and np.array_equal(mirror[has], np.arange(s1 - 1, s0 - 1, -1))):
        raise RuntimeError(f"grid {kind!r}: expected contiguous northern, paired and southern rows")
    return LegendrePlan(**common, paired=(h0, h1), south=(s0, s1), chunks=chunks, slot=torch.from_numpy(slot),
                        gather=torch.from_numpy(gather), dense=None)


@functools.lru_cache(maxsize=32)
def _plan_cast(kind: str, b: int, L: int, nlon: int | None, dtype: str, device: str) -> LegendrePlan:
    p = _plan_float64(kind, b, L, nlon)
    dt, dev = getattr(torch, dtype), torch.device(device)

    def mv(t: torch.Tensor) -> torch.Tensor:
        return t.to(device=dev, dtype=dt if t.is_floating_point() else t.dtype)

    return dataclasses.replace(
        p,
        wscale=mv(p.wscale),
        chunks=tuple((q0, q1, mv(t).contiguous()) for q0, q1, t in p.chunks),
        slot=mv(p.slot),
        gather=mv(p.gather),
        dense=None if p.dense is None else mv(p.dense).contiguous(),
        dft=(mv(p.dft[0]), mv(p.dft[1])),
    )


def legendre_plan(kind: str, bandwidth: int, dtype: torch.dtype = torch.float64,
                  device: torch.device | str = "cpu", degrees: int | None = None,
                  nlon: int | None = None) -> LegendrePlan:
    """The cached plan between ``grid(kind, bandwidth, nlon)`` and the coefficients of degrees
    < ``degrees`` (default: the bandwidth), keyed on plain values (kind, bandwidth, degrees,
    longitudes, dtype name, device name); built in float64 and cast on use."""
    g = grid(kind, bandwidth, nlon)  # validates
    return _plan_for(g, g.bandwidth if degrees is None else check_degrees(degrees, g.bandwidth), dtype,
                     torch.device(device))


def _plan_for(g: Grid, L: int, dtype: torch.dtype, dev: torch.device) -> LegendrePlan:
    """The cached plan of a validated grid and degree count (the per-call path: no checks)."""
    n = None if g.nlon == (2 * g.bandwidth - 1 if g.kind == "gl" else 2 * g.bandwidth) else g.nlon
    if dtype == torch.float64 and dev.type == "cpu":
        return _plan_float64(g.kind, g.bandwidth, L, n)
    return _plan_cast(g.kind, g.bandwidth, L, n, str(dtype).removeprefix("torch."), str(dev))


def check_degrees(degrees: object, bandwidth: int, name: str = "degrees") -> int:
    """``degrees`` (an int L with 1 <= L <= the grid's bandwidth): a grid of bandwidth B resolves
    the degrees l < B, so no transform on it can ask for more."""
    L = check_bandwidth(degrees, name)
    if L > bandwidth:
        raise ValueError(f"{name}: expected at most the grid's bandwidth {bandwidth} (a grid of bandwidth B"
                         f" resolves degrees l < B), got {L}")
    return L


# Two layouts of grid samples, one Legendre stage. "Maps first" ``[B, nlat, nlon]`` is the public
# layout (the longitude stage is an FFT with one transposing copy each way). "Points first"
# ``[nlon, nlat, B]`` is the layout of grids that only a pointwise function sees
# (:func:`apply_on_grid`): its longitude stage is one matrix product with the (cos, sin) table of
# the L orders (:attr:`LegendrePlan.dft`), and nothing is transposed across the maps (measured at
# b = 30 on the 120 x 120 grid, batch 512 float32: synthesis 20 -> 13 ms, analysis 16 -> 10 ms).
# Columns of the Legendre stage: (map, re/im) for maps first, (re/im, map) for points first.
_COLUMNS = {"maps_first": (2, 1, 0, 3), "points_first": (2, 1, 3, 0)}  # view_as_real(c) [B, l, m, 2] -> [m, l, ...]


def _legendre_analysis(V: torch.Tensor, w: torch.Tensor, p: LegendrePlan) -> torch.Tensor:
    """Order-major ring values ``V [L(m), nlat, *cols]`` (any strides), ring weights ``w [nlat]``
    -> ``[L(l), L(m), ncols]``: ``sum_j w_j Pbar(l, m, t_j) V[m, j]`` (a view; m > l reads 0)."""
    b, nN, (h0, h1), (s0, s1) = p.degrees, p.n_north, p.paired, p.south
    cols = V.shape[2:]
    C = math.prod(cols)
    wv = w.view(-1, *([1] * len(cols)))
    if p.dense is not None:
        xm = torch.empty(b, p.nlat, *cols, dtype=V.dtype, device=V.device)
        torch.mul(V, wv, out=xm)  # the one transposing copy, weights folded in
        return torch.bmm(p.dense, xm.view(b, p.nlat, C)).transpose(0, 1)  # [m, l, C] -> [l, m, C]
    # even/odd parts in the layout the matmul wants: eo[m, parity, j, *cols], weights folded in
    eo = torch.empty(b, 2, nN, *cols, dtype=V.dtype, device=V.device)
    torch.mul(V[:, :nN], wv[:nN], out=eo[:, 0])
    eo[:, 1] = eo[:, 0]
    xs = V[:, s0:s1].flip(1) * wv[h0:h1]  # mirror rows, same weights
    eo[:, 0, h0:h1] += xs
    eo[:, 1, h0:h1] -= xs
    eo = eo.view(2 * b, nN, C)
    packed = torch.empty(p.slot.numel() + 1, C, dtype=V.dtype, device=V.device)
    o = 0
    for q0, q1, t in p.chunks:
        n = t.shape[0] * t.shape[1]
        torch.bmm(t, eo[q0:q1], out=packed[o : o + n].view(t.shape[0], t.shape[1], C))
        o += n
    packed[o] = 0  # the row that m > l entries read
    return packed[p.gather].view(b, b, C)


def _legendre_synthesis(c: torch.Tensor, p: LegendrePlan, layout: str) -> torch.Tensor:
    """``[B, L, L]`` complex -> ``Y [L(m), nlat, C]``: ``sum_l f^m_l Pbar(l, m, t_j)`` per order,
    columns C = 2B in the ``layout``'s order."""
    B, b, nN, (h0, h1), (s0, s1) = c.shape[0], p.degrees, p.n_north, p.paired, p.south
    cr = torch.view_as_real(c.resolve_conj())
    rdt = cr.dtype
    Y = torch.empty(b, p.nlat, 2 * B, dtype=rdt, device=c.device)  # [m, ring, cols]
    order = _COLUMNS[layout]
    if p.dense is not None:
        cm = cr.permute(*order).contiguous().view(b, b, 2 * B)  # [m, l, cols]
        torch.bmm(p.dense.transpose(1, 2), cm, out=Y)
        return Y
    C = cr.permute(order[1], order[0], *order[2:]).contiguous().view(b * b, 2 * B)  # [(l m), cols]
    packed = C[p.slot]  # padding rows read (0, 0); their table rows are zero
    G = torch.empty(2 * b, nN, 2 * B, dtype=rdt, device=c.device)  # [q = 2m + parity, j, cols]
    o = 0
    for q0, q1, t in p.chunks:
        n = t.shape[0] * t.shape[1]
        torch.bmm(t.transpose(1, 2), packed[o : o + n].view(t.shape[0], t.shape[1], -1), out=G[q0:q1])
        o += n
    G = G.view(b, 2, nN, 2 * B)
    ge, go = G[:, 0], G[:, 1]
    torch.add(ge, go, out=Y[:, :nN])
    Y[:, s0:s1] = (ge[:, h0:h1] - go[:, h0:h1]).flip(1)  # mirror rows: Pbar(-t) = (-1)^(l+m) Pbar(t)
    return Y


def _analysis_torch(x: torch.Tensor, p: LegendrePlan, w: torch.Tensor) -> torch.Tensor:
    """``[B, nlat, nlon]`` real -> ``[B, L, L]``: ``sum_j w_j Pbar(l,m,t_j) (1/nlon) sum_k x e^{-im phi_k}``
    for l, m < L = ``p.degrees`` (only the L lowest orders of the FFT are read).

    With ``w = 2 pi w_j`` this is the sft; with ``w = nlon`` it is the adjoint of the synthesis.
    """
    B, b = x.shape[0], p.degrees
    X = torch.view_as_real(torch.fft.rfft(x, dim=-1, norm="forward"))[:, :, :b]  # [B, nlat, b, 2]
    Q = _legendre_analysis(X.permute(2, 1, 0, 3), w, p)  # [l, m, (B re/im)]
    return torch.view_as_complex(Q.view(b, b, B, 2).permute(2, 0, 1, 3).contiguous())


def _synthesis_torch(c: torch.Tensor, p: LegendrePlan, ring_scale: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, L, L]`` complex -> ``[B, nlat, nlon]`` real: ``sum_l f^0_l Y^0_l + 2 Re sum_{m>0} f^m_l Y^m_l``
    on the plan's grid (L = ``p.degrees`` <= its bandwidth), ring j times ``ring_scale[j]`` if given.

    The matmuls (batched over m) give ``Y[m, ring, B re/im]``; one complex copy moves it into the
    irfft's input ``[B, ring, m]`` (zero for m >= L). Of the layouts tried, that copy is the
    cheapest in the interleaved timing of benchmarks/peers_sht.py.
    """
    B, b = c.shape[0], p.degrees
    Y = _legendre_synthesis(c, p, "maps_first")
    if ring_scale is not None:  # rings scaled before the irfft: on L of the nlon/2 + 1 frequencies
        Y.mul_(ring_scale[None, :, None])
    nf = p.nlon // 2 + 1  # irfft's input length: give it exactly that, so it does not pad
    F = torch.empty(B, p.nlat, nf, dtype=c.dtype, device=c.device)
    F[..., b:] = 0
    F[..., :b] = torch.view_as_complex(Y.view(b, p.nlat, B, 2)).permute(2, 1, 0)
    return torch.fft.irfft(F, n=p.nlon, dim=-1, norm="forward")


def _analysis_points_first(x: torch.Tensor, p: LegendrePlan, w: torch.Tensor) -> torch.Tensor:
    """As :func:`_analysis_torch` for samples in the points-first layout ``[nlon, nlat, B]``."""
    B, b = x.shape[-1], p.degrees
    X = torch.mm(p.dft[1], x.reshape(p.nlon, -1)).view(2, b, p.nlat, B)  # [re/im, m, j, B]
    Q = _legendre_analysis(X.permute(1, 2, 0, 3), w, p)  # [l, m, (re/im B)]
    return torch.view_as_complex(Q.view(b, b, 2, B).permute(3, 0, 1, 2).contiguous())


def _synthesis_points_first(c: torch.Tensor, p: LegendrePlan, ring_scale: torch.Tensor | None = None
                            ) -> torch.Tensor:
    """As :func:`_synthesis_torch`, writing the points-first layout ``[nlon, nlat, B]``."""
    B, b = c.shape[0], p.degrees
    Y = _legendre_synthesis(c, p, "points_first").view(b, p.nlat, 2, B)
    Z = torch.empty(2, b, p.nlat, B, dtype=Y.dtype, device=Y.device)  # [re/im, m, j, B]
    if ring_scale is None:
        Z.copy_(Y.permute(2, 0, 1, 3))
    else:
        torch.mul(Y.permute(2, 0, 1, 3), ring_scale[None, None, :, None], out=Z)
    return torch.mm(p.dft[0], Z.view(2 * b, -1)).view(p.nlon, p.nlat, B)


def _m_weights(b: int, mpos: float, like: torch.Tensor) -> torch.Tensor:
    f = torch.full((b,), mpos, dtype=like.real.dtype, device=like.device)
    f[0] = 1.0
    return f


#: (analysis, synthesis) kernels of the torch path per sample layout.
_KERNELS = {"maps_first": (_analysis_torch, _synthesis_torch),
            "points_first": (_analysis_points_first, _synthesis_points_first)}
LAYOUTS = tuple(_KERNELS)


class _TorchSFT(torch.autograd.Function):
    """The torch path's sft. It is linear, so its forward-mode derivative (``jvp``, used by
    ``torch.func.jvp`` and the Lie derivative) is the sft of the tangent; backward
    ``grad_x = w * synthesis(g with m > 0 halved)`` is the exact adjoint (the kernels write into
    preallocated buffers, which autograd cannot trace)."""

    @staticmethod
    def forward(x: torch.Tensor, p: LegendrePlan, layout: str) -> torch.Tensor:  # type: ignore[override]
        return _KERNELS[layout][0](x, p, p.wscale)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.p, ctx.layout = inputs[1], inputs[2]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        p = ctx.p
        # d y / d x_jk = 2 pi w_j / nlon conj(Y)
        return _KERNELS[ctx.layout][1](g * _m_weights(p.degrees, 0.5, g), p, p.wscale / p.nlon), None, None

    @staticmethod
    def jvp(ctx, x_t: torch.Tensor, *_) -> torch.Tensor:  # type: ignore[override]
        return _KERNELS[ctx.layout][0](x_t.contiguous(), ctx.p, ctx.p.wscale)


class _TorchISFT(torch.autograd.Function):
    """The torch path's isft (linear: ``jvp`` is the isft of the tangent); backward
    ``grad_c = 2^[m>0] sum_x g conj(Y)``, Im of m = 0 dropped."""

    @staticmethod
    def forward(c: torch.Tensor, p: LegendrePlan, layout: str) -> torch.Tensor:  # type: ignore[override]
        return _KERNELS[layout][1](c, p)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.p, ctx.layout = inputs[1], inputs[2]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        p = ctx.p
        ones = torch.full((p.nlat,), float(p.nlon), dtype=g.dtype, device=g.device)
        gc = _KERNELS[ctx.layout][0](g.contiguous(), p, ones) * _m_weights(p.degrees, 2.0, g)
        gc[:, :, 0] = gc[:, :, 0].real
        return gc, None, None

    @staticmethod
    def jvp(ctx, c_t: torch.Tensor, *_) -> torch.Tensor:  # type: ignore[override]
        return _KERNELS[ctx.layout][1](c_t, ctx.p)


# --------------------------------------------------------------------------- the ducc0 path
def _ducc_args(g: Grid, L: int) -> dict:
    # Our [l, m] square layout of degrees < L: entry (l, m) at index l*L + m = mstart[m] + l*lstride.
    # Below b = 64 one map is too small to split across threads: with torch's threads idling
    # (spinning) beside it, 2 threads measured 2x slower than 1 in the equivariance harness.
    threads = torch.get_num_threads() if g.bandwidth >= 64 else 1
    return dict(spin=0, lmax=L - 1, mmax=L - 1, geometry=_DUCC_GEOMETRY[g.kind],
                mstart=np.arange(L, dtype=np.uintp), lstride=L, nthreads=threads)


def _m_factor(b: int, dtype: np.dtype, m0: float, mpos: float) -> np.ndarray:
    f = np.full((b, b), mpos, dtype=dtype)
    f[:, 0] = m0
    return f


def _ducc_synthesis(c: np.ndarray, g: Grid, ringfactor: np.ndarray | None = None) -> np.ndarray:
    """``[B, L, L]`` -> ``[B, nlat, nlon]`` on the grid g (bandwidth >= L): sum_lm c Y (m > 0
    twice), rings scaled by ringfactor."""
    import ducc0

    B, L = c.shape[0], c.shape[-1]
    out = np.empty((B, g.nlat, g.nlon), dtype=np.float32 if c.dtype == np.complex64 else np.float64)
    args = _ducc_args(g, L)
    for i in range(B):
        ducc0.sht.experimental.synthesis_2d(alm=c[i].reshape(1, -1), map=out[i : i + 1],
                                            ringfactor=ringfactor, **args)
    return out


def _ducc_adjoint_synthesis(x: np.ndarray, g: Grid, L: int, ringfactor: np.ndarray | None = None) -> np.ndarray:
    """``[B, nlat, nlon]`` on the grid g -> ``[B, L, L]``: ``sum_jk r_j x_jk conj(Y^m_l)``, m >= 0."""
    import ducc0

    B = x.shape[0]
    out = np.zeros((B, L * L), dtype=np.complex64 if x.dtype == np.float32 else np.complex128)
    args = _ducc_args(g, L)
    for i in range(B):
        ducc0.sht.experimental.adjoint_synthesis_2d(map=x[i : i + 1], alm=out[i : i + 1],
                                                    ringfactor=ringfactor, **args)
    return out.reshape(B, L, L)


def _quadrature_rings(g: Grid) -> np.ndarray:
    return 2 * np.pi / g.nlon * g.weights


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().resolve_conj().resolve_neg().contiguous().numpy()


def _ducc_analysis(x: np.ndarray, g: Grid, L: int) -> np.ndarray:
    """The quadrature sum ``[B, nlat, nlon]`` -> ``[B, L, L]``: the adjoint synthesis of the map
    weighted by the grid's quadrature rings. (ducc0's ``analysis_2d`` equals this sum on DH and GL
    at L = b, but on F1 ("soft") it inverts the synthesis instead, which differs for signals beyond
    the bandlimit; the weighted adjoint is the sum on every grid, for every L.)"""
    return _ducc_adjoint_synthesis(x, g, L, _quadrature_rings(g))


class _DuccSFT(torch.autograd.Function):
    """``[B, nlat, nlon]`` on the grid g -> ``[B, L, L]``, the quadrature sum (linear: ``jvp``
    transforms the tangent). Backward: ``grad_x = Re(sum_{m>=0} gr Y) w``: ducc0's adjoint with
    m > 0 halved (ducc0 counts each m > 0 coefficient twice, for +m and -m; torch's
    real-to-complex gradient counts it once)."""

    @staticmethod
    def forward(x: torch.Tensor, g: Grid, L: int) -> torch.Tensor:  # type: ignore[override]
        return torch.from_numpy(_ducc_analysis(_np(x), g, L))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.g, ctx.L = inputs[1], inputs[2]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gr: torch.Tensor):  # type: ignore[override]
        gn = _np(gr)
        gn = gn * _m_factor(gn.shape[-1], gn.dtype, 1.0, 0.5)
        return torch.from_numpy(_ducc_synthesis(gn, ctx.g, _quadrature_rings(ctx.g))), None, None

    @staticmethod
    def jvp(ctx, x_t: torch.Tensor, *_):  # type: ignore[override]
        return _DuccSFT.apply(x_t, ctx.g, ctx.L)


class _DuccISFT(torch.autograd.Function):
    """``[B, L, L]`` -> ``[B, nlat, nlon]`` on the grid g (linear: ``jvp`` synthesizes the
    tangent); backward: ``grad_c = 2^[m>0] sum_x gr conj(Y)``."""

    @staticmethod
    def forward(c: torch.Tensor, g: Grid) -> torch.Tensor:  # type: ignore[override]
        return torch.from_numpy(_ducc_synthesis(_np(c), g))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.g, ctx.L = inputs[1], inputs[0].shape[-1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gr: torch.Tensor):  # type: ignore[override]
        gc = _ducc_adjoint_synthesis(_np(gr), ctx.g, ctx.L)
        gc *= _m_factor(ctx.L, gc.dtype, 1.0, 2.0)  # each m > 0 stands for +m and -m
        gc[:, :, 0].imag = 0.0  # Im f^0_l does not enter the signal
        return torch.from_numpy(gc), None

    @staticmethod
    def jvp(ctx, c_t: torch.Tensor, *_):  # type: ignore[override]
        return _DuccISFT.apply(c_t, ctx.g)


# --------------------------------------------------------------------------- checks and public API
# Default backend on the CPU: ducc0 from this bandwidth up, the torch path below it. Measured on
# 2 cores (docs/results/speed.md; training steps of the esteves_mnist preset): below b = 128 the torch
# path's batched matmuls beat ducc0's one-call-per-map loop (3-4x on a batch of 32 x 16 maps at
# b = 20-30, 1.3-1.8x at batch 16 in the peer table); at b = 128 they are even, above ducc0 wins.
DUCC0_MIN_BANDWIDTH = 128


def _check_backend(backend: str | None, device: torch.device, b: int) -> str:
    if backend is None:
        return "ducc0" if device.type == "cpu" and b >= DUCC0_MIN_BANDWIDTH else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown backend {backend!r}; valid backends are {list(BACKENDS)}")
    if backend == "ducc0" and device.type != "cpu":
        raise ValueError(f"backend: 'ducc0' runs on the CPU only, got a tensor on {device}")
    return backend


def _check_finite(t: torch.Tensor, name: str) -> None:
    # One reduction is enough: a finite sum means every entry is finite (nan/inf propagate); the
    # full check only runs when the sum overflowed or something really is non-finite. On the CPU
    # the sum runs in numpy: a torch op here leaves torch's OpenMP workers spinning, and on two
    # cores they take the cores from ducc0's threads (measured: ~7 ms of ~20 at b = 256).
    if t.device.type == "cpu" and not torch._C._functorch.is_functorch_wrapped_tensor(t):
        a = t.detach().resolve_conj().resolve_neg().numpy()
        with np.errstate(over="ignore", invalid="ignore"):
            total = a.sum()
        if np.isfinite(total) or np.isfinite(a).all():
            return
        bad = int((~np.isfinite(a)).sum())
    else:
        if bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all()):
            return
        bad = int((~torch.isfinite(t)).sum())
    raise ValueError(f"{name}: expected finite values, got {bad} nan/inf entries")


def check_signal(x: object, kind: str, check_finite: bool = False) -> int:
    """Validate a real grid signal ``[..., nlat, nlon]``; return its bandwidth. The finite-value
    check (a full pass over the data, which stalls a GPU) only when asked."""
    check_kind(kind)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.layout != torch.strided:
        raise TypeError(f"x: expected a dense (strided) tensor, got layout {x.layout}; use x.to_dense()")
    if x.dtype not in _REAL_DTYPES:
        raise TypeError(f"x: expected a real float32 or float64 tensor, got dtype {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"x: expected shape [..., nlat, nlon], got shape {tuple(x.shape)}")
    b = bandwidth_from_shape(tuple(x.shape[-2:]), kind)
    if check_finite:
        _check_finite(x, "x")
    return b


def check_coefficients(c: object, name: str = "coeffs", check_finite: bool = False) -> int:
    """Validate coefficients ``[..., b, b]`` complex; return b (finite values only when asked)."""
    if not isinstance(c, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(c).__name__}")
    if c.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense (strided) tensor, got layout {c.layout}; use .to_dense()")
    if c.dtype not in _COMPLEX_DTYPES:
        raise TypeError(f"{name}: expected a complex64 or complex128 tensor [..., l, m], got dtype {c.dtype}")
    if c.dim() < 2 or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{name}: expected shape [..., b, b] (l, m), got shape {tuple(c.shape)}")
    if c.shape[-1] < 1:
        raise ValueError(f"{name}: bandwidth must be >= 1, got b = {c.shape[-1]}")
    if check_finite:
        _check_finite(c, name)
    return int(c.shape[-1])


def _tracked(t: torch.Tensor) -> bool:
    """Whether autograd (backward or forward mode, torch.func) may need the transform's derivative:
    only then does a call go through the autograd.Function (its overhead is ~50 us a call)."""
    if t.requires_grad or torch._C._functorch.is_functorch_wrapped_tensor(t):
        return True
    return torch.autograd.forward_ad.unpack_dual(t).tangent is not None


def _check_size(batch: int, b: int, nlat: int, nlon: int, itemsize: int, what: str) -> None:
    # the samples, the coefficients and the transform's work buffers (about twice the larger)
    check_fits(batch * (nlat * nlon + 2 * b * b) * itemsize * 3, f"{what} of {batch} maps at bandwidth {b}")


def analysis(x: torch.Tensor, g: Grid, degrees: int, backend: str | None = None,
             layout: str = "maps_first") -> torch.Tensor:
    """Samples on the grid ``g`` -> ``[N, L, L]`` coefficients of degrees < L = ``degrees`` (the
    quadrature sum; arguments already validated). Samples are ``[N, nlat, nlon]``, or
    ``[nlon, nlat, N]`` with ``layout="points_first"``. Differentiable."""
    be = _check_backend(backend, x.device, g.bandwidth)
    first = layout == "maps_first"
    n = x.shape[0] if first else x.shape[-1]
    cdt = torch.complex64 if x.dtype == torch.float32 else torch.complex128
    if n == 0:
        return torch.zeros(0, degrees, degrees, dtype=cdt, device=x.device)
    _check_size(n, degrees, g.nlat, g.nlon, x.element_size(), "sft")
    grad = _tracked(x)
    if be == "ducc0":
        if not first:
            x = x.permute(2, 1, 0)
        return _DuccSFT.apply(x, g, degrees) if grad else torch.from_numpy(_ducc_analysis(_np(x), g, degrees))
    p = _plan_for(g, degrees, x.dtype, x.device)
    return _TorchSFT.apply(x, p, layout) if grad else _KERNELS[layout][0](x, p, p.wscale)


def synthesis(c: torch.Tensor, g: Grid, backend: str | None = None, layout: str = "maps_first") -> torch.Tensor:
    """``[N, L, L]`` coefficients -> samples on the grid ``g`` (bandwidth >= L; arguments
    already validated): ``[N, nlat, nlon]``, or ``[nlon, nlat, N]`` with
    ``layout="points_first"``. Differentiable."""
    L = c.shape[-1]
    be = _check_backend(backend, c.device, g.bandwidth)
    first = layout == "maps_first"
    rdt = torch.float32 if c.dtype == torch.complex64 else torch.float64
    if c.shape[0] == 0:
        return torch.zeros((0, g.nlat, g.nlon) if first else (g.nlon, g.nlat, 0), dtype=rdt, device=c.device)
    _check_size(c.shape[0], L, g.nlat, g.nlon, rdt.itemsize, "isft")
    grad = _tracked(c)
    if be == "ducc0":
        out = _DuccISFT.apply(c, g) if grad else torch.from_numpy(_ducc_synthesis(_np(c), g))
        return out if first else out.permute(2, 1, 0)
    p = _plan_for(g, L, rdt, c.device)
    return _TorchISFT.apply(c, p, layout) if grad else _KERNELS[layout][1](c, p)


def sft(x: torch.Tensor, kind: str = "dh", *, degrees: int | None = None, backend: str | None = None,
        check_finite: bool = False) -> torch.Tensor:
    """Spherical Fourier transform of real signals.

    x: ``[..., nlat, nlon]`` float32/float64 on the ``kind`` grid of bandwidth b (any strides;
    an empty batch gives an empty result). Returns ``[..., L, L]`` complex64/complex128
    coefficients ``f^m_l`` at ``[..., l, m]`` for the degrees ``l < L = degrees`` (default b; at
    most b). The quadrature sum of the grid, whatever L: only the Legendre work of degrees < L is
    done. It is the exact projection when the grid's quadrature is exact for ``x conj(Y^m_l)``
    (docs/conventions.md, "Fewer degrees than the grid holds").
    backend: "ducc0" or "torch"; default ducc0 on the CPU from b = 128 up (DUCC0_MIN_BANDWIDTH),
    the torch path otherwise. Both compute the same quadrature and are differentiable.
    check_finite: refuse NaN/Inf samples (a pass over the data; off in the per-layer hot path,
    where NaN simply propagates).
    """
    b = check_signal(x, kind, check_finite)
    L = b if degrees is None else check_degrees(degrees, b)
    out = analysis(x.reshape(-1, *x.shape[-2:]), _grid(kind, b, None), L, backend)
    return out.reshape(*x.shape[:-2], L, L)


def isft(coeffs: torch.Tensor, kind: str = "dh", *, grid_bandwidth: int | None = None, backend: str | None = None,
         check_finite: bool = False) -> torch.Tensor:
    """Inverse transform: ``[..., L, L]`` complex coefficients -> ``[..., nlat, nlon]`` real signal
    on the ``kind`` grid of bandwidth ``grid_bandwidth`` (default L; at least L): evaluating a
    band-limited signal on a finer grid costs only the Legendre work of its own degrees.

    Entries with m > l and the imaginary part of ``f^0_l`` are ignored. Conjugate and other views
    are accepted; an empty batch gives an empty result.
    """
    check_kind(kind)
    L = check_coefficients(coeffs, check_finite=check_finite)
    if grid_bandwidth is None:
        b = L
    else:
        b = check_bandwidth(grid_bandwidth, "grid_bandwidth")
        if b < L:
            raise ValueError(f"grid_bandwidth: expected at least the coefficients' bandwidth {L} (a grid of"
                             f" bandwidth B holds degrees l < B; truncate with resize_coefficients first), got {b}")
    nlat, nlon = grid_shape(kind, b)
    _check_size(math.prod(coeffs.shape[:-2]), L, nlat, nlon, coeffs.real.element_size(),
                "isft" if b == L else f"isft onto the grid of bandwidth {b}")  # before the grid is built
    g = grid(kind, b)
    out = synthesis(coeffs.reshape(-1, L, L), g, backend)
    return out.reshape(*coeffs.shape[:-2], g.nlat, g.nlon)


def _points_first(L: int, g: Grid, backend: str) -> bool:
    """Whether :func:`apply_on_grid` runs the points-first kernels (one matmul per longitude stage,
    O(L nlon) per ring) rather than the FFT (maps first; f then sees a permuted view): on the
    torch path with the dense tables (L <= 32), where they measured faster (b = 30, 512 maps,
    float32: 7 / 7 ms against 10 / 10 synthesis / analysis on 60 x 60, 17 / 19 against 27 / 18 on
    120 x 120). At b = 64 the two are within the noise of this machine (the layer s = 1.5:
    270 - 285 ms points first, 200 - 275 ms maps first), and the FFT's O(nlon log nlon) wins as
    the grid grows."""
    return backend == "torch" and L <= DENSE_MAX_BANDWIDTH


def apply_on_grid(coeffs: torch.Tensor, f: Callable[[torch.Tensor], torch.Tensor], g: Grid,
                  backend: str | None = None) -> torch.Tensor:
    """``[N, *mid, b, b]`` -> ``[N, *mid, b, b]``: ``P_b sft(f(isft(c)))`` on the grid ``g`` of
    bandwidth >= b (any longitude count, e.g. :func:`~harness.sphere.grids.min_exact_grid`): one
    synthesis of the b degrees onto g, f there, one analysis of the b degrees kept.

    f receives the samples points first, ``[nlon, nlat, n, *mid]`` (the layout whose longitude
    stage needs no transpose across the maps), and must return that shape: it may mix the
    ``*mid`` dims (channels: a matmul on the last dim) but not grid points.

    Without autograd the first dim goes through g in groups of at most as many grid samples as the
    coefficients have entries, or 2^22 (32 MiB in float64), whichever is more, so the grid never
    holds the whole batch at once; with autograd every intermediate is kept for backward anyway.
    """
    L = check_coefficients(coeffs)
    if coeffs.dim() < 3:
        raise ValueError(f"coeffs: expected [N, ..., b, b] (a leading batch dim), got {tuple(coeffs.shape)}")
    if L > g.bandwidth:
        raise ValueError(f"g: a grid of bandwidth {g.bandwidth} cannot hold coefficients of bandwidth {L}")
    mid = coeffs.shape[1:-2]
    k = len(mid)
    first = not _points_first(L, g, _check_backend(backend, coeffs.device, g.bandwidth))
    layout = "maps_first" if first else "points_first"
    to_points = (k + 2, k + 1, *range(k + 1))  # [n, *mid, nlat, nlon] -> [nlon, nlat, n, *mid]
    to_maps = (*range(2, k + 3), 1, 0)

    def one(c: torch.Tensor) -> torch.Tensor:
        u = synthesis(c.reshape(-1, L, L), g, backend, layout)
        u = u.view(c.shape[0], *mid, g.nlat, g.nlon).permute(to_points) if first else \
            u.view(g.nlon, g.nlat, c.shape[0], *mid)
        y = f(u)
        y = y.permute(to_maps).reshape(-1, g.nlat, g.nlon) if first else y.reshape(g.nlon, g.nlat, -1)
        return analysis(y, g, L, backend, layout).view(c.shape)

    n = coeffs.shape[0]
    per_item = max(1, math.prod(mid) * g.nlat * g.nlon)
    group = max(1, max(coeffs.numel(), _GROUP_MIN_ELEMENTS) // per_item)
    if group >= n or _tracked(coeffs):
        return one(coeffs)
    return torch.cat([one(coeffs[i : i + group]) for i in range(0, n, group)])


_GROUP_MIN_ELEMENTS = 1 << 22  # 32 MiB of float64 grid samples


#: Out-of-band energy fraction above which a grid signal is not band-limited (per real dtype).
BANDLIMIT_TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def out_of_band(x: torch.Tensor, kind: str, c: torch.Tensor | None = None) -> torch.Tensor:
    """``[*S]`` fraction ``||x - isft(sft(x))||^2 / ||x||^2`` of each grid signal ``[*S, nlat, nlon]``
    (unweighted over the samples, so a pole row with zero quadrature weight counts too); 0 for a
    band-limited signal (and for a zero one). ``c``: ``sft(x)`` when already at hand."""
    x = x.detach()
    c = sft(x, kind) if c is None else c.detach()
    r = (x - isft(c, kind)).double().square().sum((-1, -2))
    tot = x.double().square().sum((-1, -2))
    return torch.where(tot > 0, r / tot.clamp_min(1e-300), torch.zeros_like(r))


def check_band_limited(x: torch.Tensor, kind: str, name: str, c: torch.Tensor | None = None) -> None:
    """Refuse grid signals that are not band-limited on their grid (BANDLIMIT_TOLERANCE): an exact
    rotation (or any operation defined through the coefficients) of them is not defined."""
    if x.numel() == 0:
        return
    frac = float(out_of_band(x, kind, c).max())
    tol = BANDLIMIT_TOLERANCE[x.dtype]
    if frac > tol:
        b = x.shape[-1] // 2 if kind != "gl" else x.shape[-2]
        raise ValueError(f"{name}: not band-limited on the {kind!r} grid: {frac:.2e} of a signal's energy (the worst)"
                         f" lies outside the degrees < {b} the grid represents (limit {tol:g} for {x.dtype});"
                         " pass project=True to use its band-limited part")


def resize_coefficients(coeffs: torch.Tensor, bandwidth: int) -> torch.Tensor:
    """Truncate (low-pass) or zero-pad ``[..., b, b]`` coefficients to ``[..., bandwidth, bandwidth]``."""
    check_coefficients(coeffs)
    bandwidth = check_bandwidth(bandwidth)
    b = coeffs.shape[-1]
    check_fits(math.prod(coeffs.shape[:-2]) * bandwidth * bandwidth * coeffs.element_size(),
               f"{math.prod(coeffs.shape[:-2])} coefficient sets at bandwidth {bandwidth}")
    if bandwidth <= b:
        return coeffs[..., :bandwidth, :bandwidth]
    pad = bandwidth - b
    return torch.nn.functional.pad(coeffs, (0, pad, 0, pad))


def degree_norms(coeffs: torch.Tensor) -> torch.Tensor:
    """``[..., b]`` L2 norms of the degree-l coefficient vectors (all 2l+1 orders, m < 0 included):
    ``||f_l||^2 = |f^0_l|^2 + 2 sum_{m>0} |f^m_l|^2``. Rotation invariant; its gradient at a zero
    vector is 0 (``torch.linalg.vector_norm``), not nan."""
    b = check_coefficients(coeffs)
    w = torch.full((b,), math.sqrt(2.0), dtype=coeffs.real.dtype, device=coeffs.device)
    w[0] = 1.0
    return torch.linalg.vector_norm(torch.view_as_real(coeffs * w), dim=(-2, -1))


__all__ = ["BACKENDS", "sft", "isft", "resize_coefficients", "degree_norms", "legendre_plan",
           "LegendrePlan", "check_signal", "check_coefficients", "check_degrees", "analysis", "synthesis",
           "apply_on_grid", "LAYOUTS", "BANDLIMIT_TOLERANCE", "out_of_band", "check_band_limited"]
