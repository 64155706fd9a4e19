"""Models built from layer specs: ``build_model(spec)`` and named presets.

A spec is a mapping (a dict, or a TOML document read with ``tomllib``)::

    in_channels = 1
    bandwidth = 30
    kind = "dh"                  # optional, default "dh"
    [[layers]]
    type = "conv"                # conv | pointwise | pool | descriptor | batchnorm | linear (and SO(3): below)
    out_channels = 16
    filter_params = 8            # optional
    [[layers]]
    type = "pointwise"
    activation = "relu"
    oversampling = 1.5

or a bare list of layer tables together with ``in_channels=``, ``bandwidth=`` keywords.

Cohen et al.'s SO(3) family: ``s2_so3_conv`` lifts the S^2 signal to SO(3) (keys ``out_channels``,
``bandwidth`` = its output bandwidth, the kernel grid ``max_beta``, ``n_beta``, ``n_alpha``);
then ``so3_conv`` (also ``max_gamma``, ``n_gamma``), and ``pointwise``, ``pool``, ``descriptor``
act on SO(3) grids; ``integrate`` is the mean over SO(3) (an invariant, as ``descriptor``).

The nonlinearity frontier (:mod:`harness.nn.nonlinearities`): ``polynomial`` (``degree``,
``activation``, ``oversampling`` (default: the cheapest exact grid), ``kappa``), ``quadratic``
(``oversampling``, default: the exact grid), ``norm`` and ``gated`` (exactly equivariant), in
place of ``pointwise`` on S^2 signals; :data:`NONLINEARITY_VARIANTS` names the ones compared.

Every key is validated before anything is built; errors name the layer, the key and the allowed
values. Channels and bandwidth are threaded through the layers.

The model's input is grid samples; between two consecutive S^2 layers it hands over
coefficients (``between="coeffs"``, the default: the convolution, pooling and descriptor then cost
no transform, and a nonlinearity one synthesis and one analysis), and the last S^2 layer before
anything else (an SO(3) layer, the model's output) writes grid samples. ``between="grid"`` builds
the same model with every layer on grid samples; both give the same numbers to rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..sphere.fields import Field, Invariant, S2Coeffs, S2Grid
from ..sphere.grids import GRID_KINDS
from ..sphere.transforms import BACKENDS
from ..util.memory import check_fits
from ..util.schema import REQUIRED, Bool, Choice, ConfigError, Custom, Int, ListOf, Number, Optional, Str, Table, validate
from .layers import ACTIVATIONS, InvariantDescriptor, Pointwise, SpectralPool, SphericalConv
from .nonlinearities import GatedActivation, NormActivation, PolynomialActivation, QuadraticActivation
from .so3_layers import (DEFAULT_MAX_BETA, S2ToSO3Conv, SO3Conv, SO3Descriptor, SO3Integrate, SO3Pointwise,
                         SO3Pool)

def _layer_tables() -> dict[str, Table]:
    """The keys of each layer type (``type`` itself is checked first)."""
    t = {"type": (Str(), REQUIRED)}
    kernel = {"max_beta": (Number(0.0), DEFAULT_MAX_BETA), "n_beta": (Int(1), 3), "n_alpha": (Int(1), 8)}
    return {
        "conv": Table({**t, "out_channels": (Int(1), REQUIRED), "filter_params": (Optional(Int(1)), None),
                       "bias": (Bool(), True)}),
        "pointwise": Table({**t, "activation": (Choice(ACTIVATIONS), "relu"), "oversampling": (Number(1.0), 1.0),
                            "fine_kind": (Optional(Choice(GRID_KINDS)), None)}, renamed={"kind": "fine_kind"}),
        "pool": Table({**t, "bandwidth": (Optional(Int(1)), None)}),
        "descriptor": Table(t),
        "s2_so3_conv": Table({**t, "out_channels": (Int(1), REQUIRED), "bandwidth": (Optional(Int(1)), None),
                              **kernel, "bias": (Bool(), True)}),
        "so3_conv": Table({**t, "out_channels": (Int(1), REQUIRED), "bandwidth": (Optional(Int(1)), None),
                           **kernel, "max_gamma": (Number(0.0), DEFAULT_MAX_BETA), "n_gamma": (Int(1), 3),
                           "bias": (Bool(), True)}),
        "integrate": Table(t),  # mean over SO(3), per channel
        # the nonlinearity frontier (harness.nn.nonlinearities), S^2 signals only
        "polynomial": Table({**t, "degree": (Int(1), 4), "activation": (Choice(ACTIVATIONS), "relu"),
                             "oversampling": (Optional(Number(1.0)), None), "kappa": (Number(0.0, lo_open=True), 3.0)}),
        "quadratic": Table({**t, "oversampling": (Optional(Number(1.0)), None)}),
        "norm": Table(t),
        "gated": Table(t),
        "linear": Table({**t, "out_features": (Int(1), REQUIRED), "bias": (Bool(), True)}),
        "batchnorm": Table(t),  # BatchNorm1d over the (invariant) descriptor features
    }


LAYER_TABLES = _layer_tables()


def _check_layer(v: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(v, Mapping) or "type" not in v:
        problems.append(f"{where}: expected a table with a 'type' key (one of {sorted(LAYER_TABLES)}), got {v!r}")
        return None
    if not isinstance(v["type"], str) or v["type"] not in LAYER_TABLES:
        problems.append(f"{where}.type: expected one of {sorted(LAYER_TABLES)}, got {v['type']!r}")
        return None
    return LAYER_TABLES[v["type"]].check(v, where, problems)


MODEL_SPEC = Table({
    "in_channels": (Int(1), REQUIRED),
    "bandwidth": (Int(1), REQUIRED),
    "kind": (Choice(GRID_KINDS), "dh"),
    "backend": (Optional(Choice(BACKENDS)), None),
    "layers": (ListOf(Custom(_check_layer, "a layer table"), scalar_ok=False, unique=False), REQUIRED),
})


S2_ONLY = ("polynomial", "quadratic", "norm", "gated")  # the frontier's nonlinearities (S^2 signals)

#: Named nonlinearities of the frontier (issue 13): a layer table for each, to put in place of every
#: ``pointwise`` layer of a preset (``harness.runs.train``'s ``nonlinearity`` axis, the frontier sweep).
NONLINEARITY_VARIANTS: dict[str, dict[str, Any]] = {
    "relu_s1": {"type": "pointwise", "activation": "relu", "oversampling": 1.0},
    "relu_s1.5": {"type": "pointwise", "activation": "relu", "oversampling": 1.5},
    "relu_s2": {"type": "pointwise", "activation": "relu", "oversampling": 2.0},
    "poly2": {"type": "polynomial", "degree": 2},  # on its exact grid (the default)
    "poly4": {"type": "polynomial", "degree": 4},  # on its exact grid
    "poly4_s1.5": {"type": "polynomial", "degree": 4, "oversampling": 1.5},  # aliased (exact from 2.5), cheaper
    "quadratic": {"type": "quadratic"},  # on its exact grid
    "norm": {"type": "norm"},
    "gated": {"type": "gated"},
}


def _check_chain(spec: dict[str, Any], problems: list[str]) -> None:
    """What a single key cannot say: the order of layers, the domain (S^2, SO(3), invariant
    features) and the bandwidth reaching each one."""
    b, domain = spec["bandwidth"], "s2"
    for i, L in enumerate(spec["layers"]):
        where, t = f"layers[{i}]", L["type"]
        if t in ("conv", "pointwise", "pool", "descriptor", "s2_so3_conv", "so3_conv", "integrate", *S2_ONLY) and domain == "flat":
            problems.append(f"{where}: a {t!r} layer cannot follow a descriptor, integrate or linear layer")
        elif t in ("conv", "s2_so3_conv", *S2_ONLY) and domain == "so3":
            problems.append(f"{where}: a {t!r} layer works on S^2 signals, but an s2_so3_conv before it made them"
                            " SO(3) signals (use 'so3_conv')")
        elif t in ("so3_conv", "integrate") and domain == "s2":
            problems.append(f"{where}: a {t!r} layer works on SO(3) signals; put an 's2_so3_conv' before it")
        if t in ("linear", "batchnorm") and domain != "flat":
            problems.append(f"{where}: a {t!r} layer needs a 'descriptor' or 'integrate' before it (grid signals are"
                            " not invariant)")
        if t == "conv" and L["filter_params"] is not None and L["filter_params"] > b:
            problems.append(f"{where}.filter_params: expected at most the bandwidth {b} reaching this layer,"
                            f" got {L['filter_params']}")
        if t == "pointwise" and domain == "so3" and L["fine_kind"] is not None:
            problems.append(f"{where}.fine_kind: SO(3) signals have one grid (SOFT); got {L['fine_kind']!r}")
        if t == "pool":
            bo = L["bandwidth"] if L["bandwidth"] is not None else max(1, b // 2)
            if bo > b:
                problems.append(f"{where}.bandwidth: expected at most the bandwidth {b} reaching this layer, got {bo}")
            b = min(bo, b)
        if t in ("s2_so3_conv", "so3_conv"):
            b = L["bandwidth"] if L["bandwidth"] is not None else b
            domain = "so3" if domain != "flat" else domain
        if t in ("descriptor", "integrate"):
            domain = "flat"


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
    # Cohen et al. (2018)'s spherical MNIST network: S^2 correlation -> ReLU -> SO(3) correlation ->
    # ReLU -> integration over SO(3) -> linear; bandwidths 30 (input), 10, 6; channels 20, 40, 10;
    # localized filters on 24 (S^2) and 72 (SO(3)) near-identity points. One addition: batch
    # normalization of the 40 integrated (invariant) features. s2cnn feeds raw 0-255 pixels; our
    # inputs are in [0, 1], where the integrated features barely vary between images and the
    # network stays at chance (loss 2.30 after an epoch of 2,000 images; 39% with the batchnorm).
    # 58,630 parameters (58,550 without it).
    "cohen_mnist": {
        "in_channels": 1,
        "bandwidth": 30,
        "kind": "soft",
        "layers": [
            {"type": "s2_so3_conv", "out_channels": 20, "bandwidth": 10},
            {"type": "pointwise", "activation": "relu"},
            {"type": "so3_conv", "out_channels": 40, "bandwidth": 6},
            {"type": "pointwise", "activation": "relu"},
            {"type": "integrate"},
            {"type": "batchnorm"},
            {"type": "linear", "out_features": 10},
        ],
    },
}


class SphericalModel(nn.Module):
    """A chain of named layers, each fed the previous one's output (the descriptor flattens the
    invariant features for what follows). :meth:`trace` yields every layer's input and output;
    :meth:`fields` says how each rotates. Measurement reads layers through hooks, never by
    re-running this loop."""

    def __init__(self, names: Sequence[str], layers: Sequence[nn.Module], spec: Mapping[str, Any]) -> None:
        super().__init__()
        self.names = list(names)
        self.layers = nn.ModuleList(layers)
        self.spec = copy.deepcopy(dict(spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def trace(self, x: torch.Tensor) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        """``(name, input, output)`` of every layer, in order."""
        for name, layer in zip(self.names, self.layers):
            y = layer(x)
            yield name, x, y
            x = y

    @property
    def kind(self) -> str:
        return self.spec["kind"]

    def input_field(self) -> S2Grid:
        """The field of this model's input: its grid kind at its bandwidth."""
        return S2Grid(self.spec["kind"], self.spec["bandwidth"])

    def fields(self) -> list[tuple[str, nn.Module, Field, Field]]:
        """``(name, layer, input field, output field)`` per layer, from the spec: grids of the
        model's kind, or their coefficients between S^2 layers (sampled on that grid; pools change
        the bandwidth), then invariants from the descriptor on."""
        out, f = [], self.input_field()
        kind = self.kind
        for name, layer in zip(self.names, self.layers):
            if hasattr(layer, "output_field"):  # the SO(3) layers say it themselves
                g = layer.output_field(f)
            elif isinstance(layer, (InvariantDescriptor, nn.Linear, nn.BatchNorm1d)):
                g = Invariant()
            else:
                b = layer.output_bandwidth(f.bandwidth) if isinstance(layer, SpectralPool) else f.bandwidth
                g = S2Coeffs(b, kind) if getattr(layer, "output", "grid") == "coeffs" else S2Grid(kind, b)
            out.append((name, layer, f, g))
            f = g
        return out


