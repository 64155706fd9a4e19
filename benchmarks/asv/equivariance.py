"""Equivariance error and aliasing of small models, and the time of one sweep cell.

Models (``harness.build_model``, float64, seeded): conv(4) -> pointwise -> pool -> conv(4) ->
pointwise -> descriptor, one input channel, per activation (relu, tanh), oversampling (1, 2) and
bandwidth (8; full grid: 8, 16). Inputs: ``random_signals(4, 1, b, seed=1)`` (white); rotations:
``random_rotations(6, seed=2)``. ``track_equivariance_error``: the median ``rel_error`` of
``equivariance_error(model, x, R, mode="isolated")`` over the layers of one type and all
inputs x rotations (SphericalConv, SpectralPool, InvariantDescriptor: rounding; Pointwise: the
aliasing of the nonlinearity). ``track_out_of_band`` / ``track_aliasing_error``: the median over
8 inputs x 4 channels' rows of ``harness.measure.equivariance.aliasing(Pointwise(act, s), y)``.
"""

from __future__ import annotations

from . import grid, require

ACTIVATIONS = ["relu", "tanh"]
OVERSAMPLING = [1.0, 2.0]
BANDWIDTHS = grid([8], [8, 16])
LAYER_TYPES = ["SphericalConv", "Pointwise", "SpectralPool", "InvariantDescriptor"]
N_INPUTS, N_ROTATIONS = 4, 6

# experiments/smoke.toml, inline so the benchmark does not change when that file does
SMOKE = {
    "name": "smoke",
    "description": "relu and tanh at two bandwidths, with and without 2x oversampling",
    "axes": {"bandwidth": [6, 8], "activation": ["relu", "tanh"], "oversampling": [1.0, 2.0],
             "depth": [2], "channels": [2], "dtype": ["float64"], "seed": [0]},
    "run": {"n_inputs": 2, "n_rotations": 3, "modes": ["cumulative", "isolated"], "timing_repeats": 1},
}


def _spec(b, act, s):
    pw = {"type": "pointwise", "activation": act, "oversampling": s}
    return {"in_channels": 1, "bandwidth": b, "layers": [
        {"type": "conv", "out_channels": 4}, pw, {"type": "pool"},
        {"type": "conv", "out_channels": 4}, dict(pw), {"type": "descriptor"}]}


def _measure():
    try:
        harness = require("harness", "build_model", "equivariance_error", "random_signals",
                          "random_rotations", "Pointwise")
        eq = require("harness", "aliasing")
    except NotImplementedError as e:
        return {"missing": str(e)}  # not None: asv passes no cache argument for a None cache
    import numpy as np
    import torch

    out = {}
    for b in BANDWIDTHS:
        x = harness.random_signals(N_INPUTS, 1, b, seed=1)
        R = harness.random_rotations(N_ROTATIONS, seed=2).double()
        y = harness.random_signals(8, 4, b, seed=3)
        for act in ACTIVATIONS:
            for s in OVERSAMPLING:
                with torch.random.fork_rng():
                    torch.manual_seed(0)
                    model = harness.build_model(_spec(b, act, s)).double().eval()
                df = harness.equivariance_error(model, x, R, mode="isolated")
                for t in LAYER_TYPES:
                    v = df.loc[df["layer_type"] == t, "rel_error"]
                    out["eq", t, act, s, b] = float(np.median(v)) if len(v) else float("nan")
                a = eq.aliasing(harness.Pointwise(act, oversampling=s), y)
                out["oob", act, s, b] = float(np.median(a["out_of_band"]))
                out["alias", act, s, b] = float(np.median(a["aliasing_error"]))
    return out


class Equivariance:
    params = (LAYER_TYPES, ACTIVATIONS, OVERSAMPLING, BANDWIDTHS)
    param_names = ["layer_type", "activation", "oversampling", "bandwidth"]
    timeout = 600

    def setup_cache(self):
        return _measure()

    def setup(self, cache, *args):
        if "missing" in cache:
            raise NotImplementedError(cache["missing"])

    def track_equivariance_error(self, cache, t, act, s, b):
        return cache["eq", t, act, s, b]

    track_equivariance_error.unit = "relative error (lower is better)"


class Aliasing:
    params = (ACTIVATIONS, OVERSAMPLING, BANDWIDTHS)
    param_names = ["activation", "oversampling", "bandwidth"]
    timeout = 600

    def setup_cache(self):
        return _measure()

    def setup(self, cache, *args):
        if "missing" in cache:
            raise NotImplementedError(cache["missing"])

    def track_out_of_band(self, cache, act, s, b):
        return cache["oob", act, s, b]

    track_out_of_band.unit = "out-of-band energy fraction (lower is better)"

    def track_aliasing_error(self, cache, act, s, b):
        return cache["alias", act, s, b]

    track_aliasing_error.unit = "relative error (lower is better)"


class SweepCell:
    """``harness.runs.sweeps.run_cell`` on the smoke config's cell b = 8, relu, oversampling 2."""

    timeout = 300

    def setup(self):
        sweeps = require(("harness.runs.sweeps", "harness.sweeps"), "run_cell", "cells", "load_config")
        self.sweeps = sweeps
        cells = [getattr(c, "params", c) for c in sweeps.cells(sweeps.load_config(SMOKE))]  # dicts, or Cells
        self.cell = next(c for c in cells if c["bandwidth"] == 8 and c["activation"] == "relu"
                         and c["oversampling"] == 2.0)
        sweeps.run_cell(self.cell)

    def time_run_cell(self):
        self.sweeps.run_cell(self.cell)


class MeasurePreset:
    """``equivariance_error`` on the ``esteves_mnist`` preset (b = 30, float64, eval): 8 inputs
    under 16 rotations (full grid: 16 and 64), per mode; one thread."""

    params = (["cumulative", "isolated"], grid([16], [16, 64]))
    param_names = ["mode", "rotations"]
    timeout = 600

    def setup(self, mode, K):
        harness = require("harness", "build_model", "equivariance_error", "random_signals", "random_rotations")
        import torch

        self.h = harness
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.model = harness.build_model("esteves_mnist").double().eval()
        self.x = harness.random_signals(8, 1, 30, seed=0)
        self.R = harness.random_rotations(K, seed=1)
        harness.equivariance_error(self.model, self.x, self.R[:2], mode=mode)

    def time_measure(self, mode, K):
        self.h.equivariance_error(self.model, self.x, self.R, mode=mode)

    def peakmem_measure(self, mode, K):
        self.h.equivariance_error(self.model, self.x, self.R, mode=mode)
