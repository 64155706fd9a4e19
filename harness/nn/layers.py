"""The layers of a spherical CNN (Esteves et al. 2018), on grid signals ``[batch, channels, nlat, nlon]``.

Math lives in plain functions on tensors; the modules (``nn.Module``) hold parameters and settings only.

* :class:`SphericalConv`  SFT -> per-degree multiply by a zonal filter -> ISFT (exactly equivariant)
* :class:`Pointwise`      the pointwise nonlinearity, optionally anti-aliased by oversampling
* :class:`SpectralPool`   low-pass to a smaller bandwidth, output on the smaller grid
* :class:`InvariantDescriptor`  per-channel, per-degree norms ``[batch, channels, bandwidth]``
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..sphere.grids import bandwidth_from_shape, check_bandwidth, check_kind, grid_shape
from ..sphere.transforms import degree_norms, isft, resize_coefficients, sft

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "leaky_relu": nn.functional.leaky_relu,
    "abs": torch.abs,
    "square": torch.square,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": nn.functional.softplus,
    "gelu": nn.functional.gelu,
    "silu": nn.functional.silu,
    "elu": nn.functional.elu,
    "identity": lambda t: t,
}


def check_activation(layer: str, activation: object) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """``(name, function)`` for an activation given by name (:data:`ACTIVATIONS`) or as a callable."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"{layer}: unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}"
                             " (or pass a callable)")
        return activation, ACTIVATIONS[activation]
    if callable(activation):
        return getattr(activation, "__name__", "callable"), activation
    raise TypeError(f"{layer}: activation must be a name or a callable, got {type(activation).__name__}")


