"""Models built from layer specs: ``build_model(spec)`` and named presets.

A spec is a mapping (a dict, or a TOML document read with ``tomllib``)::

    in_channels = 1
    bandwidth = 30
    kind = "dh"                  # optional, default "dh"
    [[layers]]
    type = "conv"                # conv | pointwise | pool | descriptor | batchnorm | linear
    out_channels = 16
    filter_params = 8            # optional
    [[layers]]
    type = "pointwise"
    activation = "relu"
    oversampling = 1.5

or a bare list of layer tables together with ``in_channels=``, ``bandwidth=`` keywords.
Every key is validated before anything is built; errors name the layer, the key and the allowed
values. Channels and bandwidth are threaded through the layers.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .fields import Field, Invariant, S2Grid
from .grids import GRID_KINDS
from .layers import ACTIVATIONS, InvariantDescriptor, Pointwise, SpectralPool, SphericalConv

LAYER_KEYS: dict[str, dict[str, Any]] = {
    # type -> {key: default (None: optional), ...}; "out_channels"/"out_features" are required
    "conv": {"out_channels": ..., "filter_params": None, "bias": True},
    "pointwise": {"activation": "relu", "oversampling": 1.0, "kind": None},
    "pool": {"bandwidth": None},
    "descriptor": {},
    "linear": {"out_features": ..., "bias": True},
    "batchnorm": {},  # BatchNorm1d over the (invariant) descriptor features
}

PRESETS: dict[str, dict[str, Any]] = {
    # In the style of Esteves et al. (2018)'s spherical MNIST network: conv / nonlinearity / pool
    # blocks with localized (8-anchor) filters, the invariant descriptor, batch normalization of
    # the (invariant) descriptor features, a linear classifier.
    "esteves_mnist": {
        "in_channels": 1,
        "bandwidth": 30,
        "kind": "dh",
        "layers": [
            {"type": "conv", "out_channels": 16, "filter_params": 8},
            {"type": "pointwise", "activation": "relu"},
            {"type": "pool"},  # halves the bandwidth
            {"type": "conv", "out_channels": 32, "filter_params": 8},
            {"type": "pointwise", "activation": "relu"},
            {"type": "pool"},
            {"type": "conv", "out_channels": 64},  # bandwidth 7 here: every degree its own weight
            {"type": "pointwise", "activation": "relu"},
            {"type": "descriptor"},
            {"type": "batchnorm"},
            {"type": "linear", "out_features": 10},
        ],
    },
}


class SphericalModel(nn.Module):
    """A chain of named layers; ``forward(x, return_all=True)`` also returns every layer's output
    (``[(name, tensor), ...]``), which is what the equivariance harness reads."""

    def __init__(self, names: Sequence[str], layers: Sequence[nn.Module], spec: Mapping[str, Any]) -> None:
        super().__init__()
        self.names = list(names)
        self.layers = nn.ModuleList(layers)
        self.spec = copy.deepcopy(dict(spec))

    def forward(self, x: torch.Tensor, return_all: bool = False):
        outs = []
        for name, layer in zip(self.names, self.layers):
            if isinstance(layer, (nn.Linear, nn.BatchNorm1d)) and x.dim() > 2:
                x = x.flatten(1)
            x = layer(x)
            outs.append((name, x))
        return (x, outs) if return_all else x

    @property
    def kind(self) -> str:
        return self.spec["kind"]

    def input_field(self) -> S2Grid:
        """The field of this model's input: its grid kind at its bandwidth."""
        return S2Grid(self.spec["kind"], self.spec["bandwidth"])

    def fields(self) -> list[tuple[str, nn.Module, Field, Field]]:
        """``(name, layer, input field, output field)`` per layer, from the spec: grids of the
        model's kind (pools change the bandwidth), then invariants from the descriptor on."""
        out, f = [], self.input_field()
        for name, layer in zip(self.names, self.layers):
            if isinstance(layer, SpectralPool):
                g = S2Grid(f.kind, layer.output_bandwidth(f.bandwidth))
            elif isinstance(layer, (InvariantDescriptor, nn.Linear, nn.BatchNorm1d)):
                g = Invariant()
            else:
                g = f
            out.append((name, layer, f, g))
            f = g
        return out


