"""Rotations: explicit Wigner-D construction and exact rotation of coefficients.

8 Haar rotations (seed 1); ``rotate_coefficients`` rotates 16 band-limited signals (float64,
complex128 coefficients) by each of the 8 rotations: ``coeffs[:, None]`` with ``R[None]``.
"""

from __future__ import annotations

from . import grid, require

BANDWIDTHS = grid([16, 32], [16, 32, 64])
N_SIGNALS, N_ROTATIONS = 16, 8


class Rotations:
    params = BANDWIDTHS
    param_names = ["bandwidth"]
    timeout = 300

    def setup(self, b):
        rot = require("harness", "wigner_D", "rotate_coefficients", "random_rotations")
        import torch

        self.rot = rot
        gen = torch.Generator().manual_seed(0)
        self.c = torch.randn(N_SIGNALS, b, b, dtype=torch.complex128, generator=gen)[:, None]
        self.R = rot.random_rotations(N_ROTATIONS, seed=1).double()[None]
        rot.rotate_coefficients(self.c, self.R)  # builds the cached rotation tables

    def time_wigner_D(self, b):
        self.rot.wigner_D(b, self.R[0])

    def time_rotate_coefficients(self, b):
        self.rot.rotate_coefficients(self.c, self.R)

    def peakmem_rotate_coefficients(self, b):
        self.rot.rotate_coefficients(self.c, self.R)
