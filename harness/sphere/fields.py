"""Field types: what a tensor is, how SO(3) acts on it exactly, and how big it is.

The measurement code (:mod:`harness.measure.equivariance`) never guesses what a tensor means: every
input and every watched output has a field, declared by the caller or known from a harness
layer. A field knows

* ``check(t, where)``: that ``t`` (``[batch, ...]``) is one of its tensors, or a ValueError;
* ``coefficients(t)`` / ``from_coefficients(c)``: the representation in which outputs are compared
  (the bandwidth-b coefficients for sphere signals, the vector itself otherwise) and back;
* ``rotate_coefficients(c, R)``: the exact action of rotation ``R[p]`` on sample ``c[p]``;
* ``lie_action(c, omega)``: the infinitesimal action of the so(3) element ``omega`` (axis x speed);
* ``norm2(c)``: the squared norm per sample; ``samples(c)``: values for ``std`` and ``max``;
* ``out_of_band(t)`` / ``project(t)``: how far a sample is from the field (grids only);
* ``random(n, ...)``: random band-limited samples for sweeps.

Conventions (rotation direction, frames, bases) are in ``docs/conventions.md``:
``(g.f)(p) = f(R^-1 p)`` for signals; ``x -> D(R) x`` for irreps vectors, ``x -> rho(R) x`` for any
:class:`Representation`.
"""

from __future__ import annotations

import functools
import math
import re
from abc import ABC, abstractmethod

import numpy as np
import torch

from ..util.memory import check_fits
from ..util.schema import SEED, Int, Number, check_arg, check_float_dtype
from .grids import bandwidth_from_shape, check_bandwidth, check_kind, grid_shape
from .so3 import check_rotation, random_rotations
from .so3_transforms import (random_so3_coefficients, so3_degree_norms, so3_fft, so3_grid_shape, so3_ifft, so3_lie_action,
                             so3_rotate_coefficients)
from .transforms import degree_norms, isft, sft
from .wigner import lie_algebra_action, rotate_coefficients, wigner_D

#: Coordinate frames a grid's points can be expressed in: the world point sampled at grid index
#: (theta, phi) is ``F @ (sin t cos p, sin t sin p, cos t)``. e3nn's S^2 grids are y-up:
#: its point for (beta, alpha) is (sin b sin a, cos b, sin b cos a) = E3NN_FRAME @ harness point.
FRAMES: dict[str, np.ndarray] = {
    "harness": np.eye(3),
    "e3nn": np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
}


def _frame(name: str) -> np.ndarray:
    if name not in FRAMES:
        raise ValueError(f"frame: unknown frame {name!r}; valid frames are {sorted(FRAMES)}")
    return FRAMES[name]


def _in_frame(R: torch.Tensor, F: np.ndarray) -> torch.Tensor:
    """``F^T R F``: the world rotation R expressed on a grid whose points are ``F p``."""
    if np.array_equal(F, np.eye(3)):
        return R
    Ft = torch.as_tensor(F, dtype=R.dtype, device=R.device)
    return Ft.T @ R @ Ft


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], math.prod(t.shape[1:]))


