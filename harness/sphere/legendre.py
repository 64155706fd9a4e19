"""Orthonormalized associated Legendre functions by a stable, overflow-safe recurrence.

``Pbar(l, m, theta)`` is the theta part of the orthonormal spherical harmonic with the
Condon-Shortley phase, ``Y^m_l(theta, phi) = Pbar(l, m, theta) exp(i m phi)`` (the functions of
``scipy.special.sph_harm_y``)::

    Pbar(l, m) = sqrt((2l+1)/(4 pi) (l-m)!/(l+m)!) P^m_l(cos theta),   P^m_l with (-1)^m.

Recurrence along each diagonal ``l = m + k`` (all m at once, float64):

* ``Pbar(m, m)   = (-1)^m sqrt(1/(4 pi) prod_{i<=m} (2i+1)/(2i)) sin^m theta`` (in log space),
* ``Pbar(m+1, m) = sqrt(2m+3) cos theta Pbar(m, m)``,
* ``Pbar(l, m)   = a_lm (cos theta Pbar(l-1, m) - b_lm Pbar(l-2, m))`` with
  ``a_lm = sqrt((4l^2-1)/(l^2-m^2))``, ``b_lm = sqrt(((l-1)^2-m^2)/(4(l-1)^2-1))``.

The seed ``sin^m theta`` underflows float64 near the poles for large m (it is ~1e-800 at
m = 500, theta = 0.05), so the recurrence runs on values scaled to 1 at the seed, with the
overflow-safe log-scale bookkeeping of :mod:`.recurrence` (shared with the Wigner d recurrence).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .recurrence import rescale, unscale



def legendre_diagonals(bandwidth: int, theta: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(k, P)`` for k = 0..b-1 with ``P[m, j] = Pbar(m + k, m, theta_j)``, m = 0..b-1-k.

    ``theta``: 1-D float64 colatitudes. Work O(b^2 len(theta)), memory O(b len(theta)).
    """
    b = int(bandwidth)
    theta = np.asarray(theta, dtype=np.float64)
    x, s = np.cos(theta)[None, :], np.sin(theta)[None, :]
    m = np.arange(b, dtype=np.float64)[:, None]
    # log |Pbar(m, m)| = log(1/sqrt(4 pi)) + 1/2 sum_{i<=m} log((2i+1)/(2i)) + m log sin(theta)
    i = np.arange(1, b, dtype=np.float64)
    lognorm = np.concatenate([[0.0], np.cumsum(0.5 * np.log((2 * i + 1) / (2 * i)))])[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logsin = np.where(m > 0, m * np.log(s), 0.0)  # m = 0: sin^0 = 1 even at the poles
    logscale = -0.5 * np.log(4 * np.pi) + lognorm + logsin
    zero = ~np.isfinite(logscale)  # m > 0 at a pole: exactly 0
    logscale[zero] = 0.0
    sign = np.where(np.arange(b) % 2 == 0, 1.0, -1.0)[:, None]
    p1 = np.where(zero, 0.0, sign * np.ones_like(logscale))  # scaled Pbar(m + k - 1, m)
    p2 = np.zeros_like(p1)  # scaled Pbar(m + k - 2, m)

    yield 0, unscale(p1, logscale)
    for k in range(1, b):
        n = b - k  # orders m = 0..n-1 have degree m + k < b
        mm, l = m[:n], m[:n] + k
        p1, p2, logscale = p1[:n], p2[:n], logscale[:n]
        if k == 1:
            new = np.sqrt(2 * mm + 3) * x * p1
        else:
            a = np.sqrt((4 * l * l - 1) / (l * l - mm * mm))
            c = np.sqrt(((l - 1) ** 2 - mm * mm) / (4 * (l - 1) ** 2 - 1))
            new = a * (x * p1 - c * p2)
        new, p1, logscale = rescale(new, p1, logscale)
        p2, p1 = p1, new
        yield k, unscale(p1, logscale)


def legendre_table(bandwidth: int, theta: np.ndarray) -> np.ndarray:
    """``[b, b, n]`` float64 table ``T[l, m, j] = Pbar(l, m, theta_j)``, zero where m > l."""
    b = int(bandwidth)
    theta = np.asarray(theta, dtype=np.float64)
    out = np.zeros((b, b, theta.shape[0]))
    for k, p in legendre_diagonals(b, theta):
        m = np.arange(b - k)
        out[m + k, m] = p
    return out
