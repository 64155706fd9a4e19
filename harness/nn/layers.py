"""The layers of a spherical CNN (Esteves et al. 2018), on grid signals ``[batch, channels, nlat, nlon]``
or on their coefficients ``[batch, channels, b, b]``.

Math lives in plain functions on tensors; the modules (``nn.Module``) hold parameters and settings only.

Every layer takes and returns grid samples by default (``input="grid"``, ``output="grid"``), so
layers compose by hand. Between spectral layers a model passes coefficients instead
(``"coeffs"``): the convolution is then a per-degree multiply, pooling a truncation, the descriptor
the degree norms, and a nonlinearity costs one synthesis onto its grid and one analysis of the
degrees it keeps — ``conv -> sigma -> conv`` is exactly one isft and one sft. Both give the same
numbers (a grid signal's meaning is its bandwidth-b coefficients).

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

from ..sphere.grids import Grid, bandwidth_from_shape, check_bandwidth, check_kind, grid
from ..sphere.transforms import apply_on_grid, degree_norms, isft, resize_coefficients, sft
from ..util.memory import check_fits

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
        check_elementwise(layer, activation)
        return getattr(activation, "__name__", "callable"), activation
    raise TypeError(f"{layer}: activation must be a name or a callable, got {type(activation).__name__}")


def check_elementwise(layer: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Refuse a callable that is not applied to each entry on its own: on a probe it must return a
    tensor of the input's shape that does not change when the entries are permuted (a sum, a
    softmax or a norm fail)."""
    u = torch.linspace(-3.0, 3.0, 24, dtype=torch.float64).view(4, 6)
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    try:
        a, b = fn(u), fn(u.reshape(-1)[perm].view(4, 6))
    except Exception as e:  # noqa: BLE001 - any failure on a plain float64 tensor disqualifies it
        raise ValueError(f"{layer}: the activation failed on a float64 tensor of shape (4, 6): {e}") from e
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == u.shape == b.shape):
        shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
        raise ValueError(f"{layer}: the activation must be elementwise (a tensor of its input's shape); on shape"
                         f" (4, 6) it returned {shape}")
    if not torch.allclose(a.reshape(-1)[perm], b.reshape(-1), rtol=1e-10, atol=1e-12, equal_nan=True):
        raise ValueError(f"{layer}: the activation is not elementwise: its value at an entry changes when the other"
                         " entries move (as a softmax or a normalization does)")


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


def fine_bandwidth(oversampling: float, bandwidth: int) -> int:
    """``ceil(s b)``: the bandwidth of the grid an oversampled nonlinearity evaluates on."""
    return math.ceil(oversampling * bandwidth - 1e-9)


def pointwise(x: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor], oversampling: float,
              kind: str, fine_kind: str, backend: str | None = None) -> torch.Tensor:
    """sigma of grid samples ``[..., grid(b)]``: s = 1 applies it to the samples (the next SFT
    aliases what it adds past the bandlimit); s > 1 evaluates x on the ``fine_kind`` grid of
    bandwidth ceil(s b), applies sigma there, keeps degrees < b (:func:`~harness.sphere.transforms.apply_on_grid`), returned on x's
    own grid."""
    b = bandwidth_from_shape(tuple(x.shape[-2:]), kind)
    if oversampling == 1.0 and fine_kind == kind:
        return act(x)
    c = sft(x, kind, backend=backend)
    maps = c.reshape(-1, b, b)
    return isft(apply_on_grid(maps, act, grid(fine_kind, fine_bandwidth(oversampling, b)), backend).view(c.shape),
                kind, backend=backend)


# --------------------------------------------------------------------------- modules
#: What a layer's input or output is: grid samples of its ``kind`` grid, or their coefficients.
DOMAINS: tuple[str, ...] = ("grid", "coeffs")


def check_domain(layer: str, name: str, value: object) -> str:
    if not isinstance(value, str) or value not in DOMAINS:
        raise ValueError(f"{layer}: {name} must be one of {list(DOMAINS)} (grid samples [batch, channels, nlat, nlon]"
                         f" or coefficients [batch, channels, b, b]), got {value!r}")
    return value


def check_oversampling(layer: str, s: object) -> float:
    """A finite number >= 1 (an int too large for a float is refused, not overflowed)."""
    ok = not isinstance(s, bool) and isinstance(s, (int, float))
    try:
        v = float(s) if ok else math.nan
    except OverflowError:
        v = math.inf
    if not 1 <= v < math.inf:
        shown = repr(s) if len(repr(s)) < 40 else f"{type(s).__name__} with {len(str(s))} digits"
        raise ValueError(f"{layer}: oversampling must be a finite number >= 1, got {shown}")
    return v


