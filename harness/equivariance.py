"""Measuring equivariance: per-layer errors (cumulative, isolated), error spectra, aliasing.

Library code returns numbers (DataFrames); callers and tests decide what passes. Definitions are
in ``docs/metrics.md``. Every comparison is made in the representation the network passes on —
a layer's bandwidth-b spherical harmonic coefficients — and ``g.y`` is the exact (Wigner-D)
rotation of those coefficients, so the instrument adds no error of its own.
"""

from __future__ import annotations

import math
import numpy as np
import pandas as pd
import torch
from torch import nn

from .grids import bandwidth_from_shape, check_bandwidth, check_kind
from .layers import Pointwise
from .models import SphericalModel
from .rotations import check_rotation, rotate_coefficients
from .transforms import degree_norms, isft, resize_coefficients, sft

MODES = ("cumulative", "isolated")


# --------------------------------------------------------------------------- inputs
def random_signals(n: int, channels: int, bandwidth: int, alpha: float = 0.0, kind: str = "dh",
                   seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[n, channels, nlat, nlon]`` random real signals of bandwidth b on grid ``kind``.

    Coefficients are independent Gaussians with ``E|f^m_l|^2 = (1 + l)^-alpha`` (alpha = 0: white)
    for every order m of degree l, so the degree-l power is ``(2l + 1)(1 + l)^-alpha``; the
    signals are scaled to unit mean square on the sphere. Own generator: the global RNG is untouched.
    """
    b = check_bandwidth(bandwidth)
    gen = torch.Generator().manual_seed(int(seed))
    c = torch.randn(n, channels, b, b, dtype=torch.complex128, generator=gen)
    l = torch.arange(b, dtype=torch.float64)
    c = c * ((1 + l) ** (-alpha / 2))[:, None] * torch.tril(torch.ones(b, b, dtype=torch.float64))
    c[..., 0] = math.sqrt(2) * c[..., 0].real  # real m = 0 coefficient with the same variance
    c = c / degree_norms(c).square().sum(-1).mean().sqrt() * math.sqrt(4 * math.pi)
    return isft(c, kind).to(dtype)


# --------------------------------------------------------------------------- helpers
def _layers(model_or_layer: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(model_or_layer, SphericalModel):
        return list(zip(model_or_layer.names, model_or_layer.layers))
    if isinstance(model_or_layer, nn.Module):
        return [(type(model_or_layer).__name__, model_or_layer)]
    raise TypeError(f"model_or_layer: expected a SphericalModel or a layer (nn.Module), got {type(model_or_layer).__name__}")


def _kind_of(layer: nn.Module, default: str) -> str:
    return getattr(layer, "input_kind", None) or getattr(layer, "kind", None) or default


def _is_grid(t: torch.Tensor) -> bool:
    return t.dim() == 4


def _rotate_grid(y: torch.Tensor, R: torch.Tensor, kind: str) -> torch.Tensor:
    """Rotate each of ``y``'s bandwidth-b representations by every rotation: ``[N, C, g] -> [K, N, C, g]``."""
    c = sft(y, kind)
    return isft(rotate_coefficients(c[None], R[:, None, None]), kind)


def _norm2(c: torch.Tensor) -> torch.Tensor:
    """Squared L2(S^2) norm over channels of ``[..., C, b, b]`` coefficients -> ``[...]``."""
    return degree_norms(c).square().sum((-1, -2))


# --------------------------------------------------------------------------- equivariance
def equivariance_error(model_or_layer: nn.Module, x: torch.Tensor, rotations: torch.Tensor,
                       mode: str = "cumulative", kind: str = "dh", spectrum: bool = False
                       ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Per-layer equivariance error of a model (or a single layer).

    x: ``[N, C, nlat, nlon]`` bandwidth-limited inputs on grid ``kind``; rotations ``[K, 3, 3]``.
    Returns one row per (layer, input, rotation): ``layer, layer_index, layer_type, input,
    rotation, rel_error, max_abs_error, layer_bandwidth, error_kind, mode`` ("equivariance" for grid
    outputs, "invariance" for descriptor/linear outputs). With ``spectrum=True`` also a long
    frame ``layer, input, rotation, degree, error`` (per-degree error / total output norm).
    """
    if mode not in MODES:
        raise ValueError(f"mode: unknown mode {mode!r}; valid modes are {list(MODES)}")
    check_kind(kind)
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x: expected inputs [N, C, nlat, nlon], got {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    bandwidth_from_shape(tuple(x.shape[-2:]), kind)
    check_rotation(rotations)
    if rotations.dim() != 3:
        raise ValueError(f"rotations: expected [K, 3, 3], got shape {tuple(rotations.shape)}")
    layers = _layers(model_or_layer)
    R = rotations.to(x.dtype)
    K, N = R.shape[0], x.shape[0]
    rows, spec_rows = [], []
    with torch.no_grad():
        xs = _rotate_grid(x, R, kind).reshape(K * N, *x.shape[1:])  # exact g.x, [K*N, C, g]
        y, ys = x, xs
        for i, (name, layer) in enumerate(layers):
            lk = _kind_of(layer, kind)
            if isinstance(layer, (nn.Linear, nn.BatchNorm1d)) and y.dim() > 2:
                y, ys = y.flatten(1), ys.flatten(1)
            if mode == "isolated":  # feed the exact rotation of this layer's own input
                ys = (_rotate_grid(y, R, lk).reshape(K * N, *y.shape[1:]) if _is_grid(y)
                      else y.repeat(K, *([1] * (y.dim() - 1))))  # an invariant rotates to itself
            y_next, ys_next = layer(y), layer(ys)
            if _is_grid(y_next):  # equivariance in the coefficients passed on
                b = bandwidth_from_shape(tuple(y_next.shape[-2:]), lk)
                c, cs = sft(y_next, lk), sft(ys_next, lk).reshape(K, N, *y_next.shape[1:2], b, b)
                gc = rotate_coefficients(c[None], R[:, None, None])  # [K, N, C, b, b]
                diff = cs - gc
                rel = (_norm2(diff) / _norm2(c)[None]).sqrt()
                mx = isft(diff, lk).abs().amax((-1, -2, -3))
                kind_err = "equivariance"
                if spectrum:
                    per_l = degree_norms(diff).square().sum(-2).sqrt() / _norm2(c)[None, :, None].sqrt()
                    kk, nn_, ll = np.meshgrid(np.arange(K), np.arange(N), np.arange(b), indexing="ij")
                    spec_rows.append(pd.DataFrame({"layer": name, "layer_index": i, "input": nn_.ravel(),
                                                   "rotation": kk.ravel(), "degree": ll.ravel(),
                                                   "error": per_l.double().cpu().numpy().ravel()}))
            else:  # invariance of descriptor / linear outputs
                b = y.shape[-1] if _is_grid(y) else -1
                out = ys_next.reshape(K, N, -1)
                ref = y_next.reshape(1, N, -1)
                rel = (out - ref).norm(dim=-1) / ref.norm(dim=-1)
                mx = (out - ref).abs().amax(-1)
                kind_err = "invariance"
            kk, nn_ = np.meshgrid(np.arange(K), np.arange(N), indexing="ij")
            rows.append(pd.DataFrame({
                "layer": name, "layer_index": i, "layer_type": type(layer).__name__,
                "input": nn_.ravel(), "rotation": kk.ravel(),
                "rel_error": rel.double().cpu().numpy().ravel(), "max_abs_error": mx.double().cpu().numpy().ravel(),
                "layer_bandwidth": b, "error_kind": kind_err, "mode": mode,
            }))
            y, ys = y_next, ys_next
    df = pd.concat(rows, ignore_index=True)
    if spectrum:
        return df, pd.concat(spec_rows, ignore_index=True) if spec_rows else pd.DataFrame(
            columns=["layer", "layer_index", "input", "rotation", "degree", "error"])
    return df


# --------------------------------------------------------------------------- aliasing
def aliasing(layer: Pointwise, y: torch.Tensor, reference_factor: int = 4) -> pd.DataFrame:
    """Aliasing of one nonlinearity on its input ``y`` ``[N, C, grid(b)]`` (per input row):

    * ``out_of_band``: the fraction of the energy of sigma(y) at degrees >= b, from a reference
      grid of bandwidth ``reference_factor * b`` (y evaluated there exactly from its coefficients);
    * ``aliasing_error``: ``||P_b sigma(y) - layer(y)|| / ||P_b sigma(y)||``, the layer's
      bandwidth-b output against the exact projection of sigma(y) onto degrees < b.
    """
    if not isinstance(layer, Pointwise):
        raise TypeError(f"layer: expected a Pointwise layer, got {type(layer).__name__}")
    kind = layer.input_kind
    b = bandwidth_from_shape(tuple(y.shape[-2:]), kind)
    bref = max(reference_factor * b, math.ceil(layer.oversampling * b) * 2)
    with torch.no_grad():
        c = sft(y, kind)
        fine = isft(resize_coefficients(c, bref), "gl")
        ref = sft(layer.act(fine), "gl")  # [N, C, bref, bref]
        power = degree_norms(ref).square().sum(-2)  # [N, bref]
        oob = power[:, b:].sum(-1) / power.sum(-1)
        proj = resize_coefficients(ref, b)
        out = sft(layer(y), kind)
        err = (_norm2(out - proj) / _norm2(proj)).sqrt()
    return pd.DataFrame({"input": np.arange(y.shape[0]), "out_of_band": oob.double().cpu().numpy(),
                         "aliasing_error": err.double().cpu().numpy(), "reference_bandwidth": bref})


def model_aliasing(model: SphericalModel, x: torch.Tensor, reference_factor: int = 4) -> pd.DataFrame:
    """:func:`aliasing` for every Pointwise layer of ``model``, fed its input in the unrotated
    forward pass; columns ``layer, input, out_of_band, aliasing_error, reference_bandwidth``."""
    frames = []
    with torch.no_grad():
        y = x
        for name, layer in zip(model.names, model.layers):
            if isinstance(layer, Pointwise):
                frames.append(aliasing(layer, y, reference_factor).assign(layer=name))
            if isinstance(layer, (nn.Linear, nn.BatchNorm1d)) and y.dim() > 2:
                y = y.flatten(1)
            y = layer(y)
    cols = ["layer", "input", "out_of_band", "aliasing_error", "reference_bandwidth"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


__all__ = ["MODES", "random_signals", "equivariance_error", "aliasing", "model_aliasing"]
