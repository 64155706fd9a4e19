"""Rotating grid signals: exactly (through the coefficients) or by interpolation in (theta, phi).

Interpolated rotation is what data augmentation by resampling does; its error is the
approximation the harness reports beside the exact rotation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .grids import grid
from .so3 import check_rotation
from .transforms import check_band_limited, check_signal, isft, sft
from .wigner import _broadcast_lead, rotate_coefficients


def rotate(x: torch.Tensor, R: torch.Tensor, kind: str = "dh", *, method: str = "exact",
           backend: str | None = None, project: bool = False) -> torch.Tensor:
    """Rotate grid signals ``x`` ``[*S, nlat, nlon]`` by ``R`` ``[*N, 3, 3]``: ``(g.x)(p) = x(R^-1 p)``.

    method "exact": grid -> coefficients -> Wigner-D -> grid, exact for band-limited x; an x that is
    not band-limited on its grid is refused, unless ``project=True``, which rotates its
    band-limited part (``isft(sft(x))``). Differentiable.
    method "interpolate": resample x at ``R^-1 p`` by bilinear interpolation in (theta, phi), what
    data augmentation does in practice (its error is the approximation the harness reports).
    """
    if not isinstance(project, bool):
        raise TypeError(f"project: expected True or False, got {project!r}")
    if method == "exact":
        c = sft(x, kind, backend=backend)
        if not project:
            check_band_limited(x, kind, "x", c)
        return isft(rotate_coefficients(c, R), kind, backend=backend)
    if method == "interpolate":
        return _rotate_interpolate(x, R, kind)
    raise ValueError(f"method: unknown method {method!r}; valid methods are ['exact', 'interpolate']")


def _rotate_interpolate(x: torch.Tensor, R: torch.Tensor, kind: str) -> torch.Tensor:
    b = check_signal(x, kind)
    check_rotation(R)
    lead = _broadcast_lead(x, R, "x")
    g = grid(kind, b)
    p = torch.tensor(g.points()).to(x)  # [nlat, nlon, 3]
    q = torch.einsum("...ji,abj->...abi", R.to(x), p)  # R^T p = R^-1 p, [*N, nlat, nlon, 3]
    th = torch.arccos(q[..., 2].clamp(-1, 1))
    u = torch.remainder(torch.atan2(q[..., 1], q[..., 0]), 2 * math.pi) / (2 * math.pi / g.nlon)
    # ghost rows past each pole: the first/last row seen across the pole (phi + pi), so that
    # points between the outermost row and the pole interpolate through the pole
    half = g.nlon / 2
    def across(row: torch.Tensor) -> torch.Tensor:  # row at phi + pi, linear in phi if between samples
        lo = math.floor(half)
        r0 = torch.roll(row, -lo, dims=-1)
        return r0 if lo == half else 0.5 * (r0 + torch.roll(row, -lo - 1, dims=-1))
    xe = torch.cat([across(x[..., :1, :]), x, across(x[..., -1:, :])], dim=-2)
    theta = torch.tensor(np.concatenate([[-g.theta[0]], g.theta, [2 * np.pi - g.theta[-1]]])).to(x)
    j1 = torch.searchsorted(theta, th.contiguous(), right=True).clamp(1, theta.numel() - 1)
    j0 = j1 - 1
    t0, t1 = theta[j0], theta[j1]
    wt = torch.where(t1 > t0, (th - t0) / (t1 - t0).clamp_min(1e-300), torch.zeros_like(th)).clamp(0, 1)
    k0f = torch.floor(u)
    wp = u - k0f
    k0 = k0f.long() % g.nlon
    k1 = (k0 + 1) % g.nlon
    xb = xe.expand(*lead, *xe.shape[-2:])
    flat = xb.reshape(*lead, xe.shape[-2] * xe.shape[-1])

    npts = g.nlat * g.nlon

    def at(j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.gather(flat, -1, (j * g.nlon + k).expand(*lead, *j.shape[-2:]).reshape(*lead, npts))

    wt, wp = wt.expand(*lead, *wt.shape[-2:]).reshape(*lead, npts), wp.expand(*lead, *wp.shape[-2:]).reshape(*lead, npts)
    v = (1 - wt) * ((1 - wp) * at(j0, k0) + wp * at(j0, k1)) + wt * ((1 - wp) * at(j1, k0) + wp * at(j1, k1))
    return v.reshape(*lead, g.nlat, g.nlon)


