"""Signals on SO(3): the Wigner transform and Cohen et al.'s layers.

``SO3Transforms``: ``so3_fft`` / ``so3_ifft`` time, peak memory and round-trip error, batch 16,
float64, on band-limited signals (``so3_ifft`` of seeded random coefficients).
``CohenLayers``: ``S2ToSO3Conv(1, 20, 30, 10)`` on the soft S^2 grid and ``SO3Conv(20, 40, 10, 6)``
(the ``cohen_mnist`` preset's sizes), float32, batch 8: forward (no autograd) and
forward+backward (``autograd.grad`` of ``(y * w).sum()`` for the input and every parameter).
"""

from __future__ import annotations

from . import grid, require

BANDWIDTHS = grid([8, 32], [8, 16, 32, 64])
BATCH = 16


class SO3Transforms:
    params = (BANDWIDTHS,)
    param_names = ["bandwidth"]
    timeout = 300

    def setup(self, b):
        harness = require("harness", "so3_fft", "so3_ifft")
        import torch

        self.h = harness
        gen = torch.Generator().manual_seed(0)
        c = torch.randn(BATCH, b, b, 2 * b - 1, dtype=torch.complex128, generator=gen)
        self.x = harness.so3_ifft(c)  # band-limited (entries outside l >= max(m, |n|) are ignored)
        self.c = harness.so3_fft(self.x)  # also builds the cached d-table
        harness.so3_ifft(self.c)

    def time_so3_fft(self, b):
        self.h.so3_fft(self.x)

    def time_so3_ifft(self, b):
        self.h.so3_ifft(self.c)

    def peakmem_so3_fft(self, b):
        self.h.so3_fft(self.x)

    def track_roundtrip_error(self, b):
        y = self.h.so3_ifft(self.h.so3_fft(self.x))
        return float((y - self.x).norm() / self.x.norm())

    track_roundtrip_error.unit = "relative error (lower is better)"


class CohenLayers:
    params = (["s2_so3_conv", "so3_conv"],)
    param_names = ["layer"]
    timeout = 300

    def setup(self, layer):
        harness = require("harness", "S2ToSO3Conv", "SO3Conv")
        import torch

        self.torch = torch
        with torch.random.fork_rng():
            torch.manual_seed(0)
            if layer == "s2_so3_conv":
                self.module = harness.S2ToSO3Conv(1, 20, 30, 10, kind="soft")
                self.x = torch.randn(8, 1, 60, 60)
            else:
                self.module = harness.SO3Conv(20, 40, 10, 6)
                self.x = torch.randn(8, 20, 20, 20, 20)
            with torch.no_grad():
                self.w = torch.randn(self.module(self.x).shape)
        self.xg = self.x.clone().requires_grad_(True)
        self.inputs = [self.xg, *self.module.parameters()]
        self.time_forward_backward(layer)

    def time_forward(self, layer):
        with self.torch.no_grad():
            self.module(self.x)

    def time_forward_backward(self, layer):
        self.torch.autograd.grad((self.module(self.xg) * self.w).sum(), self.inputs)

    def peakmem_forward(self, layer):
        with self.torch.no_grad():
            self.module(self.x)