def check_bool(layer: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{layer}: {name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def check_layer_input(x: torch.Tensor, channels: int | None, kind: str, bandwidth: int | None, layer: str,
                 domain: str = "grid") -> int:
    """Validate a layer's input (grid samples or coefficients, as ``domain`` says); return its bandwidth."""
    what = "[batch, channels, nlat, nlon] grid samples" if domain == "grid" else "[batch, channels, b, b] coefficients"
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{layer}: expected input {what}, got {shape}")
    if domain == "grid":
        if x.is_complex():
            raise ValueError(f"{layer}: expected real {what} (input='grid'), got a complex tensor of shape"
                             f" {tuple(x.shape)}; coefficients go to a layer built with input='coeffs'")
        b = bandwidth_from_shape(tuple(x.shape[-2:]), kind)
    else:
        if not x.is_complex() or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{layer}: expected complex {what} (input='coeffs'), got {x.dtype} of shape"
                             f" {tuple(x.shape)}; grid samples go to a layer built with input='grid'")
        b = x.shape[-1]
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer}: expected {channels} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})")
    if bandwidth is not None and b != bandwidth:
        where = f"the {kind!r} grid of bandwidth {bandwidth}, got grid shape {tuple(x.shape[-2:])}" if domain == "grid" \
            else f"coefficients of bandwidth {bandwidth}, got shape {tuple(x.shape[-2:])}"
        raise ValueError(f"{layer}: expected {where} (bandwidth {b})")
    return b


class SpectralLayer(nn.Module):
    """What every S^2 layer shares: its grid ``kind``, backend, and the domains of its input and
    output (``input`` / ``output``: "grid" or "coeffs")."""

    def _domains(self, layer: str, kind: str, backend: str | None, input: str, output: str | None) -> None:
        self.kind, self.backend = check_kind(kind), backend
        self.input = check_domain(layer, "input", input)
        self.output = None if output is None else check_domain(layer, "output", output)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """The (already validated) input as coefficients."""
        return sft(x, self.kind, backend=self.backend) if self.input == "grid" else x

    def emit(self, c: torch.Tensor) -> torch.Tensor:
        """Coefficients out in the layer's output domain."""
        return isft(c, self.kind, backend=self.backend) if self.output == "grid" else c

    def _io_repr(self) -> str:
        return "".join(f", {n}={v!r}" for n, v in (("input", self.input), ("output", self.output)) if v not in ("grid", None))


