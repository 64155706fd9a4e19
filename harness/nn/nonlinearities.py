"""Nonlinearities for S^2 grid signals beyond the sampled pointwise one (the frontier of issue 13).

Every layer maps ``[B, C, grid(b)] -> [B, C, grid(b)]`` on its ``kind`` grid, like
:class:`~harness.nn.layers.Pointwise`, so each drops into the same stack:

* :class:`PolynomialActivation`  ``sigma`` (ReLU by default) replaced by its least-squares
  Chebyshev fit of degree p on ``[-kappa r, kappa r]``, r the channel's RMS over the sphere (an
  invariant, so the map stays equivariant), evaluated on the grid of bandwidth ceil(s b). A
  degree-p product of a bandwidth-b signal has degree p (b - 1); the quadrature of the fine
  grid computes every coefficient l < b exactly when ``2 B - b >= p (b - 1)``, i.e. from
  ``s = (p + 1) / 2`` on (the default): exactly equivariant (Franzen & Wand 2021). (A fit of
  ReLU = x/2 + |x|/2 has no odd terms above the first: an odd p acts as p - 1.)
* :class:`QuadraticActivation`   ``y_o = (U x)_o (V x)_o + (L x)_o``, learned mixings U, V, L:
  a Clebsch-Gordan-style product (degree 2, exact from s = 1.5, the default).
* :class:`NormActivation`        per degree and channel ``f_l <- f_l relu(||f_l|| + beta_l) / ||f_l||``,
  in coefficients: exactly equivariant, non-local.
* :class:`GatedActivation`       the degree-0 part through ReLU, degree l > 0 parts scaled by
  ``sigmoid(w_l s + beta_l)`` of the channel's mean s (an invariant scalar; e3nn's Gate).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..sphere.grids import bandwidth_from_shape, check_kind
from ..sphere.transforms import degree_norms, isft, resize_coefficients, sft
from .layers import ACTIVATIONS, check_activation


def chebyshev_fit(activation: str, degree: int, n: int = 2001) -> np.ndarray:
    """``[degree + 1]`` float64 Chebyshev coefficients of the least-squares fit of ``activation``
    on [-1, 1] (Chebyshev nodes, so the fit is near-minimax)."""
    act = ACTIVATIONS[activation]
    u = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    y = act(torch.from_numpy(u)).numpy()
    return np.polynomial.chebyshev.chebfit(u, y, degree)


def chebyshev_eval(u: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """``sum_k coef[k] T_k(u)`` by Clenshaw's recurrence (stable for any u in [-1, 1])."""
    b1 = torch.zeros_like(u)
    b2 = torch.zeros_like(u)
    for ck in coef.flip(0)[:-1]:  # a loop over the few polynomial terms, not over data
        b1, b2 = 2 * u * b1 - b2 + ck, b1
    return u * b1 - b2 + coef[0]


def channel_rms(coeffs: torch.Tensor) -> torch.Tensor:
    """``[..., 1, 1]`` RMS over the sphere of each signal, ``sqrt(sum_l ||f_l||^2 / (4 pi))``
    (Parseval; rotation invariant)."""
    return (degree_norms(coeffs).square().sum(-1) / (4 * math.pi)).sqrt()[..., None, None]


def _fine(coeffs: torch.Tensor, s: float, fine_kind: str) -> tuple[torch.Tensor, int]:
    b = coeffs.shape[-1]
    bf = math.ceil(s * b - 1e-9)
    return isft(resize_coefficients(coeffs, bf), fine_kind), b


def _check(x: torch.Tensor, kind: str, layer: str) -> int:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{layer}: expected input [batch, channels, nlat, nlon], got {shape}")
    return bandwidth_from_shape(tuple(x.shape[-2:]), kind)


def _check_s(layer: str, s: object) -> float:
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not 1 <= s < math.inf:
        raise ValueError(f"{layer}: oversampling must be a finite number >= 1, got {s!r}")
    return float(s)


