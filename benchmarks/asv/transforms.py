"""harness.sft / harness.isft: time, peak memory and round-trip error per grid and bandwidth.

Batch 16, float64, the library's default backend. The input is band-limited (``isft`` of seeded
random coefficients), so the round trip ``isft(sft(x))`` reproduces it up to rounding.
"""

from __future__ import annotations

from . import grid, require

KINDS = ["dh", "soft", "gl"]
BANDWIDTHS = grid([16, 64], [16, 32, 64, 128, 256])
BATCH = 16


class Transforms:
    params = (KINDS, BANDWIDTHS)
    param_names = ["grid", "bandwidth"]
    timeout = 300

    def setup(self, kind, b):
        harness = require("harness", "sft", "isft")
        import torch

        self.h = harness
        gen = torch.Generator().manual_seed(0)
        c = torch.randn(BATCH, b, b, dtype=torch.complex128, generator=gen)
        self.x = harness.isft(c, kind)  # band-limited; m > l and Im of m = 0 are dropped
        self.c = harness.sft(self.x, kind)  # also builds any cached tables
        harness.isft(self.c, kind)

    def time_sft(self, kind, b):
        self.h.sft(self.x, kind)

    def time_isft(self, kind, b):
        self.h.isft(self.c, kind)

    def peakmem_sft(self, kind, b):
        self.h.sft(self.x, kind)

    def peakmem_isft(self, kind, b):
        self.h.isft(self.c, kind)

    def track_roundtrip_error(self, kind, b):
        y = self.h.isft(self.h.sft(self.x, kind), kind)
        return float((y - self.x).norm() / self.x.norm())

    track_roundtrip_error.unit = "relative error (lower is better)"
