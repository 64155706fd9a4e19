"""Sampling grids on the sphere and their exact quadrature weights.

Conventions (the single source is ``docs/conventions.md``):

* ``theta`` is the colatitude in [0, pi] (0 = north pole), ``phi`` the longitude in [0, 2 pi).
* A grid signal has shape ``[..., nlat, nlon]``: rows are latitudes, columns longitudes.
* ``weights`` are latitude weights ``w_j`` with ``sum_j w_j = 2`` (the integral of 1 over
  cos(theta)); the integral of f over the sphere is ``(2 pi / nlon) sum_jk w_j f(theta_j, phi_k)``,
  exact for every f of bandwidth ``b`` (degrees ``l < b``).

Grids, by name:

======  ====================================  ================  ===========
kind    theta_j                               phi_k             shape
======  ====================================  ================  ===========
dh      pi j / (2b)   (north pole included)   2 pi k / (2b)     2b x 2b
soft    pi (2j+1) / (4b)   (pole-free)        2 pi k / (2b)     2b x 2b
gl      arccos of the b Gauss-Legendre nodes  2 pi k / (2b-1)   b x (2b-1)
cc      pi j / (2b-1)   (both poles)          2 pi k / (2b)     2b x 2b
======  ====================================  ================  ===========

``cc`` is the Clenshaw-Curtis grid that torch-harmonics calls "equiangular" (and ducc0 "CC");
torch-harmonics' "legendre-gauss" grid with nlon = 2b - 1 is ``gl``. ``dh``, ``soft`` and ``cc``
share the shape 2b x 2b, so a grid's kind can never be read off a tensor: it is always declared.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..util.memory import check_fits

GRID_KINDS: tuple[str, ...] = ("dh", "soft", "gl", "cc")


@dataclass(frozen=True, eq=False)
class Grid:
    """A sampling grid of one kind and bandwidth; arrays are float64 and read-only."""

    kind: str
    bandwidth: int
    theta: np.ndarray  # [nlat] colatitudes, increasing
    phi: np.ndarray  # [nlon] longitudes
    weights: np.ndarray  # [nlat] latitude weights, sum = 2

    @property
    def nlat(self) -> int:
        return self.theta.shape[0]

    @property
    def nlon(self) -> int:
        return self.phi.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nlat, self.nlon)

    @property
    def area_weights(self) -> np.ndarray:
        """``[nlat, 1]`` weights ``2 pi w_j / nlon``: ``sum(area_weights * f)`` integrates f."""
        return (2.0 * np.pi / self.nlon) * self.weights[:, None]

    def points(self) -> np.ndarray:
        """``[nlat, nlon, 3]`` unit vectors ``(sin t cos p, sin t sin p, cos t)``."""
        t, p = np.meshgrid(self.theta, self.phi, indexing="ij")
        return np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)


def check_kind(kind: object, name: str = "kind") -> str:
    if not isinstance(kind, str) or kind not in GRID_KINDS:
        hint = " (torch-harmonics' 'equiangular' grid is 'cc', its 'legendre-gauss' is 'gl')" \
            if kind in ("equiangular", "legendre-gauss") else ""
        raise ValueError(f"{name}: unknown grid {kind!r}; valid grids are {list(GRID_KINDS)}{hint}")
    return kind  # type: ignore[return-value]


def check_bandwidth(bandwidth: object, name: str = "bandwidth") -> int:
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= 1, got {bandwidth!r} ({type(bandwidth).__name__})")
    if bandwidth < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {bandwidth}")
    return int(bandwidth)


def grid_shape(kind: str, bandwidth: int) -> tuple[int, int]:
    """``(nlat, nlon)`` of the grid ``kind`` at ``bandwidth``."""
    check_kind(kind)
    b = check_bandwidth(bandwidth)
    return (b, 2 * b - 1) if kind == "gl" else (2 * b, 2 * b)


def bandwidth_from_shape(shape: tuple[int, ...], kind: str) -> int:
    """The bandwidth whose ``kind`` grid has ``shape == (nlat, nlon)``, or a ValueError."""
    check_kind(kind)
    nlat, nlon = int(shape[0]), int(shape[1])
    b = nlat if kind == "gl" else nlat // 2
    if b < 1 or grid_shape(kind, b) != (nlat, nlon):
        want = "b x (2b-1)" if kind == "gl" else "2b x 2b"
        raise ValueError(
            f"x: grid shape (nlat, nlon) = {(nlat, nlon)} fits no bandwidth of the {kind!r} grid,"
            f" which is {want} (b >= 1)"
        )
    return b


def exact_analysis_bandwidth(kind: str, bandwidth: int, degrees: int, nlon: int | None = None) -> int:
    """The largest signal bandwidth b_f whose coefficients of degrees l < L = ``degrees`` the
    quadrature sum of the ``kind`` grid of ``bandwidth`` B (with ``nlon`` longitudes, default the
    kind's own) computes exactly (docs/conventions.md). The integrand ``f conj(Y^m_l)`` has
    degree and order difference up to ``D = (b_f - 1) + (L - 1)``; it is integrated exactly iff

    * latitudes: ``D <= 2B - 1`` (the ``dh``, ``soft`` and ``cc`` weights are exact to degree
      2B - 1 in cos(theta), and so are the B Gauss-Legendre rings of ``gl``);
    * longitudes: ``D <= nlon - 1`` (order differences of nlon or more fold back):
      2B longitudes for ``dh``, ``soft``, ``cc``, but 2B - 1 for ``gl``.

    So ``b_f + L <= 2B + 1`` on the equiangular grids and ``b_f + L <= 2B`` on ``gl``.
    """
    nlat_b = check_bandwidth(bandwidth)
    n = grid(kind, nlat_b, nlon).nlon
    L = check_bandwidth(degrees, "degrees")
    return min(2 * nlat_b - 1, n - 1) + 2 - L


def min_exact_grid(kind: str, signal_bandwidth: int, degrees: int) -> Grid:
    """The cheapest ``kind`` grid on which the analysis of degrees < ``degrees`` of any signal of
    ``signal_bandwidth`` b_f is exact (:func:`exact_analysis_bandwidth`), holding at least
    ``degrees``. With ``D = b_f + L - 2``: the fewest latitudes, bandwidth ``ceil((D + 1) / 2)``,
    and the fewest longitudes >= D + 1 whose FFT is fast (a 2-3-5-smooth count: a prime count
    such as 89 makes torch's FFT 5x slower). For sigma(f) with sigma a polynomial of degree p and
    f of bandwidth b, ``signal_bandwidth = p (b - 1) + 1``."""
    check_kind(kind)
    bf, L = check_bandwidth(signal_bandwidth, "signal_bandwidth"), check_bandwidth(degrees, "degrees")
    D = bf + L - 2
    B = max(L, -(-(D + 1) // 2))
    return grid(kind, B, max(smooth_size(D + 1), 2 * B - 1 if kind == "gl" else 2 * B))


def smooth_size(n: int) -> int:
    """The smallest integer >= n with no prime factor above 5 (a fast FFT length)."""
    m = max(1, int(n))
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _equiangular_weights(theta: np.ndarray, b: int) -> np.ndarray:
    """Driscoll-Healy weights ``w_j = (2/b) sin(t_j) sum_{k<b} sin((2k+1) t_j) / (2k+1)``.

    Exact (sum w_j P(cos t_j) = int_{-1}^{1} P) for polynomials of degree < 2b in cos t, which
    covers products of two functions of bandwidth b. Valid for both equiangular grids.
    """
    k = np.arange(b)
    s = np.sin(np.outer(theta, 2 * k + 1)) / (2 * k + 1)
    return (2.0 / b) * np.sin(theta) * s.sum(axis=1)


def _clenshaw_curtis_weights(n: int) -> np.ndarray:
    """Clenshaw-Curtis weights for the n nodes ``cos(pi j / (n-1))`` (both ends), sum 2:
    ``w_j = (c_j / N) (1 - sum_{k=1}^{N/2} e_k cos(2 k t_j) / (4 k^2 - 1))`` with N = n - 1,
    c_j = 1 at the ends and 2 inside, e_k = 1 for k = N/2 and 2 otherwise. Exact for polynomials
    of degree <= N in cos(theta) (Waldvogel 2006)."""
    N = n - 1
    if N == 0:
        return np.array([2.0])
    t = np.pi * np.arange(n) / N
    k = np.arange(1, N // 2 + 1)
    e = np.where(2 * k == N, 1.0, 2.0)
    c = np.where((np.arange(n) == 0) | (np.arange(n) == N), 1.0, 2.0)
    return c / N * (1.0 - (e / (4.0 * k * k - 1.0) * np.cos(2.0 * np.outer(t, k))).sum(axis=1))


def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre colatitudes (ascending) and weights (sum 2), to ~1e-16 relative.

    From ducc0, which works in theta: numpy's ``leggauss`` works in x = cos(theta), whose
    spacing near x = 1 limits theta (and so the end weights) to ~3e-13 at n = 128.
    """
    import ducc0

    return ducc0.misc.GL_thetas(n), ducc0.misc.GL_weights(n, 1) / (2 * np.pi)


def grid(kind: str = "dh", bandwidth: int = 16, nlon: int | None = None) -> Grid:
    """The sampling grid ``kind`` ("dh", "soft", "gl" or "cc") at ``bandwidth`` (degrees ``l < b``).

    ``nlon``: the number of longitudes, default the kind's own (2b; 2b - 1 for gl); any other
    count >= 2b - 1 keeps the latitudes and weights (the grids a nonlinearity is evaluated on:
    see :func:`exact_analysis_bandwidth`). Arguments are validated before the cache is read.
    """
    check_kind(kind)
    b = check_bandwidth(bandwidth)
    if nlon is not None:
        nlon = check_bandwidth(nlon, "nlon")
        if nlon < 2 * b - 1:
            raise ValueError(f"nlon: expected at least 2b - 1 = {2 * b - 1} longitudes (orders |m| < b), got {nlon}")
        if nlon == grid_shape(kind, b)[1]:
            nlon = None
    # the equiangular weights' sum is a [2b, b] product: refuse what cannot fit before building it
    check_fits(8 * 2 * b * (b if kind in ("dh", "soft") else 4) + 8 * (nlon or 2 * b), f"the {kind!r} grid at bandwidth {b}")
    return _grid(kind, b, nlon)


@functools.lru_cache(maxsize=64)
def _grid(kind: str, b: int, nlon: int | None) -> Grid:
    nlat, own = grid_shape(kind, b)
    nlon = own if nlon is None else nlon
    phi = 2.0 * np.pi * np.arange(nlon) / nlon
    if kind == "gl":
        theta, weights = _gauss_legendre(b)
    elif kind == "cc":
        theta = np.pi * np.arange(nlat) / (nlat - 1)
        weights = _clenshaw_curtis_weights(nlat)
    else:
        j = np.arange(nlat)
        theta = np.pi * j / nlat if kind == "dh" else np.pi * (2 * j + 1) / (2 * nlat)
        weights = _equiangular_weights(theta, b)
    for a in (theta, phi, weights):
        a.setflags(write=False)
    return Grid(kind=kind, bandwidth=b, theta=theta, phi=phi, weights=weights)


def mirror_pairs(g: Grid) -> tuple[np.ndarray, np.ndarray]:
    """North/south structure used by the Legendre transform.

    Returns ``north`` (indices of rows with theta <= pi/2) and ``mirror`` (for each north row the
    index of the row at ``pi - theta``, or -1 if that row is absent or is the row itself).
    """
    north = np.flatnonzero(g.theta <= np.pi / 2 + 1e-12)
    match = np.abs(g.theta[None, :] - (np.pi - g.theta[north])[:, None]) < 1e-9  # [nN, nlat]
    match[np.arange(north.size), north] = False  # the equator row is its own mirror: no partner
    mirror = np.where(match.any(axis=1), match.argmax(axis=1), -1)
    south = np.setdiff1d(np.arange(g.nlat), north)
    if not np.array_equal(np.sort(mirror[mirror >= 0]), south):
        raise RuntimeError(f"grid {g.kind!r} b={g.bandwidth} is not north/south symmetric")
    return north, mirror