# --------------------------------------------------------------------------- plain functions
def conv_constants(bandwidth: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """``[b]`` ``2 pi sqrt(4 pi / (2l + 1))``: ``(f * h)^m_l = c_l f^m_l h^0_l`` for the group
    convolution ``int_SO(3) f(g eta) h(g^-1 x) dg`` with ``dg = sin(beta) da db dg`` (total 8 pi^2).
    The blog post's ``sqrt(16 pi^3 / (2l + 2))`` is off by one in the degree (docs/conventions.md)."""
    l = torch.arange(bandwidth, dtype=torch.float64)
    return (2 * math.pi * torch.sqrt(4 * math.pi / (2 * l + 1))).to(dtype=dtype, device=device)


def interpolation_matrix(n_anchors: int, bandwidth: int) -> torch.Tensor:
    """``[K, b]`` float64 matrix M with ``h_l = sum_k a_k M[k, l]``: linear interpolation from K
    anchors at evenly spaced degrees ``l_k = k (b - 1) / (K - 1)`` (Esteves' localized filters)."""
    if n_anchors == 1:
        return torch.ones(1, bandwidth, dtype=torch.float64)
    pos = torch.arange(bandwidth, dtype=torch.float64) * (n_anchors - 1) / max(bandwidth - 1, 1)
    k = torch.arange(n_anchors, dtype=torch.float64)[:, None]
    return (1 - (pos[None, :] - k).abs()).clamp_min(0)


def spherical_conv(coeffs: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
    """``[B, Cin, b, b]`` complex, ``[Cout, Cin, b]`` real -> ``[B, Cout, b, b]``:
    ``y^m_l[o] = sum_i c_l h^0_l[o, i] f^m_l[i]`` (Esteves et al. 2018, eq. 8, corrected constant)."""
    B, Cin, b = coeffs.shape[0], coeffs.shape[1], coeffs.shape[-1]
    Cout = spectrum.shape[0]
    gain = (spectrum * conv_constants(b, spectrum.dtype, spectrum.device)).permute(2, 0, 1)  # [l, o, i]
    c = torch.view_as_real(coeffs).permute(2, 1, 0, 3, 4).reshape(b, Cin, B * b * 2)  # [l, i, (B m r)]
    y = torch.bmm(gain, c).view(b, Cout, B, b, 2).permute(2, 1, 0, 3, 4)  # one matmul per degree
    return torch.view_as_complex(y.contiguous())


def _pointwise_fine(x: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor], b: int, bf: int, kind: str,
                    fine_kind: str, backend: str | None) -> torch.Tensor:
    fine = isft(resize_coefficients(sft(x, kind, backend=backend), bf), fine_kind, backend=backend)
    y = sft(act(fine), fine_kind, backend=backend)
    del fine
    return isft(resize_coefficients(y, b), kind, backend=backend)


def pointwise(x: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor], oversampling: float,
              kind: str, fine_kind: str, backend: str | None = None) -> torch.Tensor:
    """sigma on the grid: s = 1 applies it to the samples (the next SFT aliases what it adds past
    the bandlimit); s > 1 evaluates x on the grid of bandwidth ceil(s b), applies sigma there,
    transforms on that grid and keeps degrees < b, returned on x's own grid.

    Without autograd the maps go through the fine grid in groups whose fine-grid signal is half
    the input's size (or 32 MiB, if more), so the peak memory of a large input stays a small
    multiple of it (the fine grid is s^2 times larger; with autograd every intermediate is kept
    for backward anyway).
    """
    b = bandwidth_from_shape(tuple(x.shape[-2:]), kind)
    if oversampling == 1.0 and fine_kind == kind:
        return act(x)
    bf = math.ceil(oversampling * b - 1e-9)
    xb = x.reshape(-1, *x.shape[-2:])
    n = xb.shape[0]
    fine_per_map = grid_shape(fine_kind, bf)[0] * grid_shape(fine_kind, bf)[1]
    # groups whose fine-grid signal is half the input, but at least _GROUP_MIN_ELEMENTS (below
    # that the per-call overhead of small transforms costs more time than the memory saves)
    group = max(1, max(x.shape[-2] * x.shape[-1] * n // 2, _GROUP_MIN_ELEMENTS) // fine_per_map)
    if group >= n or (torch.is_grad_enabled() and xb.requires_grad) or _traced(xb):
        return _pointwise_fine(x, act, b, bf, kind, fine_kind, backend)
    out = torch.empty_like(xb)
    for i in range(0, n, group):
        out[i : i + group] = _pointwise_fine(xb[i : i + group], act, b, bf, kind, fine_kind, backend)
    return out.view(x.shape)


_GROUP_MIN_ELEMENTS = 1 << 22  # 32 MiB of float64 fine-grid samples


def _traced(t: torch.Tensor) -> bool:
    """Inside torch.func or forward-mode AD: keep the one-pass path (no in-place group writes)."""
    return torch._C._functorch.is_functorch_wrapped_tensor(t) or torch.autograd.forward_ad.unpack_dual(t).tangent is not None


# --------------------------------------------------------------------------- modules
def _check_input(x: torch.Tensor, channels: int | None, kind: str, bandwidth: int | None, layer: str) -> int:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{layer}: expected input [batch, channels, nlat, nlon], got {shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer}: expected {channels} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})")
    b = bandwidth_from_shape(tuple(x.shape[-2:]), kind)
    if bandwidth is not None and b != bandwidth:
        raise ValueError(f"{layer}: expected the {kind!r} grid of bandwidth {bandwidth}, got grid shape"
                         f" {tuple(x.shape[-2:])} (bandwidth {b})")
    return b