class SphericalConv(SpectralLayer):
    """Spherical convolution with zonal filters, ``[B, Cin, grid(b)] -> [B, Cout, grid(b)]`` (or
    coefficients ``[B, C, b, b]`` in and/or out: ``input`` / ``output`` = "coeffs").

    ``filter_params=None`` learns ``h^0_l`` for every degree; ``filter_params=K`` learns K anchor
    values linearly interpolated to all degrees. Bias only on degree 0 (a constant function is the
    only rotation-invariant one). Initialization (He et al. 2015, per degree): the gain
    ``c_l h^0_l`` is ``N(0, 2/Cin)`` (anchors: at their own degree), which keeps the signal's power
    through a following ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, bandwidth: int, kind: str = "dh",
                 filter_params: int | None = None, bias: bool = True, backend: str | None = None, *,
                 input: str = "grid", output: str = "grid") -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SphericalConv: {name} must be an int >= 1, got {v!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bandwidth = check_bandwidth(bandwidth)
        self._domains("SphericalConv", kind, backend, input, output)
        bias = check_bool("SphericalConv", "bias", bias)
        n = self.bandwidth if filter_params is None else filter_params
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.bandwidth:
            raise ValueError(f"SphericalConv: filter_params must be None or an int in [1, {self.bandwidth}],"
                             f" got {filter_params!r}")
        self.filter_params = filter_params
        check_fits(8 * 4 * (out_channels * in_channels * n + n * self.bandwidth + self.bandwidth),
                   f"SphericalConv(in_channels={in_channels}, out_channels={out_channels}, bandwidth={self.bandwidth})'s"
                   " filters")
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
        check_layer_input(x, self.in_channels, self.kind, self.bandwidth, "SphericalConv", self.input)
        c = self.coefficients(x)
        y = spherical_conv(c, self.filter_spectrum().to(c.real.dtype))
        if self.bias is not None:  # a constant v has f^0_0 = v sqrt(4 pi)
            y = y.clone()
            y[:, :, 0, 0] = y[:, :, 0, 0] + self.bias.to(c.real.dtype) * math.sqrt(4 * math.pi)
        return self.emit(y)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, bandwidth={self.bandwidth}, kind={self.kind!r},"
                f" filter_params={self.filter_params}, bias={self.bias is not None}{self._io_repr()}")


class Pointwise(SpectralLayer):
    """Pointwise nonlinearity ``sigma(x)`` on the ``kind`` grid (its input's, as for every layer);
    with ``oversampling = s > 1``, anti-aliased: sigma is applied on the grid of bandwidth
    ceil(s b) of kind ``fine_kind`` (default: ``kind``) and the result low-passed back to b.

    On coefficients (``input="coeffs"``) it costs one synthesis of the b degrees onto the grid
    sigma is sampled on and, with ``output="coeffs"``, one analysis of the b degrees it keeps. Its
    grid output at s = 1 is sigma of the samples (not band-limited); on coefficients it is their
    analysis, which is what any spectral layer after it reads."""

    def __init__(self, activation: str | Callable[[torch.Tensor], torch.Tensor] = "relu",
                 oversampling: float = 1.0, kind: str = "dh", fine_kind: str | None = None,
                 backend: str | None = None, *, input: str = "grid", output: str = "grid", **removed: object) -> None:
        super().__init__()
        if removed:
            hint = "; 'input_kind' is now kind (the grid of its input)" if "input_kind" in removed else ""
            raise TypeError(f"Pointwise() got unexpected keyword argument(s) {sorted(removed)}{hint}")
        self.activation_name, self.act = check_activation("Pointwise", activation)
        self.oversampling = check_oversampling("Pointwise", oversampling)
        self._domains("Pointwise", kind, backend, input, output)
        self.fine_kind = check_kind(fine_kind, "fine_kind") if fine_kind is not None else self.kind

    def fine_grid(self, bandwidth: int) -> Grid:
        """The grid sigma is sampled on, for an input of ``bandwidth``."""
        return grid(self.fine_kind, fine_bandwidth(self.oversampling, bandwidth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = check_layer_input(x, None, self.kind, None, "Pointwise", self.input)
        if self.input == "grid" and self.output == "grid":
            return pointwise(x, self.act, self.oversampling, self.kind, self.fine_kind, self.backend)
        own = self.fine_kind == self.kind and fine_bandwidth(self.oversampling, b) == b
        if own and "grid" in (self.input, self.output):  # sampled on its own grid, read or written there
            u = self.act(x if self.input == "grid" else isft(x, self.kind, backend=self.backend))
            return u if self.output == "grid" else sft(u, self.kind, backend=self.backend)
        c = self.coefficients(x)
        return self.emit(apply_on_grid(c.reshape(-1, b, b), self.act, self.fine_grid(b), self.backend).view(c.shape))

    def extra_repr(self) -> str:
        fine = f", fine_kind={self.fine_kind!r}" if self.fine_kind != self.kind else ""
        return f"{self.activation_name!r}, oversampling={self.oversampling}, kind={self.kind!r}{fine}{self._io_repr()}"


class SpectralPool(SpectralLayer):
    """Low-pass to ``bandwidth_out`` (default ``b // 2``, the blog post's cutoff), output on that
    grid (on coefficients: a truncation)."""

    def __init__(self, bandwidth_out: int | None = None, kind: str = "dh", backend: str | None = None, *,
                 input: str = "grid", output: str = "grid") -> None:
        super().__init__()
        self.bandwidth_out = None if bandwidth_out is None else check_bandwidth(bandwidth_out, "bandwidth_out")
        self._domains("SpectralPool", kind, backend, input, output)

    def output_bandwidth(self, b: int) -> int:
        return max(1, b // 2) if self.bandwidth_out is None else self.bandwidth_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = check_layer_input(x, None, self.kind, None, "SpectralPool", self.input)
        bo = self.output_bandwidth(b)
        if bo > b:
            raise ValueError(f"SpectralPool: bandwidth_out {bo} exceeds the input bandwidth {b}")
        if self.input == "grid":
            c = sft(x, self.kind, degrees=bo, backend=self.backend)  # only the degrees kept
        else:
            c = resize_coefficients(x, bo)
        return self.emit(c)

    def extra_repr(self) -> str:
        return f"bandwidth_out={self.bandwidth_out}, kind={self.kind!r}{self._io_repr()}"


class InvariantDescriptor(SpectralLayer):
    """``[B, C, grid(b)] -> [B, C, b]`` (``[B, C b]`` with ``flatten``, the feature vector a
    classifier reads; ``input="coeffs"`` reads coefficients ``[B, C, b, b]``): the norms ``||f_l||``
    of each degree's coefficients (all 2l + 1 orders), exactly SO(3)-invariant since the Wigner-D
    matrices are unitary."""

    def __init__(self, kind: str = "dh", backend: str | None = None, flatten: bool = False, *,
                 input: str = "grid") -> None:
        super().__init__()
        self._domains("InvariantDescriptor", kind, backend, input, None)
        self.flatten = check_bool("InvariantDescriptor", "flatten", flatten)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_layer_input(x, None, self.kind, None, "InvariantDescriptor", self.input)
        y = degree_norms(self.coefficients(x))
        return y.flatten(1) if self.flatten else y

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, flatten={self.flatten}{self._io_repr()}"