def normalize_spec(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str, **top: Any) -> dict[str, Any]:
    """Validate a spec (or a preset name) and fill defaults; returns a plain dict. No compute.
    Every problem is reported at once (:class:`~harness.util.schema.ConfigError`)."""
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ConfigError([f"model: expected a preset name, one of {sorted(PRESETS)}, got {spec!r}"])
        spec = PRESETS[spec]
    if isinstance(spec, Mapping):
        full = {**dict(spec), **top}
    elif isinstance(spec, Sequence):
        full = {"layers": list(spec), **top}
    else:
        raise ConfigError([f"model: expected a mapping, a list of layer tables or a preset name, got"
                           f" {type(spec).__name__}"])
    return validate(MODEL_SPEC, copy.deepcopy(full), "", _check_chain)


S2_SPECTRAL = ("conv", "pointwise", "pool", "descriptor", *S2_ONLY)  # S^2 layers that read coefficients
BETWEEN = ("coeffs", "grid")


def _domains(types: Sequence[str], between: str) -> list[dict[str, str]]:
    """``input`` / ``output`` of each layer: coefficients between two S^2 layers (``between``
    "coeffs"), grid samples at the model's input and before any other layer or the output."""
    s2 = [False] * len(types)
    so3 = False
    for i, t in enumerate(types):  # an S^2 layer is one before any s2_so3_conv
        so3 = so3 or t in ("s2_so3_conv", "so3_conv", "integrate")
        s2[i] = t in S2_SPECTRAL and not so3
    out = []
    for i, t in enumerate(types):
        if not s2[i] or between == "grid":
            out.append({})
            continue
        d = {"input": "coeffs" if i > 0 and s2[i - 1] else "grid"}
        if t != "descriptor":
            d["output"] = "coeffs" if i + 1 < len(types) and s2[i + 1] else "grid"
        out.append(d)
    return out