class SphericalConv(nn.Module):
    """Spherical convolution with zonal filters, ``[B, Cin, grid(b)] -> [B, Cout, grid(b)]``.

    ``filter_params=None`` learns ``h^0_l`` for every degree; ``filter_params=K`` learns K anchor
    values linearly interpolated to all degrees. Bias only on degree 0 (a constant function is the
    only rotation-invariant one). Initialization (He et al. 2015, per degree): the gain
    ``c_l h^0_l`` is ``N(0, 2/Cin)`` (anchors: at their own degree), which keeps the signal's power
    through a following ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, bandwidth: int, kind: str = "dh",
                 filter_params: int | None = None, bias: bool = True, backend: str | None = None) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SphericalConv: {name} must be an int >= 1, got {v!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bandwidth, self.kind, self.backend = check_bandwidth(bandwidth), check_kind(kind), backend
        n = self.bandwidth if filter_params is None else filter_params
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.bandwidth:
            raise ValueError(f"SphericalConv: filter_params must be None or an int in [1, {self.bandwidth}],"
                             f" got {filter_params!r}")
        self.filter_params = filter_params
        anchors = torch.linspace(0, self.bandwidth - 1, n, dtype=torch.float64).round().long()
        std = math.sqrt(2.0 / in_channels) / conv_constants(self.bandwidth)[anchors]
        self.weight = nn.Parameter((torch.randn(out_channels, in_channels, n, dtype=torch.float64) * std).float())
        interp = None if filter_params is None else interpolation_matrix(n, self.bandwidth).float()
        self.register_buffer("interp", interp, persistent=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def filter_spectrum(self) -> torch.Tensor:
        """``[Cout, Cin, b]``: the effective ``h^0_l``."""
        return self.weight if self.interp is None else self.weight @ self.interp.to(self.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels, self.kind, self.bandwidth, "SphericalConv")
        c = sft(x, self.kind, backend=self.backend)
        y = spherical_conv(c, self.filter_spectrum().to(x.dtype))
        if self.bias is not None:  # a constant v has f^0_0 = v sqrt(4 pi)
            y = y.clone()
            y[:, :, 0, 0] = y[:, :, 0, 0] + self.bias.to(x.dtype) * math.sqrt(4 * math.pi)
        return isft(y, self.kind, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, bandwidth={self.bandwidth}, kind={self.kind!r},"
                f" filter_params={self.filter_params}, bias={self.bias is not None}")


class Pointwise(nn.Module):
    """Pointwise nonlinearity ``sigma(x)`` on the ``kind`` grid (its input's, as for every layer);
    with ``oversampling = s > 1``, anti-aliased: sigma is applied on the grid of bandwidth
    ceil(s b) of kind ``fine_kind`` (default: ``kind``) and the result low-passed back to b."""

    def __init__(self, activation: str | Callable[[torch.Tensor], torch.Tensor] = "relu",
                 oversampling: float = 1.0, kind: str = "dh", fine_kind: str | None = None,
                 backend: str | None = None) -> None:
        super().__init__()
        self.activation_name, self.act = check_activation("Pointwise", activation)
        if isinstance(oversampling, bool) or not isinstance(oversampling, (int, float)) or not 1 <= oversampling < math.inf:
            raise ValueError(f"Pointwise: oversampling must be a finite number >= 1, got {oversampling!r}")
        self.oversampling = float(oversampling)
        self.kind = check_kind(kind)
        self.fine_kind = check_kind(fine_kind, "fine_kind") if fine_kind is not None else self.kind
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, None, self.kind, None, "Pointwise")
        return pointwise(x, self.act, self.oversampling, self.kind, self.fine_kind, self.backend)

    def extra_repr(self) -> str:
        fine = f", fine_kind={self.fine_kind!r}" if self.fine_kind != self.kind else ""
        return f"{self.activation_name!r}, oversampling={self.oversampling}, kind={self.kind!r}{fine}"


class SpectralPool(nn.Module):
    """Low-pass to ``bandwidth_out`` (default ``b // 2``, the blog post's cutoff), output on that grid."""

    def __init__(self, bandwidth_out: int | None = None, kind: str = "dh", backend: str | None = None) -> None:
        super().__init__()
        self.bandwidth_out = None if bandwidth_out is None else check_bandwidth(bandwidth_out, "bandwidth_out")
        self.kind, self.backend = check_kind(kind), backend

    def output_bandwidth(self, b: int) -> int:
        return max(1, b // 2) if self.bandwidth_out is None else self.bandwidth_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = _check_input(x, None, self.kind, None, "SpectralPool")
        bo = self.output_bandwidth(b)
        if bo > b:
            raise ValueError(f"SpectralPool: bandwidth_out {bo} exceeds the input bandwidth {b}")
        return isft(resize_coefficients(sft(x, self.kind, backend=self.backend), bo), self.kind, backend=self.backend)

    def extra_repr(self) -> str:
        return f"bandwidth_out={self.bandwidth_out}, kind={self.kind!r}"


class InvariantDescriptor(nn.Module):
    """``[B, C, grid(b)] -> [B, C, b]`` (``[B, C b]`` with ``flatten``, the feature vector a
    classifier reads): the norms ``||f_l||`` of each degree's coefficients (all 2l + 1 orders),
    exactly SO(3)-invariant since the Wigner-D matrices are unitary."""

    def __init__(self, kind: str = "dh", backend: str | None = None, flatten: bool = False) -> None:
        super().__init__()
        self.kind, self.backend, self.flatten = check_kind(kind), backend, bool(flatten)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, None, self.kind, None, "InvariantDescriptor")
        y = degree_norms(sft(x, self.kind, backend=self.backend))
        return y.flatten(1) if self.flatten else y

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, flatten={self.flatten}"
