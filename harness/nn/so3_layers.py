"""The layers of Cohen et al.'s spherical CNNs (ICLR 2018): features on SO(3).

Grid signals: S^2 ``[batch, channels, nlat, nlon]`` (the model's grid kind) in, SO(3)
``[batch, channels, 2b, 2b, 2b]`` (SOFT grid, docs/conventions.md) after the first correlation.

* :class:`S2ToSO3Conv`  ``[f * psi](R) = int_S2 sum_i psi_i(R^-1 x) f_i(x) dx`` (Cohen eq. 4):
  ``F^l_{mn} = sum_i f^l_{m,i} conj(psi^l_{n,i})``, output on SO(3)
* :class:`SO3Conv`      ``[f * psi](R) = int_SO3 sum_i psi_i(R^-1 h) f_i(h) dh`` (eq. 5):
  ``G^l = 8 pi^2/(2l+1) sum_i F^l_i Psi^lH_i`` (Psi^H: conjugate transpose)
* :class:`SO3Pointwise` the pointwise nonlinearity on the SOFT grid, optionally oversampled
* :class:`SO3Pool`      low-pass to a smaller bandwidth (spectral pooling)
* :class:`SO3Integrate` ``(1/8 pi^2) int f dg`` per channel (Cohen's invariant), ``[B, C]``
* :class:`SO3Descriptor` per-degree norms ``||f^l||_F`` (invariant), ``[B, C b]``

Filters are localized as in the paper: a weighted sum of point masses on a small grid near the
identity (S^2: near the north pole), ``psi = sum_k w_k delta_{x_k}``, band-limited to the output
bandwidth. For a signal of bandwidth <= b_out the correlation is then exactly
``sum_k w_k f(R x_k)`` (S^2) or ``sum_k w_k f(R g_k)`` (SO(3)), the identity the tests check.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..sphere.fields import Field, Invariant, SO3Grid
from ..sphere.grids import bandwidth_from_shape, check_bandwidth, check_kind, grid
from ..sphere.legendre import legendre_table
from ..sphere.so3 import euler_zyz_to_matrix
from ..sphere.so3_transforms import (so3_bandwidth_from_shape, so3_degree_norms, so3_fft, so3_ifft,
                                     so3_resize_coefficients)
from ..sphere.transforms import resize_coefficients, sft
from ..sphere.wigner import wigner_D
from .layers import check_activation, check_bool, check_oversampling

DEFAULT_MAX_BETA = math.pi / 8


# --------------------------------------------------------------------------- kernel grids
def s2_near_identity_grid(max_beta: float = DEFAULT_MAX_BETA, n_beta: int = 3, n_alpha: int = 8) -> np.ndarray:
    """``[n_beta n_alpha, 2]`` (beta, alpha): rings at ``beta = k max_beta / n_beta`` (k = 1..n_beta)
    around the north pole, ``n_alpha`` points each (s2cnn's localized S^2 kernel support)."""
    beta = np.arange(1, n_beta + 1) * max_beta / n_beta
    alpha = np.arange(n_alpha) * 2 * np.pi / n_alpha
    B, A = np.meshgrid(beta, alpha, indexing="ij")
    return np.stack([B.ravel(), A.ravel()], axis=1)


def so3_near_identity_grid(max_beta: float = DEFAULT_MAX_BETA, n_beta: int = 3, n_alpha: int = 8,
                           max_gamma: float = DEFAULT_MAX_BETA, n_gamma: int = 3) -> np.ndarray:
    """``[n_beta n_alpha n_gamma, 3]`` ZYZ angles (alpha, beta, gamma) near the identity: a tilt
    ``Rz(a) Ry(b) Rz(-a)`` by beta towards azimuth alpha, then a twist t in
    ``linspace(-max_gamma, max_gamma, n_gamma)`` about z, i.e. gamma = t - alpha (as s2cnn)."""
    beta = np.arange(1, n_beta + 1) * max_beta / n_beta
    alpha = np.arange(n_alpha) * 2 * np.pi / n_alpha
    twist = np.linspace(-max_gamma, max_gamma, n_gamma) if n_gamma > 1 else np.zeros(1)
    B, A, T = np.meshgrid(beta, alpha, twist, indexing="ij")
    return np.stack([A.ravel(), B.ravel(), (T - A).ravel()], axis=1)


@functools.lru_cache(maxsize=32)
def kernel_table(family: str, grid_args: tuple[tuple[str, float], ...], bandwidth: int, dtype: str = "complex128",
                 device: str = "cpu") -> torch.Tensor:
    """The cached kernel table of a layer, keyed on plain values: ``family`` "s2" or "so3", the
    kernel grid's arguments, the bandwidth, the complex dtype and device names; built once in
    complex128 on the CPU and cast on use (never a buffer: ``Module.to(float)`` would drop its
    imaginary part)."""
    if dtype != "complex128" or device != "cpu":
        return kernel_table(family, grid_args, bandwidth).to(dtype=getattr(torch, dtype), device=device)
    if family == "s2":
        return s2_kernel_table(s2_near_identity_grid(**dict(grid_args)), bandwidth)
    return so3_kernel_table(so3_near_identity_grid(**dict(grid_args)), bandwidth)


def _complex_name(dtype: torch.dtype) -> str:
    return "complex128" if dtype == torch.float64 else "complex64"


def s2_kernel_table(points: np.ndarray, bandwidth: int) -> torch.Tensor:
    """``[K, b, 2b-1]`` complex128 ``Y^n_l(x_k)`` (index n + b - 1; zero for |n| > l) at the points
    ``(beta_k, alpha_k)``; ``conj(psi^l_n) = sum_k w_k Y^n_l(x_k)`` for ``psi = sum_k w_k delta_{x_k}``."""
    b = check_bandwidth(bandwidth)
    P = torch.from_numpy(legendre_table(b, points[:, 0]))  # [l, m >= 0, K]
    m = torch.arange(b, dtype=torch.float64)
    pos = P.permute(2, 0, 1) * torch.polar(torch.ones(len(points), b, dtype=torch.float64),
                                           torch.from_numpy(points[:, 1])[:, None] * m)[:, None, :]  # [K, l, m]
    neg = pos[..., 1:].flip(-1).conj() * (1 - 2 * (torch.arange(b - 1, 0, -1) % 2)).double()  # Y^-m = (-1)^m conj Y^m
    return torch.cat([neg, pos], dim=-1)


def so3_kernel_table(angles: np.ndarray, bandwidth: int) -> torch.Tensor:
    """``[Q, b, 2b-1, 2b-1]`` complex128 ``conj(D^l_{mn}(g_q))``: for ``psi = sum_q w_q delta_{g_q}``,
    ``8 pi^2/(2l+1) conj(Psi^l_{mn}) = sum_q w_q conj(D^l_{mn}(g_q))``."""
    t = torch.from_numpy(np.ascontiguousarray(angles))
    return wigner_D(check_bandwidth(bandwidth), euler_zyz_to_matrix(t[:, 0], t[:, 1], t[:, 2])).conj().resolve_conj()


# --------------------------------------------------------------------------- plain functions
def s2_so3_correlation(coeffs: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``[B, Cin, b, b]`` S^2 coefficients, ``[Cin, Cout, b, 2b-1]`` ``conj(psi^l_n)`` ->
    ``[B, Cout, b, b, 2b-1]`` SO(3) coefficients ``F^l_{mn} = sum_i f^l_{m,i} conj(psi^l_{n,i})``."""
    return torch.einsum("bilm,ioln->bolmn", coeffs, kernel)


def so3_so3_correlation(coeffs: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``[B, Cin, b, b, 2b-1]`` SO(3) coefficients, ``[Cin, Cout, b, 2b-1, 2b-1]``
    ``K^l_{mn} = 8 pi^2/(2l+1) conj(Psi^l_{mn})`` -> ``[B, Cout, b, b, 2b-1]``:
    ``G^l_{km} = sum_{i,n} F^l_{kn,i} K^l_{mn,i}``."""
    return torch.einsum("bilkn,iolmn->bolkm", coeffs, kernel)


def so3_pointwise(x: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor], oversampling: float) -> torch.Tensor:
    """sigma on the SOFT grid; with s > 1 on the grid of bandwidth ceil(s b), low-passed back to b."""
    if oversampling == 1.0:
        return act(x)
    b = so3_bandwidth_from_shape(tuple(x.shape))
    bf = math.ceil(oversampling * b - 1e-9)
    fine = so3_ifft(so3_fft(x), grid_bandwidth=bf)  # the b degrees onto the fine grid
    return so3_ifft(so3_fft(act(fine), degrees=b))  # only the b degrees kept are analysed


def so3_integrate(x: torch.Tensor) -> torch.Tensor:
    """``[..., 2b, 2b, 2b] -> [...]``: ``(1/8 pi^2) int f dg`` by the SOFT quadrature (exact for
    bandwidth b): ``(1/2) sum_j w_j mean_{k,p} f[j, k, p]``."""
    b = so3_bandwidth_from_shape(tuple(x.shape))
    # the soft grid's latitude weights are the beta weights
    w = torch.tensor(grid("soft", b).weights, dtype=x.dtype, device=x.device)
    return (x.mean((-1, -2)) * w).sum(-1) / 2


# --------------------------------------------------------------------------- modules
def _check_channels(layer: str, **kw: int) -> None:
    for name, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{layer}: {name} must be an int >= 1, got {v!r}")


def _check_kernel_grid(layer: str, max_beta: float, n_beta: int, n_alpha: int, max_gamma: float = 0.0,
                       n_gamma: int = 1) -> None:
    for name, v in (("n_beta", n_beta), ("n_alpha", n_alpha), ("n_gamma", n_gamma)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{layer}: {name} must be an int >= 1, got {v!r}")
    for name, v, hi in (("max_beta", max_beta, math.pi), ("max_gamma", max_gamma, math.pi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= hi:
            raise ValueError(f"{layer}: {name} must be a number in [0, pi], got {v!r}")


def _add_bias(c: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A constant v on SO(3) has ``f^0_{00} = v`` (D^0 = 1)."""
    if bias is None:
        return c
    c = c.clone()
    b = c.shape[-2]
    c[:, :, 0, 0, b - 1] = c[:, :, 0, 0, b - 1] + bias.to(c.real.dtype)
    return c


class S2ToSO3Conv(nn.Module):
    """``[B, Cin, S^2 grid(b_in)] -> [B, Cout, SO(3) grid(b_out)]``: S^2 correlation with learned
    localized filters on :func:`s2_near_identity_grid` (weights ``[Cin, Cout, K]``, He init
    ``N(0, 2 / (Cin K))``, bias on the constant)."""

    def __init__(self, in_channels: int, out_channels: int, bandwidth_in: int, bandwidth_out: int,
                 kind: str = "dh", max_beta: float = DEFAULT_MAX_BETA, n_beta: int = 3, n_alpha: int = 8,
                 bias: bool = True) -> None:
        super().__init__()
        _check_channels("S2ToSO3Conv", in_channels=in_channels, out_channels=out_channels)
        _check_kernel_grid("S2ToSO3Conv", max_beta, n_beta, n_alpha)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bandwidth_in = check_bandwidth(bandwidth_in, "bandwidth_in")
        self.bandwidth_out = check_bandwidth(bandwidth_out, "bandwidth_out")
        self.kind = check_kind(kind)
        self.grid_args = dict(max_beta=float(max_beta), n_beta=n_beta, n_alpha=n_alpha)
        K = n_beta * n_alpha
        self.weight = nn.Parameter(torch.randn(in_channels, out_channels, K) * math.sqrt(2.0 / (in_channels * K)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if check_bool("S2ToSO3Conv", "bias", bias) else None

    def kernel(self, dtype: torch.dtype) -> torch.Tensor:
        """``[Cin, Cout, b_out, 2 b_out - 1]`` ``conj(psi^l_n)`` in the complex dtype matching ``dtype``."""
        tab = kernel_table("s2", tuple(self.grid_args.items()), self.bandwidth_out, _complex_name(dtype),
                           str(self.weight.device))
        return torch.einsum("iok,kln->ioln", self.weight.to(dtype).to(tab.dtype), tab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"S2ToSO3Conv: expected input [batch, {self.in_channels}, nlat, nlon], got {shape}")
        b = bandwidth_from_shape(tuple(x.shape[-2:]), self.kind)
        if b != self.bandwidth_in:
            raise ValueError(f"S2ToSO3Conv: expected the {self.kind!r} grid of bandwidth {self.bandwidth_in}, got"
                             f" grid shape {tuple(x.shape[-2:])} (bandwidth {b})")
        c = resize_coefficients(sft(x, self.kind), self.bandwidth_out)
        y = _add_bias(s2_so3_correlation(c, self.kernel(x.dtype)), self.bias)
        return so3_ifft(y)

    def output_field(self, field: Field) -> Field:
        return SO3Grid(self.bandwidth_out)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, bandwidth_in={self.bandwidth_in}, bandwidth_out="
                f"{self.bandwidth_out}, kind={self.kind!r}, kernel points={self.weight.shape[-1]}")


def _check_so3_input(x: object, channels: int | None, bandwidth: int | None, layer: str) -> int:
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{layer}: expected input [batch, channels, 2b, 2b, 2b] on the SOFT grid of SO(3), got {shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer}: expected {channels} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})")
    b = so3_bandwidth_from_shape(tuple(x.shape), "x")
    if bandwidth is not None and b != bandwidth:
        raise ValueError(f"{layer}: expected the SO(3) grid of bandwidth {bandwidth} ({2 * bandwidth} per axis),"
                         f" got {tuple(x.shape[-3:])} (bandwidth {b})")
    return b


class SO3Conv(nn.Module):
    """``[B, Cin, SO(3) grid(b_in)] -> [B, Cout, SO(3) grid(b_out)]``: SO(3) correlation with
    learned localized filters on :func:`so3_near_identity_grid` (weights ``[Cin, Cout, Q]``, He
    init ``N(0, 2 / (Cin Q))``, bias on the constant)."""

    def __init__(self, in_channels: int, out_channels: int, bandwidth_in: int, bandwidth_out: int,
                 max_beta: float = DEFAULT_MAX_BETA, n_beta: int = 3, n_alpha: int = 8,
                 max_gamma: float = DEFAULT_MAX_BETA, n_gamma: int = 3, bias: bool = True) -> None:
        super().__init__()
        _check_channels("SO3Conv", in_channels=in_channels, out_channels=out_channels)
        _check_kernel_grid("SO3Conv", max_beta, n_beta, n_alpha, max_gamma, n_gamma)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bandwidth_in = check_bandwidth(bandwidth_in, "bandwidth_in")
        self.bandwidth_out = check_bandwidth(bandwidth_out, "bandwidth_out")
        self.grid_args = dict(max_beta=float(max_beta), n_beta=n_beta, n_alpha=n_alpha, max_gamma=float(max_gamma),
                              n_gamma=n_gamma)
        Q = n_beta * n_alpha * n_gamma
        self.weight = nn.Parameter(torch.randn(in_channels, out_channels, Q) * math.sqrt(2.0 / (in_channels * Q)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if check_bool("SO3Conv", "bias", bias) else None

    def kernel(self, dtype: torch.dtype) -> torch.Tensor:
        """``[Cin, Cout, b_out, 2b-1, 2b-1]`` ``8 pi^2/(2l+1) conj(Psi^l_{mn})``."""
        tab = kernel_table("so3", tuple(self.grid_args.items()), self.bandwidth_out, _complex_name(dtype),
                           str(self.weight.device))
        return torch.einsum("ioq,qlmn->iolmn", self.weight.to(dtype).to(tab.dtype), tab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_so3_input(x, self.in_channels, self.bandwidth_in, "SO3Conv")
        c = so3_resize_coefficients(so3_fft(x), self.bandwidth_out)
        return so3_ifft(_add_bias(so3_so3_correlation(c, self.kernel(x.dtype)), self.bias))

    def output_field(self, field: Field) -> Field:
        return SO3Grid(self.bandwidth_out)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, bandwidth_in={self.bandwidth_in}, bandwidth_out="
                f"{self.bandwidth_out}, kernel points={self.weight.shape[-1]}")


class SO3Pointwise(nn.Module):
    """Pointwise nonlinearity on the SOFT grid of SO(3); ``oversampling = s > 1`` applies it on the
    grid of bandwidth ceil(s b) and low-passes back to b (the anti-aliasing knob, as on S^2)."""

    def __init__(self, activation: str | Callable[[torch.Tensor], torch.Tensor] = "relu",
                 oversampling: float = 1.0) -> None:
        super().__init__()
        self.activation_name, self.act = check_activation("SO3Pointwise", activation)
        self.oversampling = check_oversampling("SO3Pointwise", oversampling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_so3_input(x, None, None, "SO3Pointwise")
        return so3_pointwise(x, self.act, self.oversampling)

    def output_field(self, field: Field) -> Field:
        return field

    def extra_repr(self) -> str:
        return f"{self.activation_name!r}, oversampling={self.oversampling}"


class SO3Pool(nn.Module):
    """Low-pass an SO(3) grid signal to ``bandwidth_out`` (default b // 2), output on that grid."""

    def __init__(self, bandwidth_out: int | None = None) -> None:
        super().__init__()
        self.bandwidth_out = None if bandwidth_out is None else check_bandwidth(bandwidth_out, "bandwidth_out")

    def output_bandwidth(self, b: int) -> int:
        return max(1, b // 2) if self.bandwidth_out is None else self.bandwidth_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = _check_so3_input(x, None, None, "SO3Pool")
        bo = self.output_bandwidth(b)
        if bo > b:
            raise ValueError(f"SO3Pool: bandwidth_out {bo} exceeds the input bandwidth {b}")
        return so3_ifft(so3_resize_coefficients(so3_fft(x), bo))

    def output_field(self, field: Field) -> Field:
        return SO3Grid(self.output_bandwidth(field.bandwidth))

    def extra_repr(self) -> str:
        return f"bandwidth_out={self.bandwidth_out}"


class SO3Integrate(nn.Module):
    """``[B, C, SO(3) grid] -> [B, C]``: the mean of each channel over SO(3) (Cohen et al.'s
    invariant before the classifier), exact by the SOFT quadrature."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_so3_input(x, None, None, "SO3Integrate")
        return so3_integrate(x)

    def output_field(self, field: Field) -> Field:
        return Invariant()


class SO3Descriptor(nn.Module):
    """``[B, C, SO(3) grid(b)] -> [B, C b]`` (``[B, C, b]`` without ``flatten``): per-degree
    Frobenius norms ``||f^l||``, invariant under rotations (D unitary)."""

    def __init__(self, flatten: bool = True) -> None:
        super().__init__()
        self.flatten = check_bool("SO3Descriptor", "flatten", flatten)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_so3_input(x, None, None, "SO3Descriptor")
        y = so3_degree_norms(so3_fft(x))
        return y.flatten(1) if self.flatten else y

    def output_field(self, field: Field) -> Field:
        return Invariant()

    def extra_repr(self) -> str:
        return f"flatten={self.flatten}"


SO3_LAYERS = (S2ToSO3Conv, SO3Conv, SO3Pointwise, SO3Pool, SO3Integrate, SO3Descriptor)

__all__ = ["S2ToSO3Conv", "SO3Conv", "SO3Pointwise", "SO3Pool", "SO3Integrate", "SO3Descriptor", "SO3_LAYERS",
           "s2_near_identity_grid", "so3_near_identity_grid", "s2_kernel_table", "so3_kernel_table", "kernel_table",
           "s2_so3_correlation", "so3_so3_correlation", "so3_pointwise", "so3_integrate"]