def _check_int(v: Any, where: str, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{where}: expected an int >= {lo}, got {v!r}")
    return v


def normalize_spec(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str, **top: Any) -> dict[str, Any]:
    """Validate a spec (or a preset name) and fill defaults; returns a plain dict. No compute."""
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"model: unknown preset {spec!r}; presets are {sorted(PRESETS)}")
        spec = PRESETS[spec]
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"in_channels", "bandwidth", "kind", "layers", "backend"}
        if unknown:
            raise ValueError(f"model: unknown key(s) {sorted(unknown)}; allowed: "
                             "['backend', 'bandwidth', 'in_channels', 'kind', 'layers']")
        full = {**dict(spec), **top}
    elif isinstance(spec, Sequence):
        full = {"layers": list(spec), **top}
    else:
        raise TypeError(f"model: expected a mapping, a list of layer tables or a preset name, got {type(spec).__name__}")
    out = {
        "in_channels": _check_int(full.get("in_channels"), "model.in_channels"),
        "bandwidth": _check_int(full.get("bandwidth"), "model.bandwidth"),
        "kind": full.get("kind", "dh"),
        "backend": full.get("backend"),
        "layers": [],
    }
    if out["kind"] not in GRID_KINDS:
        raise ValueError(f"model.kind: unknown grid {out['kind']!r}; valid grids are {list(GRID_KINDS)}")
    layers = full.get("layers")
    if not isinstance(layers, Sequence) or isinstance(layers, str) or not layers:
        raise ValueError(f"model.layers: expected a non-empty list of layer tables, got {layers!r}")
    flat = False
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        if not isinstance(layer, Mapping) or "type" not in layer:
            raise ValueError(f"{where}: expected a table with a 'type' key, got {layer!r}")
        t = layer["type"]
        if t not in LAYER_KEYS:
            raise ValueError(f"{where}.type: unknown layer type {t!r}; allowed: {sorted(LAYER_KEYS)}")
        allowed = LAYER_KEYS[t]
        unknown = set(layer) - set(allowed) - {"type"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} for a {t!r} layer; allowed: {sorted(allowed)}")
        filled = {"type": t}
        for k, default in allowed.items():
            if k not in layer and default is ...:
                raise ValueError(f"{where}: a {t!r} layer needs {k!r}")
            filled[k] = layer.get(k, default)
        if t in ("conv", "pointwise", "pool", "descriptor") and flat:
            raise ValueError(f"{where}: a {t!r} layer cannot follow a descriptor or linear layer")
        if t == "conv":
            _check_int(filled["out_channels"], f"{where}.out_channels")
            if filled["filter_params"] is not None:
                _check_int(filled["filter_params"], f"{where}.filter_params")
        if t == "pointwise":
            a = filled["activation"]
            if a not in ACTIVATIONS:
                raise ValueError(f"{where}.activation: unknown activation {a!r}; known: {sorted(ACTIVATIONS)}")
            s = filled["oversampling"]
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 1:
                raise ValueError(f"{where}.oversampling: expected a number >= 1, got {s!r}")
            if filled["kind"] is not None and filled["kind"] not in GRID_KINDS:
                raise ValueError(f"{where}.kind: unknown grid {filled['kind']!r}; valid grids are {list(GRID_KINDS)}")
        if t == "pool" and filled["bandwidth"] is not None:
            _check_int(filled["bandwidth"], f"{where}.bandwidth")
        if t == "linear":
            _check_int(filled["out_features"], f"{where}.out_features")
        if t in ("linear", "batchnorm") and not flat:
            raise ValueError(f"{where}: a {t!r} layer needs a 'descriptor' before it (grid signals are not invariant)")
        if t == "descriptor":
            flat = True
        out["layers"].append(filled)
    return out


def build_model(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str, **top: Any) -> SphericalModel:
    """A :class:`SphericalModel` from a spec (see the module docstring) or a preset name.

    Keywords (``in_channels``, ``bandwidth``, ``kind``, ``backend``) override the spec's top level.
    Parameters are float32; ``.double()`` the model for float64.
    """
    s = normalize_spec(spec, **top)
    c, b, kind, be = s["in_channels"], s["bandwidth"], s["kind"], s["backend"]
    names, layers, counts = [], [], {}
    features = None
    for i, L in enumerate(s["layers"]):
        t = L["type"]
        counts[t] = counts.get(t, 0) + 1
        names.append(f"{t}{counts[t]}")
        if t == "conv":
            layers.append(SphericalConv(c, L["out_channels"], b, kind, L["filter_params"], L["bias"], be))
            c = L["out_channels"]
        elif t == "pointwise":
            layers.append(Pointwise(L["activation"], L["oversampling"], L["kind"], kind, be))
        elif t == "pool":
            bo = L["bandwidth"] if L["bandwidth"] is not None else max(1, b // 2)
            if bo > b:
                raise ValueError(f"layers[{i}].bandwidth: {bo} exceeds the bandwidth {b} reaching this layer")
            layers.append(SpectralPool(bo, kind, be))
            b = bo
        elif t == "descriptor":
            layers.append(InvariantDescriptor(kind, be))
            features = c * b
        elif t == "batchnorm":
            layers.append(nn.BatchNorm1d(features))
        else:  # linear
            layers.append(nn.Linear(features, L["out_features"], bias=L["bias"]))
            features = L["out_features"]
    return SphericalModel(names, layers, s)
