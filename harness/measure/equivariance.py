"""Measuring equivariance of any model: per-layer errors, the instrument's floor, Cohen's Delta.

Library code returns numbers (DataFrames); :func:`assert_equivariant` is the one place that
decides pass/fail, for users' test suites. Definitions are in ``docs/metrics.md``. Every output is
compared in its field's representation (a sphere signal in its bandwidth-b coefficients), and
``g.y`` is the field's exact rotation, so the instrument adds only rounding — reported per row as
``floor``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..sphere.fields import Field, Invariant, S2Coeffs, S2Grid, random_coefficients
from ..sphere.grids import check_bandwidth, check_kind
from ..sphere.so3 import check_rotation, random_rotations
from ..sphere.transforms import degree_norms, isft
from ..util.schema import check_float_dtype
from .watch import FieldDecl, check_finite, frozen, prepare_input, probes, release_memory, run, watch_list

MODES = ("cumulative", "isolated")
#: assert_equivariant's default tolerance on the relative error, by the input's real dtype.
DEFAULT_RTOL = {torch.float64: 1e-10, torch.float32: 1e-4}
#: Memory the rotated copies of one chunk may take (auto chunk size).
CHUNK_BYTES = 256 * 2**20
COLUMNS = ["layer", "layer_index", "layer_type", "field", "input", "rotation", "rel_error", "max_abs_error",
           "cohen_delta", "floor", "layer_bandwidth", "error_kind", "mode", "flag"]
SPECTRUM_COLUMNS = ["layer", "layer_index", "input", "rotation", "degree", "error"]


def random_signals(n: int, channels: int, bandwidth: int, decay: float = 0.0, kind: str = "dh",
                   seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[n, channels, nlat, nlon]`` random real signals of bandwidth b on grid ``kind``:
    independent Gaussian coefficients with ``E|f^m_l|^2 = (1 + l)^-decay`` (decay = 0: white),
    scaled to unit mean square on the sphere. Own generator: the global RNG is untouched."""
    check_kind(kind)
    check_float_dtype(dtype)
    return isft(random_coefficients(n, channels, check_bandwidth(bandwidth), decay, seed), kind).to(dtype)


def _removed(fn: str, kwargs: dict[str, object], renamed: dict[str, str]) -> None:
    """A TypeError for keywords the function does not take, pointing at their new names."""
    if kwargs:
        hints = "; ".join(f"{k!r} is now {renamed[k]}" for k in kwargs if k in renamed)
        raise TypeError(f"{fn}() got unexpected keyword argument(s) {sorted(kwargs)}" + (f": {hints}" if hints else ""))


def check_rotations(rotations: object, name: str = "rotations") -> torch.Tensor:
    R = check_rotation(rotations, name)
    if R.dim() != 3:
        raise ValueError(f"{name}: expected [K, 3, 3], got shape {tuple(R.shape)}")
    return R.double()


