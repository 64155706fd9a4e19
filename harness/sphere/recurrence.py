"""The overflow-safe bookkeeping shared by the three-term recurrences of :mod:`.legendre` and
:mod:`.wigner`.

A recurrence ``p_new = a p1 - c p2`` over the degree runs on scaled values with a per-entry log
scale (the seeds ``sin^m`` or ``cos^a sin^b`` of the half angle underflow float64 near the poles
for large orders, e.g. ~1e-800 at m = 500, theta = 0.05). Whenever a value grows past
``RESCALE`` (1e150) it and its predecessor are divided by it and the log scale bumped, so nothing
overflows or underflows to bandwidth 1024 and beyond; the true value is
``sign * exp(log|scaled| + logscale)``.
"""

from __future__ import annotations

import math

import numpy as np

RESCALE = 1e150
LOG_RESCALE = math.log(RESCALE)


def rescale(new: np.ndarray, prev: np.ndarray, logscale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divide the entries of ``new`` (and their predecessors ``prev``) that exceed RESCALE by it,
    adding its log to their ``logscale``; returns the three arrays (unchanged if none is big)."""
    big = np.abs(new) > RESCALE
    if big.any():
        new = np.where(big, new / RESCALE, new)
        prev = np.where(big, prev / RESCALE, prev)
        logscale = logscale + big * LOG_RESCALE
    return new, prev, logscale


def unscale(p: np.ndarray, logscale: np.ndarray) -> np.ndarray:
    """The true values ``sign(p) exp(log|p| + logscale)`` (0 stays 0)."""
    with np.errstate(divide="ignore"):
        return np.sign(p) * np.exp(np.log(np.abs(p)) + logscale)


__all__ = ["RESCALE", "LOG_RESCALE", "rescale", "unscale"]