class PolynomialActivation(nn.Module):
    """Band-limited polynomial activation (see the module docstring). ``degree`` p >= 1,
    ``oversampling`` s (default (p + 1)/2: exact), ``kappa``: the fit's interval in RMS units."""

    def __init__(self, degree: int = 4, activation: str = "relu", oversampling: float | None = None,
                 kappa: float = 3.0, kind: str = "dh") -> None:
        super().__init__()
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
            raise ValueError(f"PolynomialActivation: degree must be an int >= 1, got {degree!r}")
        self.activation_name, _ = check_activation("PolynomialActivation", activation)
        if not isinstance(activation, str):
            raise ValueError("PolynomialActivation: activation must be a name (the fit is tabulated)")
        self.degree = degree
        self.oversampling = _check_s("PolynomialActivation", (degree + 1) / 2 if oversampling is None else oversampling)
        if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not 0 < kappa < math.inf:
            raise ValueError(f"PolynomialActivation: kappa must be a positive number, got {kappa!r}")
        self.kappa, self.kind = float(kappa), check_kind(kind)
        self.coef = torch.from_numpy(chebyshev_fit(activation, degree))  # float64, cast on use (not a buffer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = _check(x, self.kind, "PolynomialActivation")
        c = sft(x, self.kind)
        scale = self.kappa * channel_rms(c).clamp_min(torch.finfo(x.dtype).tiny)
        xf, _ = _fine(c, self.oversampling, self.kind)
        y = scale * chebyshev_eval(xf / scale, self.coef.to(dtype=x.dtype, device=x.device))
        return isft(resize_coefficients(sft(y, self.kind), b), self.kind)

    def extra_repr(self) -> str:
        return f"degree={self.degree}, {self.activation_name!r}, oversampling={self.oversampling}, kappa={self.kappa}"


class QuadraticActivation(nn.Module):
    """``y = (U x) * (V x) + L x`` per grid point (channels mixed by learned C x C matrices),
    evaluated on the grid of bandwidth ceil(s b) (default s = 1.5: exact) and low-passed to b."""

    def __init__(self, channels: int, oversampling: float = 1.5, kind: str = "dh") -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"QuadraticActivation: channels must be an int >= 1, got {channels!r}")
        self.channels, self.kind = channels, check_kind(kind)
        self.oversampling = _check_s("QuadraticActivation", oversampling)
        std = 1 / math.sqrt(channels)
        self.U = nn.Parameter(torch.randn(channels, channels) * std)
        self.V = nn.Parameter(torch.randn(channels, channels) * std)
        self.L = nn.Parameter(torch.eye(channels) / 2)  # ~ x/2 + a quadratic, like relu's x/2 + |x|/2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = _check(x, self.kind, "QuadraticActivation")
        if x.shape[1] != self.channels:
            raise ValueError(f"QuadraticActivation: expected {self.channels} channels, got {x.shape[1]}")
        xf, _ = _fine(sft(x, self.kind), self.oversampling, self.kind)
        mix = lambda W: torch.einsum("oc,bc...->bo...", W.to(x.dtype), xf)  # noqa: E731
        y = mix(self.U) * mix(self.V) + mix(self.L)
        return isft(resize_coefficients(sft(y, self.kind), b), self.kind)

    def extra_repr(self) -> str:
        return f"{self.channels}, oversampling={self.oversampling}, kind={self.kind!r}"


class NormActivation(nn.Module):
    """``f_l <- f_l relu(||f_l|| + beta_l) / ||f_l||`` per channel and degree (learned ``beta``
    ``[C, b]``, zero at init), computed in coefficients: exactly equivariant."""

    def __init__(self, channels: int, bandwidth: int, kind: str = "dh") -> None:
        super().__init__()
        self.kind = check_kind(kind)
        self.beta = nn.Parameter(torch.zeros(channels, bandwidth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.kind, "NormActivation")
        c = sft(x, self.kind)
        n = degree_norms(c)  # [B, C, b]
        tiny = torch.finfo(n.dtype).tiny
        gain = torch.relu(n + self.beta.to(n.dtype)) / n.clamp_min(tiny)
        return isft(c * gain[..., None], self.kind)


class GatedActivation(nn.Module):
    """Degree 0 through ReLU; degree l > 0 of channel c scaled by ``sigmoid(w[c, l] s_c + beta[c, l])``
    with ``s_c`` the channel's mean over the sphere (its invariant scalar). Exactly equivariant."""

    def __init__(self, channels: int, bandwidth: int, kind: str = "dh") -> None:
        super().__init__()
        self.kind = check_kind(kind)
        self.w = nn.Parameter(torch.ones(channels, bandwidth))
        self.beta = nn.Parameter(torch.zeros(channels, bandwidth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.kind, "GatedActivation")
        c = sft(x, self.kind)
        s = c[..., 0, 0].real / math.sqrt(4 * math.pi)  # [B, C]: the mean
        gate = torch.sigmoid(self.w.to(s.dtype) * s[..., None] + self.beta.to(s.dtype))  # [B, C, b]
        keep = (s > 0).to(s.dtype)[..., None]  # degree 0: relu of the mean
        gate = torch.cat([keep, gate[..., 1:]], dim=-1)
        return isft(c * gate[..., None], self.kind)


NONLINEARITIES = ("pointwise", "polynomial", "quadratic", "norm", "gated")

__all__ = ["PolynomialActivation", "QuadraticActivation", "NormActivation", "GatedActivation", "NONLINEARITIES",
           "chebyshev_fit", "chebyshev_eval", "channel_rms"]
