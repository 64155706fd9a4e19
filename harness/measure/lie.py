"""The Lie derivative of a model (Gruver et al., ICLR 2023, "The Lie derivative for measuring
learned equivariance"), exactly: no interpolation, no finite differences.

For a generator X of so(3) (a unit axis a in the harness frame) and a watched layer f::

    L_X f(x) = d/dt [ R_t^-1 . f(R_t . x) ]_{t=0} = J_f(x)[dρ_in(X) x] - dρ_out(X) f(x),
    R_t = exp(t X),

where dρ is the field's infinitesimal action (on sphere coefficients ``-i a.J`` per degree) and
the Jacobian-vector product comes from ``torch.func.jvp``. The reported number is
``||L_X f(x)|| / ||f(x)||`` in the field's norm: 0 (rounding) for an exactly equivariant layer, and
for a finite rotation by a small angle t the relative error is ``t`` times it (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..sphere.fields import Field
from .watch import FieldDecl, check_finite, frozen, prepare_input, probes, run, watch_list

GENERATORS: dict[str, np.ndarray] = {"x": np.array([1.0, 0.0, 0.0]), "y": np.array([0.0, 1.0, 0.0]),
                                     "z": np.array([0.0, 0.0, 1.0])}
MODES = ("cumulative", "isolated")
COLUMNS = ["layer", "layer_index", "layer_type", "field", "input", "generator", "lie_derivative", "mode", "flag"]
ZERO_FLAG = "zero reference: relative errors undefined"  # the rule of equivariance_error's flag column


def lie_derivative(model: nn.Module | Callable, x: torch.Tensor, *, input: Field | str | None = None,
                   output: Field | None = None, layers: Sequence[str] | Mapping[str, FieldDecl] | None = None,
                   mode: str = "cumulative", project: bool = False) -> pd.DataFrame:
    """``||L_X f(x)|| / ||f(x)||`` per watched layer, input and generator X in {x, y, z}.

    Arguments as :func:`harness.equivariance_error` (no rotations: the generators are fixed).
    "cumulative" differentiates the model up to each layer; "isolated" each layer alone at its
    own captured input. Columns ``COLUMNS``: ``layer``, ``layer_index``, ``layer_type``, ``field``
    (the output's), ``input``, ``generator`` (x, y or z), ``lie_derivative`` (per radian, relative
    to the output's norm; NaN where that norm is zero, and then ``flag`` says so), ``mode``,
    ``flag``. The model is measured in eval mode and left as it was.
    """
    if mode not in MODES:
        raise ValueError(f"mode: unknown mode {mode!r}; valid modes are {list(MODES)}")
    field, x = prepare_input(model, x, input, project)
    watched = watch_list(model, layers, output)
    if x.shape[0] == 0:
        return pd.DataFrame(columns=COLUMNS)
    isolated = mode == "isolated"
    rows = []
    with frozen(model):
        _, calls = run(model, x, watched, capture_inputs=isolated)
        plist = probes(watched, calls, field, need_inputs=isolated)
        outs = [p.output(calls) for p in plist]
        for y, p in zip(outs, plist):
            check_finite(y, f"layer {p.name!r} output")
        coeffs = [p.out_field.coefficients(y) for p, y in zip(plist, outs)]
        norms = [p.out_field.norm2(c).double() for p, c in zip(plist, coeffs)]
        for gname, omega in GENERATORS.items():
            if isolated:
                tangents = []
                for p in plist:
                    u = calls[p.key][p.call].inp
                    v = p.in_field.from_coefficients(p.in_field.lie_action(p.in_field.coefficients(u), omega))
                    tangents.append(torch.func.jvp(lambda a, p=p: p.rerun(calls, a), (u,), (v,))[1])
            else:
                v = field.from_coefficients(field.lie_action(field.coefficients(x), omega))

                def forward(a: torch.Tensor) -> tuple[torch.Tensor, ...]:
                    _, cs = run(model, a, watched)
                    return tuple(p.output(cs) for p in plist)

                tangents = list(torch.func.jvp(forward, (x,), (v,))[1])
            for j, (p, t, c, n2) in enumerate(zip(plist, tangents, coeffs, norms)):
                check_finite(t, f"layer {p.name!r} derivative")
                L = p.out_field.coefficients(t) - p.out_field.lie_action(c, omega)
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.where(n2.cpu().numpy() == 0, np.nan,
                                   np.sqrt(p.out_field.norm2(L).double().cpu().numpy() / n2.cpu().numpy()))
                rows.append(pd.DataFrame({"layer": p.name, "layer_index": j, "layer_type": p.layer_type,
                                          "field": repr(p.out_field), "input": np.arange(x.shape[0]),
                                          "generator": gname, "lie_derivative": rel, "mode": mode,
                                          "flag": np.where(np.isnan(rel), ZERO_FLAG, "")}, columns=COLUMNS))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)


__all__ = ["GENERATORS", "lie_derivative"]
