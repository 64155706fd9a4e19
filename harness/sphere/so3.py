"""SO(3): validation, Haar sampling and the parametrisations (matrices, quaternions, ZYZ Euler).

Conventions (``docs/conventions.md``): ZYZ Euler angles ``R = Rz(alpha) Ry(beta) Rz(gamma)``,
scipy's ``as_euler("ZYZ")`` (capitals); quaternions scalar-last ``(x, y, z, w)`` as scipy's
``as_quat()``.
"""

from __future__ import annotations

import torch

from ..util.memory import check_fits
from ..util.schema import SEED, Int, check_arg, check_float_dtype


def check_rotation(R: object, name: str = "R", atol: float = 1e-6) -> torch.Tensor:
    """Validate ``[..., 3, 3]`` real rotation matrices (orthogonal, det +1, within ``atol``)."""
    if not isinstance(R, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of rotation matrices [..., 3, 3], got {type(R).__name__}")
    if R.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name}: expected float32 or float64 rotation matrices, got dtype {R.dtype}")
    if R.dim() < 2 or R.shape[-2:] != (3, 3):
        raise ValueError(f"{name}: expected shape [..., 3, 3], got shape {tuple(R.shape)}")
    if R.numel() == 0:
        return R
    if not bool(torch.isfinite(R.detach()).all()):
        raise ValueError(f"{name}: expected finite rotation matrices, got nan/inf entries")
    R64 = R.detach().double()
    eye = torch.eye(3, dtype=torch.float64, device=R.device)
    orth = float((R64.transpose(-1, -2) @ R64 - eye).abs().amax())
    det = float((torch.linalg.det(R64) - 1).abs().amax())
    if orth > atol or det > atol:
        raise ValueError(f"{name}: not a rotation: max |R^T R - I| = {orth:.2e}, max |det R - 1| = {det:.2e}"
                         f" (tolerance {atol:g})")
    return R


# --------------------------------------------------------------------------- sampling, conversions
def random_rotations(n: int, seed: int | None = None, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[n, 3, 3]`` rotations from the Haar measure on SO(3).

    A unit quaternion from a normalized 4-D standard Gaussian is uniform on S^3, so its rotation is
    Haar-distributed. Uses its own generator (``seed`` or ``generator``), never torch's global RNG.
    """
    check_arg(Int(0), n, "n")
    check_float_dtype(dtype)
    if generator is not None and seed is not None:
        raise ValueError(f"seed, generator: give one of them (a seed, or a generator whose state is used),"
                         f" got both (seed={seed!r}); with both the seed would be ignored")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    check_fits(n * 4 * 8 * 4, f"{n} random rotations")
    if generator is None:
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(check_arg(SEED, seed, "seed"))
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    return quaternion_to_matrix(q).to(dtype)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternions ``[..., 4]`` (x, y, z, w), normalized here, -> ``[..., 3, 3]``; a zero or
    non-finite quaternion is refused (it has no rotation)."""
    if not isinstance(q, torch.Tensor):
        raise TypeError(f"q: expected a torch.Tensor of quaternions [..., 4], got {type(q).__name__}")
    if q.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"q: expected float32 or float64 quaternions, got dtype {q.dtype}")
    if q.dim() < 1 or q.shape[-1] != 4:
        raise ValueError(f"q: expected shape [..., 4] (x, y, z, w), got shape {tuple(q.shape)}")
    norm = q.norm(dim=-1, keepdim=True)
    if q.numel() and not bool((torch.isfinite(norm) & (norm > 0)).all()):
        bad = int((~(torch.isfinite(norm) & (norm > 0))).sum())
        raise ValueError(f"q: {bad} quaternion(s) are zero or not finite; a rotation needs a nonzero finite quaternion")
    q = q / norm
    x, y, z, w = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """``[..., 3, 3]`` -> unit quaternions ``[..., 4]`` (x, y, z, w), w >= 0.

    Picks, per matrix, the largest of 4w^2, 4x^2, 4y^2, 4z^2 as the pivot (Shepperd's method).
    """
    check_rotation(R)
    m = R
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cands = torch.stack([
        torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1], 1 + tr], -1),
        torch.stack([1 + 2 * m[..., 0, 0] - tr, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], -1),
        torch.stack([m[..., 0, 1] + m[..., 1, 0], 1 + 2 * m[..., 1, 1] - tr, m[..., 1, 2] + m[..., 2, 1], m[..., 0, 2] - m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - tr, m[..., 1, 0] - m[..., 0, 1]], -1),
    ], dim=-2)  # [..., 4 candidates, 4]; candidate i is 4 q_i q (up to sign)
    pivot = torch.stack([1 + tr, 1 + 2 * m[..., 0, 0] - tr, 1 + 2 * m[..., 1, 1] - tr, 1 + 2 * m[..., 2, 2] - tr], -1)
    best = pivot.argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., 3:] < 0, -q, q)


def _rz(t: torch.Tensor) -> torch.Tensor:
    c, s, o, z = torch.cos(t), torch.sin(t), torch.ones_like(t), torch.zeros_like(t)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*t.shape, 3, 3)


def _ry(t: torch.Tensor) -> torch.Tensor:
    c, s, o, z = torch.cos(t), torch.sin(t), torch.ones_like(t), torch.zeros_like(t)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*t.shape, 3, 3)


def euler_zyz_to_matrix(alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``R = Rz(alpha) Ry(beta) Rz(gamma)``, shapes broadcast, -> ``[..., 3, 3]`` float64."""
    angles = []
    for name, a in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if isinstance(a, bool) or not isinstance(a, (int, float, torch.Tensor)) or (
                isinstance(a, torch.Tensor) and not (a.is_floating_point() or a.dtype in (torch.int32, torch.int64))):
            raise TypeError(f"{name}: expected a number or a real tensor of angles, got {type(a).__name__}"
                            + (f" of dtype {a.dtype}" if isinstance(a, torch.Tensor) else ""))
        angles.append(torch.as_tensor(a, dtype=torch.float64))
    try:
        alpha, beta, gamma = torch.broadcast_tensors(*angles)
    except RuntimeError:
        raise ValueError(f"alpha, beta, gamma: shapes {[tuple(a.shape) for a in angles]} do not broadcast") from None
    return _rz(alpha) @ _ry(beta) @ _rz(gamma)


def matrix_to_euler_zyz(R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[..., 3, 3]`` -> ``(alpha, beta, gamma)`` with beta in [0, pi].

    alpha and beta from the third column; gamma from ``Ry(beta)^T Rz(alpha)^T R = Rz(gamma)``, so
    the angles reproduce R to rounding also at and near gimbal lock (beta = 0 or pi, where only
    alpha +- gamma is defined and alpha is 0).
    """
    return _euler_zyz(check_rotation(R))


def _euler_zyz(R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    alpha = torch.atan2(R[..., 1, 2], R[..., 0, 2])
    beta = torch.atan2(torch.hypot(R[..., 0, 2], R[..., 1, 2]), R[..., 2, 2])
    M = (_rz(alpha) @ _ry(beta)).transpose(-1, -2) @ R
    gamma = torch.atan2(M[..., 1, 0], M[..., 0, 0])
    return alpha, beta, gamma


