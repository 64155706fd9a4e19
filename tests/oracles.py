"""Independent references for the tests: pointwise spherical harmonics from scipy.

Nothing here calls harness transforms; it only uses the grid nodes and weights.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import sph_harm_y


def random_coefficients(batch: tuple[int, ...], b: int, dtype=torch.complex128, seed: int = 0) -> torch.Tensor:
    """Random coefficients of real signals in the harness layout ``[..., l, m]`` (m >= 0)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(*batch, b, b, dtype=torch.complex128, generator=g)
    c = c * torch.tril(torch.ones(b, b))  # m <= l
    c[..., 0] = c[..., 0].real.to(torch.complex128)  # f^0_l is real for real signals
    return c.to(dtype)


def all_harmonics(b: int, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``[b, 2b-1, ...]`` array ``Y[l, m + b - 1, ...] = Y^m_l(theta, phi)`` (zero for |m| > l)."""
    l, m = np.meshgrid(np.arange(b), np.arange(-b + 1, b), indexing="ij")
    ok = np.abs(m) <= l
    y = sph_harm_y(l[..., None], np.where(ok, m, 0)[..., None], theta.ravel()[None, None], phi.ravel()[None, None])
    return np.where(ok[..., None], y, 0).reshape(b, 2 * b - 1, *theta.shape)


def full_m(c: np.ndarray) -> np.ndarray:
    """``[..., b, b]`` (m >= 0) -> ``[..., b, 2b-1]`` with ``f^{-m}_l = (-1)^m conj(f^m_l)``."""
    b = c.shape[-1]
    neg = ((-1.0) ** np.arange(1, b)) * np.conj(c[..., 1:])
    return np.concatenate([neg[..., ::-1], c], axis=-1)


def evaluate(c: np.ndarray, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Pointwise ``sum_lm f^m_l Y^m_l(theta, phi)`` (real part) for ``c`` ``[..., b, b]``."""
    b = c.shape[-1]
    Y = all_harmonics(b, theta, phi)
    f = np.tensordot(full_m(c), Y, axes=([-2, -1], [0, 1]))
    return f.real


def quadrature(f: np.ndarray, theta: np.ndarray, phi: np.ndarray, weights: np.ndarray, b: int) -> np.ndarray:
    """Direct quadrature ``(2 pi / nlon) sum_jk w_j f conj(Y^m_l)`` -> ``[..., b, b]`` (m >= 0)."""
    T, P = np.meshgrid(theta, phi, indexing="ij")
    Y = all_harmonics(b, T, P)[:, b - 1 :]  # m >= 0
    wf = f * weights[:, None] * (2 * np.pi / phi.size)
    return np.tensordot(wf, np.conj(Y), axes=([-2, -1], [2, 3]))
