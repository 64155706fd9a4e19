"""Aliasing of pointwise nonlinearities: what sampling sigma on a grid does to a band-limited signal.

For a nonlinearity with input y of bandwidth b (``docs/metrics.md``):

* ``out_of_band``: the fraction of the energy of sigma(y) at degrees >= b, from a reference grid
  of bandwidth ``b_ref`` on which y is evaluated exactly from its coefficients;
* ``aliasing_error``: ``||sft(layer(y)) - P_b sigma(y)|| / ||P_b sigma(y)||``, the layer's
  bandwidth-b output against the exact projection of sigma(y) onto degrees < b.

Works for a harness :class:`~harness.nn.layers.Pointwise` (its sigma, its oversampling), any
pointwise ``nn.Module`` (``nn.ReLU``, ``nn.GELU``, ...) or a callable applied elementwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..nn.layers import Pointwise, SpectralLayer
from ..nn.models import SphericalModel
from ..sphere.fields import Field, S2Coeffs, S2Grid
from ..sphere.grids import bandwidth_from_shape, check_kind
from ..sphere.transforms import degree_norms, isft, resize_coefficients, sft
from .watch import frozen, prepare_input, run, watch_list

#: torch modules that apply one function to every entry independently (watched by default).
POINTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid,
    nn.Softplus, nn.Softsign, nn.ReLU6, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Tanhshrink,
    nn.LogSigmoid, nn.Threshold)
COLUMNS = ["layer", "input", "out_of_band", "aliasing_error", "reference_bandwidth", "flag"]
ZERO_FLAG = "zero reference: relative errors undefined"  # the rule of equivariance_error's flag column


def _norm2(c: torch.Tensor) -> torch.Tensor:
    """``[N]`` squared L2(S^2) norm of ``[N, ..., b, b]`` coefficients."""
    return degree_norms(c).square().reshape(c.shape[0], -1).sum(-1)


def _sigma(layer: object, kind: str | None) -> tuple[Callable, str, float]:
    if isinstance(layer, Pointwise):
        if kind is not None and kind != layer.kind:
            raise ValueError(f"kind: the layer works on the {layer.kind!r} grid, got kind={kind!r}")
        return layer.act, layer.kind, layer.oversampling
    if not callable(layer):
        raise TypeError(f"layer: expected a Pointwise layer, a pointwise nn.Module or a callable, got"
                        f" {type(layer).__name__}")
    if kind is None:
        raise ValueError(f"kind: the grid of the input of a {type(layer).__name__} must be declared"
                         " (e.g. kind='dh'); only a harness Pointwise knows its own")
    return layer, check_kind(kind), 1.0


def _check_pointwise(sigma: Callable, y: torch.Tensor, name: str) -> None:
    """A pointwise function gives each entry the same value whatever the tensor's shape and order:
    refuse one that does not (a softmax, a norm, a convolution)."""
    flat = y.reshape(-1)[:4096]
    perm = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))
    a, b, c = sigma(flat[perm][None, :]), sigma(flat[:, None]), sigma(y)
    ok = all(isinstance(t, torch.Tensor) for t in (a, b, c)) and a.numel() == b.numel() == flat.numel()
    if not ok or not (torch.allclose(a.reshape(-1), b.reshape(-1)[perm], rtol=1e-6, atol=1e-12)
                      and torch.allclose(c.reshape(-1)[:4096], b.reshape(-1), rtol=1e-6, atol=1e-12)):
        raise ValueError(f"layer {name!r}: is not pointwise (its output moves when its entries are permuted);"
                         " aliasing is defined for functions applied to each sample independently")


def _output_coefficients(layer: object, y: torch.Tensor, kind: str) -> torch.Tensor:
    """The bandwidth-b coefficients of the layer's output on grid samples ``y`` (a harness
    Pointwise may read and write coefficients instead: ``input`` / ``output``)."""
    if isinstance(layer, Pointwise):
        out = layer(y if layer.input == "grid" else sft(y, kind))
        return out if layer.output == "coeffs" else sft(out, kind)
    return sft(layer(y), kind)


def aliasing(layer: Pointwise | nn.Module | Callable, y: torch.Tensor, *, kind: str | None = None,
             reference_factor: int = 4, project: bool = False) -> pd.DataFrame:
    """Aliasing of one pointwise nonlinearity on its input ``y`` ``[N, ..., grid(b)]``: one row per
    input with ``out_of_band``, ``aliasing_error``, ``reference_bandwidth``
    ``max(reference_factor * b, 2 ceil(s b))`` (s: the layer's oversampling, 1 if it has none) and
    ``flag`` (NaN rows of a zero input say so). ``y`` must be band-limited on its grid (as for
    :func:`model_aliasing` and the equivariance measurement), or ``project=True`` measures its
    band-limited part."""
    sigma, kind, s = _sigma(layer, kind)
    if not isinstance(y, torch.Tensor) or y.dim() < 3:
        raise ValueError(f"y: expected grid samples [N, ..., nlat, nlon], got {getattr(y, 'shape', type(y).__name__)}")
    if isinstance(reference_factor, bool) or not isinstance(reference_factor, int) or reference_factor < 2:
        raise ValueError(f"reference_factor: expected an int >= 2, got {reference_factor!r}")
    b = bandwidth_from_shape(tuple(y.shape[-2:]), kind)
    if y.shape[0] == 0:
        return pd.DataFrame(columns=COLUMNS[1:])
    _, y = prepare_input(None, y, S2Grid(kind, b), project, "y")  # finite and band-limited, or refused
    bref = max(reference_factor * b, math.ceil(s * b - 1e-9) * 2)
    with frozen(layer):
        _check_pointwise(sigma, y, type(layer).__name__)
        c = sft(y, kind)
        ref = sft(sigma(isft(resize_coefficients(c, bref), "gl")), "gl")  # sigma(y) to degree bref - 1
        power = degree_norms(ref).square().reshape(ref.shape[0], -1, bref).sum(1)  # [N, bref]
        oob = power[:, b:].sum(-1) / power.sum(-1)
        proj = resize_coefficients(ref, b)
        err = (_norm2(_output_coefficients(layer, y, kind) - proj) / _norm2(proj)).sqrt()
    err, oob = err.double().cpu().numpy(), oob.double().cpu().numpy()
    return pd.DataFrame({"input": np.arange(y.shape[0]), "out_of_band": oob, "aliasing_error": err,
                         "reference_bandwidth": bref, "flag": np.where(np.isnan(err) | np.isnan(oob), ZERO_FLAG, "")})


def model_aliasing(model: nn.Module, x: torch.Tensor, *, input: Field | str | None = None,
                   layers: Sequence[str] | Mapping[str, Field] | None = None, reference_factor: int = 4,
                   project: bool = False) -> pd.DataFrame:
    """:func:`aliasing` of every pointwise nonlinearity of ``model`` on the input it gets in the
    forward pass on ``x``. layers: names (or name -> the S2Grid of that layer's input); default:
    every harness ``Pointwise`` and every module of ``POINTWISE_MODULES``. Columns ``COLUMNS``."""
    field, x = prepare_input(model, x, input, project)
    if x.shape[0] == 0:
        return pd.DataFrame(columns=COLUMNS)
    if layers is None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model: a plain callable ({type(model).__name__}) has no layers to read")
        names = ({n: l for n, l in zip(model.names, model.layers) if isinstance(l, Pointwise)}
                 if isinstance(model, SphericalModel) else
                 {n: m for n, m in model.named_modules() if n and isinstance(m, (Pointwise, *POINTWISE_MODULES))})
        layers = list(names)
    if not layers:
        return pd.DataFrame(columns=COLUMNS)
    watched = watch_list(model, layers, None)
    for w in watched:  # a harness layer that is not a pointwise nonlinearity: say so, before running it
        if isinstance(w.module, SpectralLayer) and not isinstance(w.module, Pointwise):
            raise ValueError(f"layers: {w.name!r} is a {type(w.module).__name__}, not a pointwise nonlinearity;"
                             " aliasing is measured on pointwise ones (a harness Pointwise, nn.ReLU, ...)")
    frames = []
    with frozen(model):
        _, calls = run(model, x, watched, capture_inputs=True)
    for w in watched:
        for i, c in enumerate(calls[w.name]):
            name = w.name if len(calls[w.name]) == 1 else f"{w.name}[{i}]"
            f = w.out_field if isinstance(layers, Mapping) and layers[w.name] is not None else w.in_field
            inp = c.inp
            if isinstance(w.module, Pointwise) and w.module.input == "coeffs" and inp is not None:
                f, inp = None, isft(inp, w.module.kind)  # coefficients in: measured on the layer's grid
            if f is None or isinstance(f, S2Coeffs):
                if isinstance(w.module, Pointwise):
                    f = S2Grid(w.module.kind, bandwidth_from_shape(tuple(inp.shape[-2:]), w.module.kind))
                elif isinstance(field, S2Grid) and field.matches(inp):
                    f = field
            if not isinstance(f, S2Grid) or inp is None:
                raise ValueError(f"layer {name!r}: cannot tell which grid its input "
                                 f"{tuple(getattr(inp, 'shape', ()))} is on; declare it: layers={{{w.name!r}:"
                                 " harness.S2Grid(kind, b)}")
            f.check(inp, f"layer {name!r} input")
            _, inp = prepare_input(None, inp, f, project, f"layer {name!r} input")  # band-limited, or refused
            frames.append(aliasing(w.module, inp, kind=f.kind, reference_factor=reference_factor).assign(layer=name))
    return pd.concat(frames, ignore_index=True)[COLUMNS]


__all__ = ["POINTWISE_MODULES", "aliasing", "model_aliasing"]
