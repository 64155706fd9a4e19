"""Layers and the ``esteves_mnist`` preset: forward and forward+backward time, peak memory.

float32, DH grid (2b x 2b), batch 8, 16 channels in and out, the library's default backend (as in
``benchmarks/layers.py``): ``SphericalConv(16, 16, b, filter_params=8)``, ``Pointwise("relu")``
with oversampling 1 and 2, ``SpectralPool()`` (b -> b // 2), ``InvariantDescriptor()``; the preset
``build_model("esteves_mnist", bandwidth=16)`` on 1 channel (eval mode).

``forward``: the call under ``torch.no_grad()``. ``forward_backward``: the call on an input that
requires grad, the loss ``(y * w).sum()`` with a fixed random ``w``, and ``torch.autograd.grad``
of it with respect to the input and every parameter (nothing accumulates between calls).
"""

from __future__ import annotations

from . import grid, require

BANDWIDTHS = grid([16], [16, 32, 64])
BATCH, CHANNELS = 8, 16


class _Layer:
    timeout = 300

    def build(self, harness, b, *args):
        raise NotImplementedError

    def _setup(self, b, *args, in_channels=CHANNELS, names=()):
        harness = require("harness", *names)
        import torch

        self.torch = torch
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.module = self.build(harness, b, *args)
            self.x = torch.randn(BATCH, in_channels, 2 * b, 2 * b)
            with torch.no_grad():
                y = self.module(self.x)
            self.w = torch.randn(y.shape)
        self.xg = self.x.clone().requires_grad_(True)
        self.inputs = [self.xg, *[p for p in self.module.parameters() if p.requires_grad]]
        self._forward_backward()  # builds cached tables for both directions

    def _forward(self):
        with self.torch.no_grad():
            self.module(self.x)

    def _forward_backward(self):
        loss = (self.module(self.xg) * self.w).sum()
        self.torch.autograd.grad(loss, self.inputs)


class SphericalConv(_Layer):
    params = BANDWIDTHS
    param_names = ["bandwidth"]

    def build(self, harness, b):
        return harness.SphericalConv(CHANNELS, CHANNELS, b, filter_params=8)

    def setup(self, b):
        self._setup(b, names=("SphericalConv",))

    def time_forward(self, b):
        self._forward()

    def time_forward_backward(self, b):
        self._forward_backward()


class Pointwise(_Layer):
    params = (BANDWIDTHS, [1.0, 2.0])
    param_names = ["bandwidth", "oversampling"]

    def build(self, harness, b, s):
        return harness.Pointwise("relu", oversampling=s)

    def setup(self, b, s):
        self._setup(b, s, names=("Pointwise",))

    def time_forward(self, b, s):
        self._forward()

    def time_forward_backward(self, b, s):
        self._forward_backward()


class SpectralPool(_Layer):
    params = BANDWIDTHS
    param_names = ["bandwidth"]

    def build(self, harness, b):
        return harness.SpectralPool()

    def setup(self, b):
        self._setup(b, names=("SpectralPool",))

    def time_forward(self, b):
        self._forward()

    def time_forward_backward(self, b):
        self._forward_backward()


class InvariantDescriptor(_Layer):
    params = BANDWIDTHS
    param_names = ["bandwidth"]

    def build(self, harness, b):
        return harness.InvariantDescriptor()

    def setup(self, b):
        self._setup(b, names=("InvariantDescriptor",))

    def time_forward(self, b):
        self._forward()

    def time_forward_backward(self, b):
        self._forward_backward()


class Preset(_Layer):
    """``build_model("esteves_mnist", bandwidth=16)``, eval mode (batchnorm on running stats)."""

    def build(self, harness, b):
        if "esteves_mnist" not in getattr(harness, "PRESETS", {}):
            raise NotImplementedError("no esteves_mnist preset at this commit")
        return harness.build_model("esteves_mnist", bandwidth=b).eval()

    def setup(self):
        self._setup(16, in_channels=1, names=("build_model",))

    def time_forward(self):
        self._forward()

    def time_forward_backward(self):
        self._forward_backward()

    def peakmem_forward(self):
        self._forward()
