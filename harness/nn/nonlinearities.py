"""Nonlinearities for S^2 grid signals beyond the sampled pointwise one (the frontier of issue 13).

Every layer maps ``[B, C, grid(b)] -> [B, C, grid(b)]`` on its ``kind`` grid, like
:class:`~harness.nn.layers.Pointwise`, so each drops into the same stack (and, like it, takes and
returns coefficients ``[B, C, b, b]`` with ``input`` / ``output`` = "coeffs"):

* :class:`PolynomialActivation`  ``sigma`` (ReLU by default) replaced by its least-squares
  Chebyshev fit of degree p on ``[-kappa r, kappa r]``, r the channel's RMS over the sphere (an
  invariant, so the map stays equivariant), evaluated on a finer grid. A degree-p product of a
  bandwidth-b signal has bandwidth p (b - 1) + 1; by default it is evaluated on the cheapest
  Gauss-Legendre grid whose quadrature computes every coefficient l < b of it exactly
  (:func:`exact_grid`): exactly equivariant (Franzen & Wand 2021). With ``oversampling=s`` it is
  the ``kind`` grid of bandwidth ceil(s b) instead (exact from ``s = (p + 1) / 2``). (A fit of
  ReLU = x/2 + |x|/2 has no odd terms above the first: an odd p acts as p - 1.)
* :class:`QuadraticActivation`   ``y_o = (U x)_o (V x)_o + (L x)_o``, learned mixings U, V, L:
  a Clebsch-Gordan-style product (degree 2, on the exact grid by default).
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

from ..sphere.grids import Grid, grid, min_exact_grid
from ..sphere.transforms import apply_on_grid, degree_norms
from .layers import (ACTIVATIONS, SpectralLayer, check_activation, check_layer_input, check_oversampling,
                     fine_bandwidth)


def chebyshev_fit(activation: str, degree: int, n: int = 2001) -> np.ndarray:
    """``[degree + 1]`` float64 Chebyshev coefficients of the least-squares fit of ``activation``
    on [-1, 1] (Chebyshev nodes, so the fit is near-minimax)."""
    act = ACTIVATIONS[activation]
    u = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    y = act(torch.from_numpy(u)).numpy()
    return np.polynomial.chebyshev.chebfit(u, y, degree)


def horner(u: torch.Tensor, a: tuple[float, ...]) -> torch.Tensor:
    """``sum_k a[k] u^k`` (degree >= 1) by Horner's rule: one new tensor, two in-place passes per degree."""
    y = u * a[-1]
    for ak in a[-2:0:-1]:  # a loop over the few polynomial terms, not over data
        y.add_(ak).mul_(u)
    return y.add_(a[0])