def _pairs(N: int, K: int, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """(input index, rotation index) of every measured pair, rotation-major."""
    if paired:
        if K != N:
            raise ValueError(f"rotations: paired=True rotates input i by rotation i, so it needs as many"
                             f" rotations as inputs; got {K} rotations for {N} inputs")
        return np.arange(N), np.arange(N)
    kk, ii = np.meshgrid(np.arange(K), np.arange(N), indexing="ij")
    return ii.ravel(), kk.ravel()


def _chunk(sizes: Sequence[int], x: torch.Tensor, chunk_size: int | None, total: int) -> int:
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size: expected an int >= 1 (pairs per chunk), got {chunk_size!r}")
        return chunk_size
    per_pair = 8 * sum(sizes) + 4 * x[0].numel() * x.element_size() if x.shape[0] else 1
    return int(max(1, min(max(total, 1), CHUNK_BYTES // max(per_pair, 1))))


#: A reference whose samples' std is within this many ulps of their RMS is constant to rounding:
#: its cohen_delta (a std over that std) is rounding over rounding, flagged instead of reported.
ROUNDING_SPREAD = 1000


def _rms(s: torch.Tensor) -> torch.Tensor:
    return s.double().square().mean(-1).sqrt() if s.shape[-1] else torch.zeros(s.shape[0], dtype=torch.float64)


def _std(s: torch.Tensor) -> torch.Tensor:
    return s.double().std(-1, correction=0) if s.shape[-1] else torch.zeros(s.shape[0], dtype=torch.float64)


def _spectrum(field: Field, diff: torch.Tensor, n2: torch.Tensor) -> torch.Tensor | None:
    if not isinstance(field, (S2Grid, S2Coeffs)):
        return None
    d = degree_norms(diff).square()  # [P, ..., b]
    return d.reshape(d.shape[0], -1, d.shape[-1]).sum(1).double().sqrt() / n2[:, None].sqrt()


def equivariance_error(model: nn.Module | Callable, x: torch.Tensor, rotations: torch.Tensor, *,
                       input: Field | str | None = None, output: Field | None = None,
                       layers: Sequence[str] | Mapping[str, FieldDecl] | None = None,
                       mode: str = "cumulative", paired: bool = False, project: bool = False,
                       spectrum: bool = False, chunk_size: int | None = None, **removed: object
                       ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Per-layer equivariance error of any model, one row per (watched layer, input, rotation).

    model: any ``nn.Module`` or callable. x: ``[N, ...]`` inputs of field ``input`` (a Field, a
    grid kind, or None for a harness model's own grid). rotations: ``[K, 3, 3]``; every input is
    measured under every rotation, or input i under rotation i with ``paired=True``.
    layers: names from ``named_modules()`` (or a harness model's layer names), or a dict
    name -> output field (or (input field, output field)); default: a harness model's layers, an
    ``nn.Sequential``'s children, else the model's output ("output", field ``output``).
    mode: "cumulative" runs the model on ``g.x``; "isolated" re-runs each watched layer on the
    exact rotation of its own captured input.

    Columns: ``layer, layer_index, layer_type, field, input, rotation, rel_error, max_abs_error,
    cohen_delta, floor, layer_bandwidth, error_kind, mode, flag`` (docs/metrics.md). The model runs
    in eval mode without autograd and is left exactly as it was. ``spectrum=True`` also returns a
    per-degree frame for sphere fields. Rotations are processed ``chunk_size`` pairs at a time
    (default: what fits in ``CHUNK_BYTES``), so memory does not grow with their number.
    """
    _removed("equivariance_error", removed, {"kind": "input (a grid kind or a field, e.g. input='dh')"})
    if mode not in MODES:
        raise ValueError(f"mode: unknown mode {mode!r}; valid modes are {list(MODES)}")
    R = check_rotations(rotations)
    field, x = prepare_input(model, x, input, project)
    watched = watch_list(model, layers, output)
    ii, kk = _pairs(x.shape[0], R.shape[0], paired)
    if len(ii) == 0:  # no inputs or no rotations: nothing to measure
        empty = pd.DataFrame(columns=COLUMNS)
        return (empty, pd.DataFrame(columns=SPECTRUM_COLUMNS)) if spectrum else empty
    isolated = mode == "isolated"
    R = R.to(x.device)
    rows: list[pd.DataFrame] = []
    spec_rows: list[pd.DataFrame] = []
    with frozen(model):
        _, calls = run(model, x, watched, capture_inputs=isolated)
        plist = probes(watched, calls, field, need_inputs=isolated)
        refs = []
        for p in plist:
            y = p.output(calls)
            check_finite(y, f"layer {p.name!r} output")
            c = p.out_field.coefficients(y)
            s0 = p.out_field.samples(c)
            # the reference's spread, and its spread at rounding level: below ROUNDING_SPREAD ulps
            # of its RMS value, as for a constant input, its std is rounding noise
            flat = _std(s0) <= ROUNDING_SPREAD * torch.finfo(s0.dtype).eps * _rms(s0)
            refs.append((y.shape, c, p.out_field.norm2(c).double(), torch.where(flat, 0.0, _std(s0))))
        xc = field.coefficients(x)
        xn2 = field.norm2(xc).double().clamp_min(1e-300)
        inputs = [p.in_field.coefficients(calls[p.key][p.call].inp) for p in plist] if isolated else []
        step = _chunk([r[1][0].numel() * r[1].element_size() for r in refs], x, chunk_size, len(ii))
        acc: list[list[dict[str, np.ndarray]]] = [[] for _ in plist]
        for s0 in range(0, len(ii), step):
            i, k = torch.from_numpy(ii[s0 : s0 + step]), torch.from_numpy(kk[s0 : s0 + step])
            Rk = R[k]
            gxc = field.rotate_coefficients(xc[i], Rk)
            xs = field.from_coefficients(gxc)
            # the instrument's own error: the identity, measured on the same inputs and rotations
            fl = (field.norm2(field.coefficients(xs) - gxc).double() / xn2[i] if field.sampled
                  else torch.zeros(len(i), dtype=torch.float64))
            if isolated:
                outs = [p.rerun(calls, p.in_field.from_coefficients(p.in_field.rotate_coefficients(cin[i], Rk)))
                        for p, cin in zip(plist, inputs)]
            else:
                _, rcalls = run(model, xs, watched)
                for w in watched:
                    if len(rcalls[w.name]) != len(calls[w.name]):
                        raise ValueError(f"layer {w.name!r}: called {len(calls[w.name])} times on x but"
                                         f" {len(rcalls[w.name])} times on the rotated inputs")
                outs = [p.output(rcalls) for p in plist]
            for j, (p, (shape, c, n2, sd), ys) in enumerate(zip(plist, refs, outs)):
                if not isinstance(ys, torch.Tensor) or ys.shape[1:] != shape[1:] or ys.shape[0] != len(i):
                    raise ValueError(f"layer {p.name!r}: output on rotated inputs is {tuple(getattr(ys, 'shape', ()))},"
                                     f" on x {tuple(shape)}")
                check_finite(ys, f"layer {p.name!r} output on rotated inputs")
                f = p.out_field
                ref = f.rotate_coefficients(c[i], Rk)
                diff = f.coefficients(ys) - ref
                d2, s = f.norm2(diff).double(), f.samples(diff)
                acc[j].append({"input": ii[s0 : s0 + step], "rotation": kk[s0 : s0 + step], "d2": d2.cpu().numpy(),
                               "n2": n2[i].cpu().numpy(), "max": s.abs().amax(-1).double().cpu().numpy() if s.shape[-1]
                               else np.zeros(len(i)), "sd": _std(s).cpu().numpy(), "sd0": sd[i].cpu().numpy(),
                               "floor2": fl.cpu().numpy()})
                if spectrum:
                    per_l = _spectrum(f, diff, n2[i])
                    if per_l is not None:
                        b = per_l.shape[-1]
                        spec_rows.append(pd.DataFrame({
                            "layer": p.name, "layer_index": j, "input": np.repeat(ii[s0 : s0 + step], b),
                            "rotation": np.repeat(kk[s0 : s0 + step], b), "degree": np.tile(np.arange(b), len(i)),
                            "error": per_l.cpu().numpy().ravel()}))
            del outs
            release_memory()
    for j, p in enumerate(plist):
        rows.append(_rows(p, j, acc[j], mode))
    df = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)
    if spectrum:
        spec = pd.concat(spec_rows, ignore_index=True) if spec_rows else pd.DataFrame(columns=SPECTRUM_COLUMNS)
        return df, spec
    return df


def _rows(p, j: int, parts: list[dict[str, np.ndarray]], mode: str) -> pd.DataFrame:
    a = {k: np.concatenate([q[k] for q in parts]) if parts else np.zeros(0) for k in
         ("input", "rotation", "d2", "n2", "max", "sd", "sd0", "floor2")}
    zero = a["n2"] == 0
    flat = (a["sd0"] == 0) & ~zero
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(zero, np.nan, np.sqrt(a["d2"] / a["n2"]))
        floor = np.sqrt(a["floor2"])
        cohen = np.where(zero | flat, np.nan, a["sd"] / a["sd0"])
    flag = np.where(zero, "zero reference: relative errors undefined",
                    np.where(flat, "constant reference (to rounding): cohen_delta undefined", ""))
    b = p.out_field.bandwidth
    return pd.DataFrame({
        "layer": p.name, "layer_index": j, "layer_type": p.layer_type, "field": repr(p.out_field),
        "input": a["input"].astype(np.int64), "rotation": a["rotation"].astype(np.int64), "rel_error": rel,
        "max_abs_error": a["max"], "cohen_delta": cohen, "floor": floor,
        "layer_bandwidth": -1 if b is None else b,
        "error_kind": "invariance" if isinstance(p.out_field, Invariant) else "equivariance",
        "mode": mode, "flag": flag}, columns=COLUMNS)


def assert_equivariant(model: nn.Module | Callable, x: torch.Tensor, rotations: torch.Tensor | None = None, *,
                       input: Field | str | None = None, output: Field | None = None,
                       layers: Sequence[str] | Mapping[str, FieldDecl] | None = None, mode: str = "cumulative",
                       rtol: float | None = None, n_rotations: int = 4, seed: int = 0,
                       project: bool = False) -> pd.DataFrame:
    """Raise AssertionError, with the per-layer table, if any watched layer's relative error
    exceeds ``rtol`` (default by x's dtype: ``DEFAULT_RTOL``) under ``rotations`` (default
    ``n_rotations`` Haar rotations from ``seed``). Returns the measurement when it passes."""
    if rtol is not None and (isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 <= rtol < math.inf):
        raise ValueError(f"rtol: expected a finite number >= 0 (the largest relative error that passes), got {rtol!r}")
    if rotations is None:
        rotations = random_rotations(n_rotations, seed=seed)
    if rtol is None:
        rtol = DEFAULT_RTOL.get(x.real.dtype if isinstance(x, torch.Tensor) and x.is_complex() else
                                getattr(x, "dtype", None), 1e-4)
    df = equivariance_error(model, x, rotations, input=input, output=output, layers=layers, mode=mode,
                            project=project)
    if len(df) == 0:  # an assertion that measured nothing proves nothing
        raise AssertionError(f"nothing was measured ({x.shape[0]} inputs, {len(rotations)} rotations): an"
                             " assertion needs at least one input and one rotation")
    worst = df.groupby("layer", sort=False).agg(max_rel_error=("rel_error", "max"), floor=("floor", "max"),
                                                field=("field", "first"))
    bad = worst[~(worst["max_rel_error"] <= rtol)]  # NaN fails too
    if len(bad):
        raise AssertionError(f"not equivariant to rtol={rtol:g} ({mode} mode, {df['rotation'].nunique()} rotations,"
                             f" {df['input'].nunique()} inputs); failing: {list(bad.index)}\n{worst.to_string()}")
    return df


__all__ = ["MODES", "DEFAULT_RTOL", "random_signals", "equivariance_error", "assert_equivariant", "check_rotations"]