class Field(ABC):
    """A kind of tensor ``[batch, ...]`` with an exact SO(3) action (see the module docstring)."""

    #: True when rotations act through sampled grid values (the comparison is then made in
    #: coefficients, and ``out_of_band`` is meaningful).
    sampled: bool = False

    @abstractmethod
    def check(self, t: object, where: str) -> None: ...

    def coefficients(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def from_coefficients(self, c: torch.Tensor) -> torch.Tensor:
        return c

    @abstractmethod
    def rotate_coefficients(self, c: torch.Tensor, R: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def lie_action(self, c: torch.Tensor, omega: np.ndarray) -> torch.Tensor: ...

    def norm2(self, c: torch.Tensor) -> torch.Tensor:
        """``[P]`` squared norm of each sample ``c[p]``."""
        return _flat(c.abs() if c.is_complex() else c).square().sum(-1)

    def samples(self, c: torch.Tensor) -> torch.Tensor:
        """``[P, M]`` real values of each sample (for ``std`` and ``max |.|``)."""
        return _flat(c)

    def rotate(self, t: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        """``t[p]`` rotated by ``R[p]``, in the native representation."""
        return self.from_coefficients(self.rotate_coefficients(self.coefficients(t), R))

    def out_of_band(self, t: torch.Tensor) -> torch.Tensor:
        """``[P]`` fraction of each sample's energy the field cannot represent (0 here)."""
        return torch.zeros(t.shape[0], dtype=torch.float64)

    def project(self, t: torch.Tensor) -> torch.Tensor:
        return t

    @property
    def bandwidth(self) -> int | None:
        return None

    @abstractmethod
    def random(self, n: int, *, channels: int | None = None, decay: float = 0.0, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``[n, ...]`` random samples (``[n, channels, ...]`` when channels is given); for sphere
        fields band-limited with power ``(1 + l)^-decay`` per coefficient, unit mean square."""


def _check_tensor(t: object, where: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{where}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dim() < 1:
        raise ValueError(f"{where}: expected a tensor [batch, ...], got a 0-d tensor")
    return t


def _per_sample_rotations(R: torch.Tensor, c: torch.Tensor, trailing: int) -> torch.Tensor:
    """``R [P, 3, 3]`` viewed so it broadcasts against ``c [P, *C, <trailing dims>]``."""
    check_rotation(R)
    if R.dim() != 3 or R.shape[0] != c.shape[0]:
        raise ValueError(f"R: expected one rotation per sample, [{c.shape[0]}, 3, 3], got {tuple(R.shape)}")
    extra = c.dim() - 1 - trailing
    return R.reshape(R.shape[0], *([1] * extra), 3, 3)


# --------------------------------------------------------------------------- signals on S^2
def random_coefficients(n: int, channels: int, bandwidth: int, decay: float = 0.0, seed: int = 0) -> torch.Tensor:
    """``[n, channels, b, b]`` complex128 coefficients of random real signals with
    ``E|f^m_l|^2 = (1 + l)^-decay`` for every order m of degree l, scaled to unit mean square on
    the sphere (averaged over the batch). Own generator: the global RNG is untouched."""
    b = check_bandwidth(bandwidth)
    n, channels = check_arg(Int(0), n, "n"), check_arg(Int(1), channels, "channels")
    decay = check_arg(Number(0.0), decay, "decay")
    gen = torch.Generator().manual_seed(check_arg(SEED, seed, "seed"))
    check_fits(3 * 16 * n * channels * b * b, f"{n} x {channels} random signals at bandwidth {b}")
    c = torch.randn(n, channels, b, b, dtype=torch.complex128, generator=gen)
    l = torch.arange(b, dtype=torch.float64)
    c = c * ((1 + l) ** (-decay / 2))[:, None] * torch.tril(torch.ones(b, b, dtype=torch.float64))
    c[..., 0] = math.sqrt(2) * c[..., 0].real  # real m = 0 coefficient with the same variance
    if n * channels:
        c = c / degree_norms(c).square().sum(-1).mean().sqrt() * math.sqrt(4 * math.pi)
    return c


class S2Grid(Field):
    """Real samples ``[batch, ..., nlat, nlon]`` on the harness grid ``kind`` of bandwidth b.

    Compared in its bandwidth-b coefficients (the representation a spherical CNN passes on),
    rotated exactly through them; norm: L2(S^2) (Parseval), summed over the other dims.
    ``frame="e3nn"`` declares a grid whose points are e3nn's y-up ones (``FRAMES``).
    """

    sampled = True

    def __init__(self, kind: str, bandwidth: int, frame: str = "harness") -> None:
        self.kind = check_kind(kind)
        self._b = check_bandwidth(bandwidth)
        self.frame, self._F = frame, _frame(frame)

    def __repr__(self) -> str:
        f = "" if self.frame == "harness" else f", frame={self.frame!r}"
        return f"S2Grid({self.kind!r}, {self._b}{f})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S2Grid) and (self.kind, self._b, self.frame) == (other.kind, other._b, other.frame)

    def __hash__(self) -> int:
        return hash(("S2Grid", self.kind, self._b, self.frame))

    @property
    def bandwidth(self) -> int:
        return self._b

    @property
    def shape(self) -> tuple[int, int]:
        return grid_shape(self.kind, self._b)

    def matches(self, t: torch.Tensor) -> bool:
        """Whether ``t`` is shaped like a batch of this grid's real samples."""
        return (isinstance(t, torch.Tensor) and t.dim() >= 3 and t.dtype in (torch.float32, torch.float64)
                and tuple(t.shape[-2:]) == self.shape)

    def check(self, t: object, where: str) -> None:
        t = _check_tensor(t, where)
        if t.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{where}: expected real float32/float64 samples of {self}, got dtype {t.dtype}")
        if t.dim() < 3 or tuple(t.shape[-2:]) != self.shape:
            raise ValueError(f"{where}: expected [batch, ..., {self.shape[0]}, {self.shape[1]}] samples of {self},"
                             f" got shape {tuple(t.shape)}")

    def coefficients(self, t: torch.Tensor) -> torch.Tensor:
        return sft(t, self.kind)

    def from_coefficients(self, c: torch.Tensor) -> torch.Tensor:
        return isft(c, self.kind)

    def rotate_coefficients(self, c: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        return rotate_coefficients(c, _per_sample_rotations(_in_frame(R, self._F), c, 2))

    def lie_action(self, c: torch.Tensor, omega: np.ndarray) -> torch.Tensor:
        return lie_algebra_action(c, self._F.T @ np.asarray(omega, dtype=np.float64))

    def norm2(self, c: torch.Tensor) -> torch.Tensor:
        return _flat(degree_norms(c)).square().sum(-1)

    def samples(self, c: torch.Tensor) -> torch.Tensor:
        return _flat(isft(c, self.kind))

    def out_of_band(self, t: torch.Tensor) -> torch.Tensor:
        """``||t - isft(sft(t))||^2 / ||t||^2`` over each sample's grid values (unweighted, so a
        pole row with zero quadrature weight counts too); 0 for a band-limited sample."""
        r = _flat(t - isft(sft(t, self.kind), self.kind)).double().square().sum(-1)
        tot = _flat(t).double().square().sum(-1)
        return torch.where(tot > 0, r / tot.clamp_min(1e-300), torch.zeros_like(r))

    def project(self, t: torch.Tensor) -> torch.Tensor:
        return isft(sft(t, self.kind), self.kind)

    def random(self, n: int, *, channels: int | None = None, decay: float = 0.0, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        check_float_dtype(dtype)
        c = random_coefficients(n, 1 if channels is None else channels, self._b, decay, seed)
        return isft(c if channels is not None else c[:, 0], self.kind).to(dtype)


class S2Coeffs(Field):
    """Coefficients ``[batch, ..., b, b]`` complex in the harness layout (``[l, m]``, m >= 0;
    docs/conventions.md); rotated exactly; norm L2(S^2). ``samples`` (for ``max_abs_error`` and
    ``cohen_delta``) are the values on the ``kind`` grid of the same bandwidth (default
    Gauss-Legendre; a harness model's coefficients between layers say their model's grid, so
    those columns read as they would on its grid samples)."""

    def __init__(self, bandwidth: int, kind: str = "gl") -> None:
        self._b = check_bandwidth(bandwidth)
        self.kind = check_kind(kind)

    def __repr__(self) -> str:
        return f"S2Coeffs({self._b})" if self.kind == "gl" else f"S2Coeffs({self._b}, {self.kind!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S2Coeffs) and (self._b, self.kind) == (other._b, other.kind)

    def __hash__(self) -> int:
        return hash(("S2Coeffs", self._b, self.kind))

    @property
    def bandwidth(self) -> int:
        return self._b

    def check(self, t: object, where: str) -> None:
        t = _check_tensor(t, where)
        if t.dtype not in (torch.complex64, torch.complex128):
            raise ValueError(f"{where}: expected complex coefficients of {self}, got dtype {t.dtype}")
        if t.dim() < 3 or tuple(t.shape[-2:]) != (self._b, self._b):
            raise ValueError(f"{where}: expected [batch, ..., {self._b}, {self._b}] coefficients of {self},"
                             f" got shape {tuple(t.shape)}")

    def rotate_coefficients(self, c: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        return rotate_coefficients(c, _per_sample_rotations(R, c, 2))

    def lie_action(self, c: torch.Tensor, omega: np.ndarray) -> torch.Tensor:
        return lie_algebra_action(c, omega)

    def norm2(self, c: torch.Tensor) -> torch.Tensor:
        return _flat(degree_norms(c)).square().sum(-1)

    def samples(self, c: torch.Tensor) -> torch.Tensor:
        return _flat(isft(c, self.kind))

    def random(self, n: int, *, channels: int | None = None, decay: float = 0.0, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        check_float_dtype(dtype)
        c = random_coefficients(n, 1 if channels is None else channels, self._b, decay, seed)
        c = c if channels is not None else c[:, 0]
        return c.to(torch.complex64 if dtype == torch.float32 else torch.complex128)


# --------------------------------------------------------------------------- any representation
def _skew(omega: np.ndarray) -> torch.Tensor:
    """``[3, 3]`` float64 ``[omega]_x``: ``exp(t [omega]_x)`` rotates by ``t |omega|`` about ``omega``."""
    w = np.asarray(omega, dtype=np.float64)
    if w.shape != (3,) or not np.isfinite(w).all():
        raise ValueError(f"omega: expected a finite 3-vector (axis x speed), got {w!r}")
    return torch.tensor([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]], dtype=torch.float64)


class Representation(Field):
    """Feature vectors ``[batch, ..., dim]`` of any real representation ``rho`` of SO(3):
    ``x -> rho(R) x``, Euclidean norm.

    ``rho`` maps rotation matrices ``[K, 3, 3]`` (float64 torch, CPU, the harness frame) to
    ``[K, dim, dim]`` real matrices (a torch tensor or a numpy array, float32 or float64; used in
    float64). It is any library's representation evaluated at the group element of ``R``; for an
    escnn field type without base space, :meth:`from_escnn` builds it (``G.element(R, 'MAT')``).

    What is checked, and when:

    * every call: the shape ``[K, dim, dim]``, a real float dtype and finite entries (a ValueError
      that names what came);
    * the first call (unless ``check_group_law=False``), and on demand with
      :meth:`check_group_law`: ``rho(I) = I``, the group law ``rho(R1 R2) = rho(R1) rho(R2)`` and
      orthogonality ``rho(R)^T rho(R) = I`` on a few Haar rotations, to ``rtol`` (default
      ``sqrt(eps)`` of rho's dtype: 1.5e-8 in float64). Being a homomorphism is the user's
      responsibility, but a wrong convention (``R^T`` for ``R``, a transposed matrix, another
      frame's rotations composed the wrong way) breaks the group law by O(1) and is refused here
      rather than read as an equivariance error. Orthogonality makes the Euclidean norm invariant,
      which the relative errors assume. The check evaluates rho on 7 rotations at most.

    ``lie_action`` (the Lie derivative, :func:`harness.lie_derivative`) needs
    ``d/dt rho(exp(t [omega]_x))`` at 0: given as ``lie`` (a callable omega ``[3]`` ->
    ``[dim, dim]``), or else computed exactly by forward-mode differentiation through ``rho``
    (``torch.func.jacfwd``) and checked against a central difference; a ``rho`` torch cannot
    differentiate (numpy inside, ``.detach()``) raises NotImplementedError naming the reason.

    ``name`` is shown in ``repr`` (the ``field`` column of the results); default rho's name.
    """

    def __init__(self, rho, dim: int, *, lie=None, name: str | None = None, check_group_law: bool = True) -> None:
        if not callable(rho):
            raise ValueError(f"rho: expected a callable mapping rotations [K, 3, 3] to matrices [K, dim, dim],"
                             f" got {type(rho).__name__}")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim: expected a positive int (the length of the feature vectors), got {dim!r}")
        if lie is not None and not callable(lie):
            raise ValueError(f"lie: expected None or a callable mapping omega [3] to [dim, dim], got {type(lie).__name__}")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name: expected a string or None, got {name!r}")
        self.rho, self.dim, self.lie, self._name = rho, int(dim), lie, name
        self._group_law_checked = not check_group_law
        self._lie_cache: dict[tuple[float, ...], torch.Tensor] = {}

    @classmethod
    def from_escnn(cls, field_type: object, name: str | None = None) -> "Representation":
        """The Representation of an escnn ``FieldType`` on ``gspaces.no_base_space(so3_group(L))``:
        ``rho(R) = field_type.representation(G.element(R, 'MAT'))``, one escnn call per rotation.
        Its tensors are escnn's ``GeometricTensor.tensor`` ``[batch, field_type.size]``. escnn is
        not imported here; anything else than an SO(3) field type without a base space is refused."""
        gspace = getattr(field_type, "gspace", None)
        G = getattr(gspace, "fibergroup", None)
        rep = getattr(field_type, "representation", None)
        if G is None or rep is None or not hasattr(field_type, "size"):
            raise ValueError(f"field_type: expected an escnn FieldType, got {type(field_type).__name__}")
        if type(G).__name__ != "SO3":
            raise ValueError(f"field_type: expected a field type of SO(3) (escnn.group.so3_group), got a group"
                             f" {getattr(G, 'name', type(G).__name__)}")
        if getattr(gspace, "dimensionality", None) != 0:
            raise ValueError(f"field_type: expected a gspace without base space (escnn.gspaces.no_base_space), got"
                             f" {gspace} of dimensionality {getattr(gspace, 'dimensionality', '?')}: its tensors are"
                             " [B, C, *space] fields, not vectors")

        def rho(R: torch.Tensor) -> np.ndarray:
            return np.stack([rep(G.element(r, "MAT")) for r in R.numpy()]).reshape(R.shape[0], rep.size, rep.size)

        return cls(rho, int(field_type.size), name=name or f"escnn {getattr(rep, 'name', 'representation')}")

    def __repr__(self) -> str:
        name = self._name or getattr(self.rho, "__qualname__", None) or type(self.rho).__name__
        return f"Representation({name}, dim={self.dim})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.rho == other.rho and self.dim == other.dim  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.dim, self.rho))

    def check(self, t: object, where: str) -> None:
        t = _check_tensor(t, where)
        if t.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{where}: expected real float32/float64 vectors of {self}, got dtype {t.dtype}")
        if t.dim() < 2 or t.shape[-1] != self.dim:
            raise ValueError(f"{where}: expected [batch, ..., {self.dim}] vectors of {self}, got shape {tuple(t.shape)}")

    def _evaluate(self, R: torch.Tensor) -> torch.Tensor:
        """rho at ``R [K, 3, 3]`` (float64 CPU), validated, as ``[K, dim, dim]`` float64."""
        K = R.shape[0]
        out = self.rho(R)
        what = f"rho ({self!r}) at {K} rotation(s)"
        if isinstance(out, np.ndarray):
            out = torch.from_numpy(out)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"{what}: expected a torch.Tensor or numpy array [{K}, {self.dim}, {self.dim}],"
                             f" got {type(out).__name__}")
        if tuple(out.shape) != (K, self.dim, self.dim):
            hint = (" (one matrix for all rotations? rho must map [K, 3, 3] to [K, dim, dim])" if out.dim() == 2 else "")
            raise ValueError(f"{what}: expected shape [{K}, {self.dim}, {self.dim}], got {tuple(out.shape)}{hint}")
        if out.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{what}: expected real float32/float64 matrices, got dtype {out.dtype}")
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"{what}: expected finite matrices, got nan/inf entries")
        return out

    def matrices(self, R: torch.Tensor) -> torch.Tensor:
        """``[P, dim, dim]`` float64: ``rho(R[p])`` for each rotation ``R[p]``."""
        check_rotation(R)
        if R.dim() != 3:
            raise ValueError(f"R: expected rotations [K, 3, 3], got shape {tuple(R.shape)}")
        if not self._group_law_checked:
            self.check_group_law()
        return self._evaluate(R.detach().double().cpu()).double()

    def check_group_law(self, n: int = 2, seed: int = 0, rtol: float | None = None) -> float:
        """Check ``rho(I) = I``, ``rho(R1 R2) = rho(R1) rho(R2)`` and ``rho(R)^T rho(R) = I`` on
        ``n`` pairs of Haar rotations; return the largest deviation, or raise ValueError naming
        which law failed and by how much. ``rtol`` defaults to ``sqrt(eps)`` of rho's dtype."""
        n = check_arg(Int(1), n, "n")
        R = random_rotations(2 * n, seed=check_arg(SEED, seed, "seed"))
        R1, R2 = R[:n], R[n:]
        eye3 = torch.eye(3, dtype=torch.float64)[None]
        raw = self._evaluate(torch.cat([eye3, R1, R2, R1 @ R2]))
        tol = math.sqrt(torch.finfo(raw.dtype).eps) if rtol is None else float(rtol)
        D = raw.double()
        D0, D1, D2, D12 = D[0], D[1 : 1 + n], D[1 + n : 1 + 2 * n], D[1 + 2 * n :]
        scale = max(1.0, float(D.abs().amax()))
        eye = torch.eye(self.dim, dtype=torch.float64)
        errs = {"rho(I) = I": float((D0 - eye).abs().amax()),
                "rho(R1 R2) = rho(R1) rho(R2)": float((D12 - D1 @ D2).abs().amax()),
                "rho(R)^T rho(R) = I (orthogonal)": float((D1.transpose(-1, -2) @ D1 - eye).abs().amax())}
        for law, e in errs.items():
            if not e <= tol * scale:
                extra = (" (does rho(R1 R2) equal rho(R2) rho(R1)? then rho is evaluated at R^-1 or transposed)"
                         if "R1 R2" in law and float((D12 - D2 @ D1).abs().amax()) <= tol * scale else "")
                raise ValueError(f"rho ({self!r}): {law} fails by {e:.3g} (max abs entry, tolerance {tol * scale:.3g})"
                                 f" on Haar rotations{extra}; rho must be an orthogonal representation of SO(3)"
                                 f" (pass check_group_law=False to measure anyway)")
        self._group_law_checked = True
        return max(errs.values())

    def rotate_coefficients(self, c: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        if R.dim() != 3 or R.shape[0] != c.shape[0]:
            raise ValueError(f"R: expected one rotation per sample, [{c.shape[0]}, 3, 3], got {tuple(R.shape)}")
        D = self.matrices(R).to(device=c.device, dtype=c.dtype)
        return torch.einsum("pij,p...j->p...i", D, c)

    def generator(self, omega: np.ndarray) -> torch.Tensor:
        """``[dim, dim]`` float64 ``d/dt rho(exp(t [omega]_x))`` at ``t = 0``."""
        W = _skew(omega)
        key = tuple(float(v) for v in np.asarray(omega, dtype=np.float64))
        if key in self._lie_cache:
            return self._lie_cache[key]
        if self.lie is not None:
            A = self.lie(np.asarray(omega, dtype=np.float64))
            A = torch.from_numpy(A) if isinstance(A, np.ndarray) else A
            if not isinstance(A, torch.Tensor) or tuple(A.shape) != (self.dim, self.dim) or A.is_complex():
                raise ValueError(f"lie ({self!r}): expected a real [{self.dim}, {self.dim}] matrix, got"
                                 f" {tuple(getattr(A, 'shape', ())) or type(A).__name__}")
            A = A.detach().double().cpu()
        else:
            A = self._differentiate(W)
        self._lie_cache[key] = A
        return A

    def _differentiate(self, W: torch.Tensor) -> torch.Tensor:
        why = (f"{self!r}.lie_action needs d/dt rho(exp(tX)) at t = 0 and torch cannot differentiate rho: ")
        fix = "; pass lie=(omega -> [dim, dim]) to Representation, or use rotations only (equivariance_error)"

        def at(t: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(self.rho(torch.linalg.matrix_exp(t * W)[None]))[0].to(torch.float64)

        try:
            A = torch.func.jacfwd(at)(torch.zeros((), dtype=torch.float64))
        except Exception as e:  # noqa: BLE001 - any failure inside rho means: not differentiable by torch
            raise NotImplementedError(why + f"{type(e).__name__}: {e}"[:300] + fix) from e
        A = A.detach().double()
        if tuple(A.shape) != (self.dim, self.dim) or not bool(torch.isfinite(A).all()):
            raise NotImplementedError(why + f"its derivative came out as {tuple(A.shape)} or non-finite" + fix)
        # a rho that leaves torch (numpy, .detach()) differentiates to zero without an error: compare
        # with a central difference, which is accurate to ~1e-8 here
        h = 1e-4
        fd = (at(torch.tensor(h, dtype=torch.float64)) - at(torch.tensor(-h, dtype=torch.float64))) / (2 * h)
        scale = max(1.0, float(fd.abs().amax()))
        if float((A - fd).abs().amax()) > 1e-5 * scale:
            raise NotImplementedError(why + f"the forward-mode derivative differs from a central difference by"
                                      f" {float((A - fd).abs().amax()):.3g} (rho leaves torch, e.g. through numpy"
                                      f" or .detach())" + fix)
        return A

    def lie_action(self, c: torch.Tensor, omega: np.ndarray) -> torch.Tensor:
        A = self.generator(omega).to(device=c.device, dtype=c.dtype)
        return c @ A.T

    def random(self, n: int, *, channels: int | None = None, decay: float = 0.0, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Standard normal vectors ``[n, (channels,) dim]`` (``decay`` is accepted and unused: a
        generic representation has no degrees)."""
        check_float_dtype(dtype)
        check_arg(Number(0.0), decay, "decay")
        gen = torch.Generator().manual_seed(check_arg(SEED, seed, "seed"))
        lead = (check_arg(Int(0), n, "n"),) if channels is None else (check_arg(Int(0), n, "n"), check_arg(Int(1), channels, "channels"))
        return torch.randn(*lead, self.dim, generator=gen, dtype=torch.float64).to(dtype)


# --------------------------------------------------------------------------- e3nn irreps
_IRREP = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\d+)\s*([eo])\s*$")


@functools.lru_cache(maxsize=64)
def _real_basis(l: int) -> np.ndarray:
    """``[2l+1, 2l+1]`` unitary Q with ``Y_real = Q Y_complex`` (index m + l on both sides): the
    real spherical harmonics with the Condon-Shortley phase removed,
    ``m > 0: (Y^{-m} + (-1)^m Y^m)/sqrt2``, ``m = 0: Y^0``, ``m < 0: i (Y^{-|m|} - (-1)^m Y^{|m|})/sqrt2``."""
    Q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    Q[l, l] = 1.0
    for m in range(1, l + 1):
        Q[l + m, l - m], Q[l + m, l + m] = 1 / math.sqrt(2), (-1) ** m / math.sqrt(2)
        Q[l - m, l - m], Q[l - m, l + m] = 1j / math.sqrt(2), -1j * (-1) ** m / math.sqrt(2)
    return Q


def _su2_J(l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angular momentum matrices ``J_x, J_y, J_z`` of degree l (index m + l, Condon-Shortley)."""
    m = np.arange(-l, l + 1, dtype=np.float64)
    jp = np.diag(np.sqrt((l - m[:-1]) * (l + m[:-1] + 1)), -1)  # <m+1| J+ |m>
    jm = jp.T
    return (jp + jm) / 2, (jp - jm) / 2j, np.diag(m).astype(np.complex128)


class Irreps(Representation):
    """A vector of irreducible representations in e3nn's real basis and layout, e.g.
    ``Irreps("8x0e+4x1o+2x2e")``: ``[batch, ..., dim]``, each ``mul x l`` block ``mul`` contiguous
    vectors of length 2l + 1. It rotates by the matrices of e3nn's
    ``o3.Irreps(...).D_from_matrix(R)`` (y-up real spherical harmonics; docs/conventions.md):
    ``D_e(R) = Q conj(D(F^T R F)) Q^H`` per degree, with the harness Wigner D, the real basis Q of
    :func:`_real_basis` and the e3nn frame F. Parity is parsed and kept but plays no role for the
    proper rotations the harness samples. Euclidean norm.

    It is the :class:`Representation` whose ``rho`` is these matrices (so ``check``, ``matrices``
    and ``rotate`` are Representation's), with its Lie algebra action in closed form and random
    vectors whose power can decay with the degree."""

    def __init__(self, irreps: str) -> None:
        if not isinstance(irreps, str) or not irreps.strip():
            raise ValueError(f"irreps: expected a string like '8x0e+4x1o', got {irreps!r}")
        blocks = []
        for part in irreps.split("+"):
            mt = _IRREP.match(part)
            if mt is None:
                raise ValueError(f"irreps: cannot read {part.strip()!r} in {irreps!r}; expected terms like"
                                 " '3x1o' or '2e' joined by '+'")
            blocks.append((int(mt.group(1) or 1), int(mt.group(2)), mt.group(3)))
        self.blocks = tuple(blocks)
        self.lmax = max(l for _, l, _ in blocks)
        # exact by construction (tested against e3nn): no group-law check on first use
        super().__init__(self._irreps_matrices, sum(mul * (2 * l + 1) for mul, l, _ in blocks),
                         check_group_law=False)

    def __repr__(self) -> str:
        return "Irreps('" + "+".join(f"{mul}x{l}{p}" for mul, l, p in self.blocks) + "')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Irreps) and self.blocks == other.blocks

    def __hash__(self) -> int:
        return hash(("Irreps", self.blocks))

    def _irreps_matrices(self, R: torch.Tensor) -> torch.Tensor:
        """``[P, dim, dim]`` float64: the block-diagonal representation of each ``R[p]`` (the rho)."""
        check_rotation(R)
        Rh = _in_frame(R.detach().double().cpu(), FRAMES["e3nn"])
        D = wigner_D(self.lmax + 1, Rh)  # [P, lmax+1, 2lmax+1, 2lmax+1]
        c0 = self.lmax
        per_l = {}
        for l in {l for _, l, _ in self.blocks}:
            Q = torch.from_numpy(_real_basis(l))
            Dl = D[:, l, c0 - l : c0 + l + 1, c0 - l : c0 + l + 1]
            per_l[l] = (Q @ Dl.conj() @ Q.conj().T).real
        return self._assemble([(mul, per_l[l]) for mul, l, _ in self.blocks], R.shape[0])

    def _assemble(self, parts: list[tuple[int, torch.Tensor]], P: int) -> torch.Tensor:
        out = torch.zeros(P, self.dim, self.dim, dtype=torch.float64)
        o = 0
        for mul, Dl in parts:
            d = Dl.shape[-1]
            for _ in range(mul):
                out[:, o : o + d, o : o + d] = Dl
                o += d
        return out

    def lie_action(self, c: torch.Tensor, omega: np.ndarray) -> torch.Tensor:
        w = FRAMES["e3nn"].T @ np.asarray(omega, dtype=np.float64)
        parts = []
        for mul, l, _ in self.blocks:
            Jx, Jy, Jz = _su2_J(l)
            G = -1j * (w[0] * Jx + w[1] * Jy + w[2] * Jz)  # d/dt D(exp(t w)) at 0, complex basis
            Q = _real_basis(l)
            parts.append((mul, torch.from_numpy((Q @ G.conj() @ Q.conj().T).real)[None]))
        A = self._assemble(parts, 1)[0].to(device=c.device, dtype=c.dtype)
        return c @ A.T

    def random(self, n: int, *, channels: int | None = None, decay: float = 0.0, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        check_float_dtype(dtype)
        decay = check_arg(Number(0.0), decay, "decay")
        gen = torch.Generator().manual_seed(check_arg(SEED, seed, "seed"))
        lead = (check_arg(Int(0), n, "n"),) if channels is None else (check_arg(Int(0), n, "n"), check_arg(Int(1), channels, "channels"))
        scale = torch.cat([torch.full((mul * (2 * l + 1),), (1.0 + l) ** (-decay / 2)) for mul, l, _ in self.blocks])
        return (torch.randn(*lead, self.dim, generator=gen, dtype=torch.float64) * scale.double()).to(dtype)


class Invariant(Field):
    """Any tensor ``[batch, ...]`` that SO(3) leaves unchanged; Euclidean norm."""

    def __repr__(self) -> str:
        return "Invariant()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Invariant)

    def __hash__(self) -> int:
        return hash("Invariant")

    def check(self, t: object, where: str) -> None:
        t = _check_tensor(t, where)
        if not (t.is_floating_point() or t.is_complex()):
            raise ValueError(f"{where}: expected a floating-point tensor for {self}, got dtype {t.dtype}")

    def rotate_coefficients(self, c: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        check_rotation(R)
        return c

    def lie_action(self, c: torch.Tensor, omega: np.ndarray) -> torch.Tensor:
        return torch.zeros_like(c)

    def random(self, n: int, *, channels: int | None = None, decay: float = 0.0, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        check_float_dtype(dtype)
        gen = torch.Generator().manual_seed(check_arg(SEED, seed, "seed"))
        return torch.randn(check_arg(Int(0), n, "n"), 1 if channels is None else check_arg(Int(1), channels, "channels"), generator=gen, dtype=torch.float64).to(dtype)


# --------------------------------------------------------------------------- signals on SO(3)
class SO3Grid(Field):
    """Real samples ``[batch, ..., 2b, 2b, 2b]`` (beta, alpha, gamma) on the SOFT grid of SO(3)
    (docs/conventions.md), as Cohen et al.'s layers pass them. Rotated by left translation
    ``(R.f)(g) = f(R^-1 g)``, exactly through its coefficients (``f^l -> D^l(R) f^l``); compared in
    the bandwidth-b coefficients; norm: L2(SO(3)) with ``dg`` of total mass 8 pi^2."""

    sampled = True

    def __init__(self, bandwidth: int) -> None:
        self._b = check_bandwidth(bandwidth)

    def __repr__(self) -> str:
        return f"SO3Grid({self._b})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SO3Grid) and self._b == other._b

    def __hash__(self) -> int:
        return hash(("SO3Grid", self._b))

    @property
    def bandwidth(self) -> int:
        return self._b

    @property
    def shape(self) -> tuple[int, int, int]:
        return so3_grid_shape(self._b)

    def matches(self, t: torch.Tensor) -> bool:
        return (isinstance(t, torch.Tensor) and t.dim() >= 4 and t.dtype in (torch.float32, torch.float64)
                and tuple(t.shape[-3:]) == self.shape)

    def check(self, t: object, where: str) -> None:
        t = _check_tensor(t, where)
        if t.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{where}: expected real float32/float64 samples of {self}, got dtype {t.dtype}")
        if t.dim() < 4 or tuple(t.shape[-3:]) != self.shape:
            s = self.shape[0]
            raise ValueError(f"{where}: expected [batch, ..., {s}, {s}, {s}] samples (beta, alpha, gamma) of {self},"
                             f" got shape {tuple(t.shape)}")

    def coefficients(self, t: torch.Tensor) -> torch.Tensor:
        return so3_fft(t)

    def from_coefficients(self, c: torch.Tensor) -> torch.Tensor:
        return so3_ifft(c)

    def rotate_coefficients(self, c: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        return so3_rotate_coefficients(c, R)

    def lie_action(self, c: torch.Tensor, omega: np.ndarray) -> torch.Tensor:
        return so3_lie_action(c, omega)

    def norm2(self, c: torch.Tensor) -> torch.Tensor:
        l = torch.arange(self._b, dtype=torch.float64, device=c.device)
        n2 = so3_degree_norms(c).double().square() * (8 * math.pi ** 2 / (2 * l + 1))
        return _flat(n2).sum(-1)

    def samples(self, c: torch.Tensor) -> torch.Tensor:
        return _flat(so3_ifft(c))

    def out_of_band(self, t: torch.Tensor) -> torch.Tensor:
        """``||t - ifft(fft(t))||^2 / ||t||^2`` over each sample's grid values; 0 for a band-limited one."""
        r = _flat(t - so3_ifft(so3_fft(t))).double().square().sum(-1)
        tot = _flat(t).double().square().sum(-1)
        return torch.where(tot > 0, r / tot.clamp_min(1e-300), torch.zeros_like(r))

    def project(self, t: torch.Tensor) -> torch.Tensor:
        return so3_ifft(so3_fft(t))

    def random(self, n: int, *, channels: int | None = None, decay: float = 0.0, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        check_float_dtype(dtype)
        n = check_arg(Int(0), n, "n")
        c = random_so3_coefficients(n, 1 if channels is None else check_arg(Int(1), channels, "channels"), self._b,
                                    check_arg(Number(0.0), decay, "decay"), check_arg(SEED, seed, "seed"))
        return so3_ifft(c if channels is not None else c[:, 0]).to(dtype)


#: Fields a TOML table can name (a Representation needs a callable, so it is built in Python).
FIELD_TYPES = ("S2Grid", "S2Coeffs", "SO3Grid", "Irreps", "Invariant")


def field_from_table(table: dict, defaults: dict | None = None, where: str = "field") -> Field:
    """A Field from a plain table (TOML): ``{field = "S2Grid", kind = "dh", bandwidth = 16,
    frame = "harness"}``, ``{field = "S2Coeffs", bandwidth = 16}``, ``{field = "SO3Grid",
    bandwidth = 10}``, ``{field = "Irreps", irreps = "0e+1o"}``, ``{field = "Invariant"}``. Missing ``kind`` / ``bandwidth`` are taken from
    ``defaults`` (a sweep cell's axes)."""
    if not isinstance(table, dict) or table.get("field") not in FIELD_TYPES:
        raise ValueError(f"{where}: expected a table with field = one of {list(FIELD_TYPES)}, got {table!r}")
    allowed = {"S2Grid": {"kind", "bandwidth", "frame"}, "S2Coeffs": {"bandwidth"}, "SO3Grid": {"bandwidth"},
               "Irreps": {"irreps"},
               "Invariant": set()}[table["field"]]
    unknown = set(table) - allowed - {"field"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} for a {table['field']}; allowed: {sorted(allowed)}")
    merged = {**{k: v for k, v in (defaults or {}).items() if k in allowed}, **table}
    missing = sorted(k for k in allowed - {"frame"} if k not in merged)
    if missing:
        raise ValueError(f"{where}: a {table['field']} needs {missing} (in the table or as axes)")
    args = {k: v for k, v in merged.items() if k != "field"}
    return {"S2Grid": S2Grid, "S2Coeffs": S2Coeffs, "SO3Grid": SO3Grid, "Irreps": Irreps,
            "Invariant": Invariant}[table["field"]](**args)


def as_field(spec: "Field | str", like: torch.Tensor | None = None, where: str = "input") -> Field:
    """A Field from a Field or a grid kind string ("dh", ...; the bandwidth read from ``like``)."""
    if isinstance(spec, Field):
        return spec
    if isinstance(spec, str):
        kind = check_kind(spec, where)
        if like is None or not isinstance(like, torch.Tensor) or like.dim() < 2:
            raise ValueError(f"{where}: the grid kind {spec!r} needs a tensor to read the bandwidth from")
        return S2Grid(kind, bandwidth_from_shape(tuple(like.shape[-2:]), kind))
    raise ValueError(f"{where}: expected a field (harness.S2Grid, S2Coeffs, Irreps, Invariant, ...) or a grid"
                     f" kind, got {spec!r}")


__all__ = ["Field", "S2Grid", "S2Coeffs", "SO3Grid", "Representation", "Irreps", "Invariant", "FRAMES", "FIELD_TYPES", "as_field",
           "field_from_table", "random_coefficients"]