class _Polynomial(torch.autograd.Function):
    """:func:`horner` with a backward that evaluates ``p'(u)`` the same way: only u is kept for
    it (the Clenshaw recurrence under autograd kept every intermediate and cost 4x more)."""

    @staticmethod
    def forward(u: torch.Tensor, a: tuple[float, ...]) -> torch.Tensor:  # type: ignore[override]
        return horner(u, a)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.a = inputs[1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        d = tuple(k * ak for k, ak in enumerate(ctx.a))[1:]  # p'(u) = sum_k k a_k u^(k-1)
        return (g * horner(u, d) if len(d) > 1 else g * d[0]), None


def polynomial(u: torch.Tensor, a: tuple[float, ...]) -> torch.Tensor:
    """``sum_k a[k] u^k`` of a tensor (monomial coefficients, degree >= 1), differentiable."""
    if u.requires_grad and torch.is_grad_enabled():
        return _Polynomial.apply(u, a)
    return horner(u, a)


def channel_rms(coeffs: torch.Tensor) -> torch.Tensor:
    """``[..., 1, 1]`` RMS over the sphere of each signal, ``sqrt(sum_l ||f_l||^2 / (4 pi))``
    (Parseval; rotation invariant)."""
    return (degree_norms(coeffs).square().sum(-1) / (4 * math.pi)).sqrt()[..., None, None]


def exact_grid(degree: int, bandwidth: int) -> Grid:
    """The cheapest grid on which a degree-``degree`` polynomial p of a signal of ``bandwidth`` b
    is projected onto degrees < b exactly: sigma(f) has bandwidth p (b - 1) + 1, so the integrand
    of its analysis has degree and order difference up to ``D = (p + 1)(b - 1)``; the
    Gauss-Legendre grid with ``ceil((D + 1) / 2)`` rings and the fewest fast-FFT longitude count
    >= D + 1 integrates it exactly (:func:`~harness.sphere.grids.min_exact_grid`): e.g. 44 x 90
    for p = 2, b = 30, half the points of the exact equiangular grid (88 x 88). One ring fewer,
    or D longitudes, alias."""
    return min_exact_grid("gl", degree * (bandwidth - 1) + 1, bandwidth)




class _FineGrid(SpectralLayer):
    """A nonlinearity evaluated on a grid finer than its input's: with ``oversampling=None`` the
    cheapest grid on which its polynomial of degree ``self.poly_degree`` is exact
    (:func:`exact_grid`), else the ``kind`` grid of bandwidth ceil(s b)."""

    poly_degree: int
    oversampling: float | None

    def fine_grid(self, bandwidth: int) -> Grid:
        """The grid it is evaluated on, for an input of ``bandwidth``."""
        if self.oversampling is None:
            return exact_grid(self.poly_degree, bandwidth)
        return grid(self.kind, fine_bandwidth(self.oversampling, bandwidth))


class PolynomialActivation(_FineGrid):
    """Band-limited polynomial activation (see the module docstring). ``degree`` p >= 1,
    ``oversampling`` s (default None: the exact grid, :func:`exact_grid`), ``kappa``: the fit's
    interval in RMS units. ``input`` / ``output``: "grid" (default) or "coeffs"."""

    def __init__(self, degree: int = 4, activation: str = "relu", oversampling: float | None = None,
                 kappa: float = 3.0, kind: str = "dh", *, input: str = "grid", output: str = "grid") -> None:
        super().__init__()
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
            raise ValueError(f"PolynomialActivation: degree must be an int >= 1, got {degree!r}")
        self.activation_name, _ = check_activation("PolynomialActivation", activation)
        if not isinstance(activation, str):
            raise ValueError("PolynomialActivation: activation must be a name (the fit is tabulated)")
        self.degree = self.poly_degree = degree
        self.oversampling = None if oversampling is None else check_oversampling("PolynomialActivation", oversampling)
        if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not 0 < kappa < math.inf:
            raise ValueError(f"PolynomialActivation: kappa must be a positive number, got {kappa!r}")
        self.kappa = float(kappa)
        self._domains("PolynomialActivation", kind, None, input, output)
        self.coef = torch.from_numpy(chebyshev_fit(activation, degree))  # float64 Chebyshev coefficients
        # the same polynomial in the monomial basis, evaluated by Horner's rule (plain floats)
        self.monomial = tuple(float(v) for v in np.polynomial.chebyshev.cheb2poly(self.coef.numpy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = check_layer_input(x, None, self.kind, None, "PolynomialActivation", self.input)
        c = self.coefficients(x)
        scale = self.kappa * channel_rms(c).clamp_min(torch.finfo(c.real.dtype).tiny)  # [B, C, 1, 1]
        u = (c / scale).reshape(-1, b, b)  # sigma(s u) = s p(u): the fit runs on u in [-1, 1]
        y = apply_on_grid(u, lambda t: polynomial(t, self.monomial), self.fine_grid(b)).view(c.shape) * scale
        return self.emit(y)

    def extra_repr(self) -> str:
        s = "exact" if self.oversampling is None else self.oversampling
        return f"degree={self.degree}, {self.activation_name!r}, oversampling={s}, kappa={self.kappa}{self._io_repr()}"


class QuadraticActivation(_FineGrid):
    """``y = (U x) * (V x) + L x`` per grid point (channels mixed by learned C x C matrices),
    evaluated on a finer grid and low-passed to b: by default (``oversampling=None``) the exact
    grid of a degree-2 polynomial (:func:`exact_grid`), else the grid of bandwidth ceil(s b)."""

    poly_degree = 2

    def __init__(self, channels: int, oversampling: float | None = None, kind: str = "dh", *,
                 input: str = "grid", output: str = "grid") -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"QuadraticActivation: channels must be an int >= 1, got {channels!r}")
        self.channels = channels
        self._domains("QuadraticActivation", kind, None, input, output)
        self.oversampling = None if oversampling is None else check_oversampling("QuadraticActivation", oversampling)
        std = 1 / math.sqrt(channels)
        self.U = nn.Parameter(torch.randn(channels, channels) * std)
        self.V = nn.Parameter(torch.randn(channels, channels) * std)
        self.L = nn.Parameter(torch.eye(channels) / 2)  # ~ x/2 + a quadratic, like relu's x/2 + |x|/2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = check_layer_input(x, self.channels, self.kind, None, "QuadraticActivation", self.input)
        c = self.coefficients(x)
        U, V, L = (W.to(c.real.dtype) for W in (self.U, self.V, self.L))

        def f(t: torch.Tensor) -> torch.Tensor:  # [nlon, nlat, B, C]: channels last
            return (t @ U.T) * (t @ V.T) + t @ L.T

        return self.emit(apply_on_grid(c, f, self.fine_grid(b)))

    def extra_repr(self) -> str:
        s = "exact" if self.oversampling is None else self.oversampling
        return f"{self.channels}, oversampling={s}, kind={self.kind!r}{self._io_repr()}"


class NormActivation(SpectralLayer):
    """``f_l <- f_l relu(||f_l|| + beta_l) / ||f_l||`` per channel and degree (learned ``beta``
    ``[C, b]``, zero at init), computed in coefficients: exactly equivariant."""

    def __init__(self, channels: int, bandwidth: int, kind: str = "dh", *, input: str = "grid",
                 output: str = "grid") -> None:
        super().__init__()
        self._domains("NormActivation", kind, None, input, output)
        self.beta = nn.Parameter(torch.zeros(channels, bandwidth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_layer_input(x, None, self.kind, None, "NormActivation", self.input)
        c = self.coefficients(x)
        n = degree_norms(c)  # [B, C, b]
        tiny = torch.finfo(n.dtype).tiny
        gain = torch.relu(n + self.beta.to(n.dtype)) / n.clamp_min(tiny)
        return self.emit(c * gain[..., None])


class GatedActivation(SpectralLayer):
    """Degree 0 through ReLU; degree l > 0 of channel c scaled by ``sigmoid(w[c, l] s_c + beta[c, l])``
    with ``s_c`` the channel's mean over the sphere (its invariant scalar). Exactly equivariant."""

    def __init__(self, channels: int, bandwidth: int, kind: str = "dh", *, input: str = "grid",
                 output: str = "grid") -> None:
        super().__init__()
        self._domains("GatedActivation", kind, None, input, output)
        self.w = nn.Parameter(torch.ones(channels, bandwidth))
        self.beta = nn.Parameter(torch.zeros(channels, bandwidth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_layer_input(x, None, self.kind, None, "GatedActivation", self.input)
        c = self.coefficients(x)
        s = c[..., 0, 0].real / math.sqrt(4 * math.pi)  # [B, C]: the mean
        gate = torch.sigmoid(self.w.to(s.dtype) * s[..., None] + self.beta.to(s.dtype))  # [B, C, b]
        keep = (s > 0).to(s.dtype)[..., None]  # degree 0: relu of the mean
        gate = torch.cat([keep, gate[..., 1:]], dim=-1)
        return self.emit(c * gate[..., None])


NONLINEARITIES = ("pointwise", "polynomial", "quadratic", "norm", "gated")

__all__ = ["PolynomialActivation", "QuadraticActivation", "NormActivation", "GatedActivation", "NONLINEARITIES",
           "chebyshev_fit", "polynomial", "channel_rms", "exact_grid"]