def _filter_bytes(s: dict[str, Any]) -> int:
    """What the S^2 convolutions' filters take (as SphericalConv counts them), all layers together."""
    c, b, total = s["in_channels"], s["bandwidth"], 0
    for L in s["layers"]:
        if L["type"] == "conv":
            k = L["filter_params"] or b
            total += 8 * 4 * (L["out_channels"] * c * k + k * b + b)
            c = L["out_channels"]
        elif L["type"] in ("s2_so3_conv", "so3_conv"):
            c, b = L["out_channels"], L["bandwidth"] or b
        elif L["type"] == "pool":
            b = L["bandwidth"] or max(1, b // 2)
    return total


def build_model(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str, *, between: str = "coeffs",
                **top: Any) -> SphericalModel:
    """A :class:`SphericalModel` from a spec (see the module docstring) or a preset name.

    Keywords (``in_channels``, ``bandwidth``, ``kind``, ``backend``) override the spec's top level.
    ``between``: what consecutive S^2 layers hand each other, "coeffs" (default: fewer transforms)
    or "grid" (every layer on grid samples; the same numbers to rounding).
    Parameters are float32; ``.double()`` the model for float64.
    """
    if between not in BETWEEN:
        raise ValueError(f"between: expected one of {list(BETWEEN)}, got {between!r}")
    s = normalize_spec(spec, **top)
    check_fits(_filter_bytes(s), f"the filters of a model at bandwidth {s['bandwidth']}")  # before any layer
    c, b, kind, be = s["in_channels"], s["bandwidth"], s["kind"], s["backend"]
    names, layers, counts = [], [], {}
    features, so3 = None, False
    io = _domains([L["type"] for L in s["layers"]], between)
    for i, L in enumerate(s["layers"]):
        t, d = L["type"], io[i]
        counts[t] = counts.get(t, 0) + 1
        names.append(f"{t}{counts[t]}")
        if t == "conv":
            layers.append(SphericalConv(c, L["out_channels"], b, kind, L["filter_params"], L["bias"], be, **d))
            c = L["out_channels"]
        elif t in ("s2_so3_conv", "so3_conv"):
            bo = L["bandwidth"] if L["bandwidth"] is not None else b
            grid_args = {k: L[k] for k in ("max_beta", "n_beta", "n_alpha")}
            if t == "s2_so3_conv":
                layers.append(S2ToSO3Conv(c, L["out_channels"], b, bo, kind, **grid_args, bias=L["bias"]))
            else:
                layers.append(SO3Conv(c, L["out_channels"], b, bo, **grid_args, max_gamma=L["max_gamma"],
                                      n_gamma=L["n_gamma"], bias=L["bias"]))
            c, b, so3 = L["out_channels"], bo, True
        elif t == "pointwise":
            layers.append(SO3Pointwise(L["activation"], L["oversampling"]) if so3 else
                          Pointwise(L["activation"], L["oversampling"], kind, L["fine_kind"], be, **d))
        elif t == "pool":
            bo = L["bandwidth"] if L["bandwidth"] is not None else max(1, b // 2)
            layers.append(SO3Pool(bo) if so3 else SpectralPool(bo, kind, be, **d))
            b = bo
        elif t == "descriptor":
            layers.append(SO3Descriptor(flatten=True) if so3 else InvariantDescriptor(kind, be, flatten=True, **d))
            features = c * b
        elif t == "integrate":
            layers.append(SO3Integrate())
            features = c
        elif t == "polynomial":
            layers.append(PolynomialActivation(L["degree"], L["activation"], L["oversampling"], L["kappa"], kind, **d))
        elif t == "quadratic":
            layers.append(QuadraticActivation(c, L["oversampling"], kind, **d))
        elif t == "norm":
            layers.append(NormActivation(c, b, kind, **d))
        elif t == "gated":
            layers.append(GatedActivation(c, b, kind, **d))
        elif t == "batchnorm":
            layers.append(nn.BatchNorm1d(features))
        else:  # linear
            layers.append(nn.Linear(features, L["out_features"], bias=L["bias"]))
            features = L["out_features"]
    return SphericalModel(names, layers, s)
