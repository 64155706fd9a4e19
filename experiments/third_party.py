"""Third-party spherical models, measured with exact rotations (``make third-party``).

1. e3nn ``S2Activation`` (irreps -> grid -> ReLU -> irreps) against the harness's ``Pointwise``
   ReLU at the same number of grid points: relative equivariance error and forward time, as two
   factory sweeps (``results/third_party/e3nn_s2activation``, ``.../harness_pointwise``; the e3nn
   cells carry ``e3nn_version`` as an axis).
2. torch-harmonics (the installed release; 0.9.3 in the test environment) on its "equiangular"
   grid (the harness's ``cc``): the SFNO spectral convolution (complex weights, as shipped, and
   real weights), an SFNO block, the public ``SpectralConvS2`` of 0.9 built with its defaults, the
   DISCO convolution (its defaults, and ``basis_norm_mode`` "mean" and "individual" named
   explicitly; a 4-step cutoff; anisotropic) and S2 attention. Each one's exact-rotation error (the
   harness), beside the protocol of torch-harmonics' equivariance notebook (rotate the input by
   cubic interpolation, apply, rotate back, compare on the grid) and that protocol's interpolation
   alone (``results/third_party/torch_harmonics.parquet``). Every module label names the
   ``basis_norm_mode`` it used (0.9's default is "nodal", 0.8.0's was "mean"). The 0.8.0
   measurements (``torch_harmonics_0.8.0.parquet``, measured by this script's previous version on
   torch-harmonics 0.8.0 built from source) are joined in as ``*_th080`` columns for the same
   configuration (``th080_module``), input and rotation.
3. The DISCO constant-input test (no rotation needed: an equivariant map sends a constant to a
   constant): an isotropic ``DiscreteContinuousConvS2`` (1 -> 1 channel, ``kernel_shape=3``, i.e. 2
   piecewise-linear basis functions, cutoff one grid step, no bias) on a constant input, for each
   ``basis_norm_mode`` on equiangular 32 x 32, 64 x 64, 128 x 128 and torch-harmonics' own
   129 x 256 grid. The output is sum_k w_k r_k with r_k the response of basis function k, so each
   r_k is measured once (weight = one-hot) and combined with fixed weights w = (1, 1) and with
   w ~ N(0, I) for weight seeds 0..9 (the module's own initialisation up to a scale, which the
   ratios do not see). Spread = (max - min) / |mean| over the grid's points (plain mean over the
   points); the per-latitude picture is the output's longitude mean over the grid mean, at the
   north pole row, the equator (row (nlat-1)/2 for odd nlat, the mean of the two middle rows for
   even nlat) and the south pole row. ``disco_constant.parquet`` (one row per grid, mode and
   weight vector), ``disco_constant_latitudes.parquet`` (the basis responses and the w = (1, 1)
   output per latitude) and the summary ``disco_constant.csv`` (mean, min, max over the seeds).
   Rows of other torch-harmonics versions already in these files are kept (the 0.8.0 rows were
   measured by this script with 0.8.0 installed; 0.8.0 has no "nodal" mode).

Every row carries the library versions (``torch_harmonics_version``, ``e3nn_version``,
``torch_version``, ...). Figures in ``results/third_party/figures``. Run from the repository root.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import textwrap
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import harness
from harness.runs.results import provenance

OUT = Path("results/third_party")
LMAX = 10  # e3nn's irreps 0e..10e: bandwidth 11
IRREPS = "+".join(f"{l}{'eo'[l % 2]}" for l in range(LMAX + 1))
TH080 = OUT / "torch_harmonics_0.8.0.parquet"  # the 0.8.0 measurements, kept as they were committed


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


def versions() -> dict[str, object]:
    """Provenance plus the version of every library the rows depend on."""
    return {**provenance(), "torch_harmonics_version": _version("torch-harmonics"), "e3nn_version": _version("e3nn"),
            "numpy_version": np.__version__, "scipy_version": _version("scipy")}


def _stamp(df: pd.DataFrame) -> pd.DataFrame:
    for k, v in versions().items():
        df[k] = v
    return df


# --------------------------------------------------------------------------- 1. e3nn vs harness
def e3nn_s2activation(res: int, e3nn_version: str) -> torch.nn.Module:
    """e3nn's S2Activation on irreps 0e..10e with ReLU on a res x max(2 LMAX + 1, res - 1) grid.
    ``e3nn_version`` is an axis so that every cell records it; it must be the installed one."""
    from e3nn import nn as enn

    if e3nn_version != _version("e3nn"):
        raise RuntimeError(f"the cell asks for e3nn {e3nn_version}, {_version('e3nn')} is installed")

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its grid tables in the default dtype
    try:
        return enn.S2Activation(IRREPS, torch.relu, res=res)
    finally:
        torch.set_default_dtype(old)


class HarnessS2Activation(torch.nn.Module):
    """What S2Activation computes, with the harness: coefficients -> dh grid -> Pointwise(relu, s)
    -> coefficients (so both sides pay for the transforms)."""

    def __init__(self, oversampling: float) -> None:
        super().__init__()
        self.act = harness.Pointwise("relu", oversampling=oversampling)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return harness.sft(self.act(harness.isft(c, "dh")), "dh")


def harness_pointwise(bandwidth: int, oversampling: float) -> torch.nn.Module:
    return HarnessS2Activation(oversampling)


def e3nn_grid_points(res: int) -> int:
    return res * max(2 * LMAX + 1, res - 1)


def harness_grid_points(bandwidth: int, oversampling: float) -> int:
    return (2 * math.ceil(oversampling * bandwidth - 1e-9)) ** 2


RUN = {"n_inputs": 8, "n_rotations": 8, "modes": ["cumulative"], "timing_repeats": 7}


def part_e3nn() -> None:
    """Both sweeps rerun from scratch (``fresh``): the results are those of the installed releases."""
    e3 = {"name": "e3nn_s2activation", "description": "e3nn S2Activation(0e..10e, relu, res) in float64",
          "axes": {"bandwidth": [LMAX + 1], "res": [22, 26, 32, 40, 48, 64, 88], "dtype": ["float64"],
                   "e3nn_version": [_version("e3nn")]},
          "run": RUN, "model": {"input": {"field": "Irreps", "irreps": IRREPS},
                                "output": {"field": "Irreps", "irreps": IRREPS}}}
    pw = {"name": "harness_pointwise", "description": "harness Pointwise(relu, oversampling) at b = 11, float64",
          "axes": {"bandwidth": [LMAX + 1], "oversampling": [1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0], "dtype": ["float64"]},
          "run": RUN, "model": {"input": {"field": "S2Coeffs"}, "output": {"field": "S2Coeffs"}, "in_channels": 1}}
    harness.run_sweep(e3, out=OUT / "e3nn_s2activation", model_factory=e3nn_s2activation, fresh=True)
    harness.run_sweep(pw, out=OUT / "harness_pointwise", model_factory=harness_pointwise, fresh=True)


# --------------------------------------------------------------------------- 2. torch-harmonics
def _cubic_rotate(x: torch.Tensor, R: np.ndarray, g: harness.Grid) -> torch.Tensor:
    """``x(R^-1 p)`` on the grid by cubic interpolation in (theta, phi), as the notebook does."""
    from scipy.interpolate import RegularGridInterpolator

    q = g.points() @ R  # rows: R^T p = R^-1 p
    th = np.arccos(np.clip(q[..., 2], -1, 1))
    ph = np.mod(np.arctan2(q[..., 1], q[..., 0]), 2 * np.pi)
    v = x.detach().double().numpy().reshape(-1, g.nlat, g.nlon)
    v = np.concatenate([v, v[..., :1]], axis=-1).transpose(1, 2, 0)  # periodic in phi
    f = RegularGridInterpolator((g.theta, np.append(g.phi, 2 * np.pi)), v, method="cubic")
    out = f(np.stack([th.ravel(), ph.ravel()], -1)).T.reshape(x.shape)
    return torch.from_numpy(out).to(x.dtype)


def _grid_rel(a: torch.Tensor, b: torch.Tensor, g: harness.Grid) -> np.ndarray:
    """Quadrature-weighted L2 relative difference per batch entry, the notebook's metric."""
    w = torch.from_numpy(g.area_weights)
    d = ((a - b).double() ** 2 * w).flatten(1).sum(-1)
    return (d / ((b.double() ** 2) * w).flatten(1).sum(-1)).sqrt().numpy()


def _disco_default_mode() -> str:
    import torch_harmonics as th

    return inspect.signature(th.DiscreteContinuousConvS2).parameters["basis_norm_mode"].default


# 0.9.x label -> the 0.8.0 label of the same configuration (same layer, same normalization). For an
# isotropic kernel 0.9's "nodal" divides each (basis function, output latitude) by its quadrature
# 1-norm, which is what 0.8.0 called "individual" (0.9 keeps "individual" as a deprecated alias).
TH080_LABELS = {
    "DISCO isotropic, defaults (basis_norm_mode='mean'), cutoff 1 step": "DISCO isotropic, defaults (mean norm, cutoff 1 step)",
    "DISCO isotropic, basis_norm_mode='mean' (explicit), cutoff 1 step": "DISCO isotropic, defaults (mean norm, cutoff 1 step)",
    "DISCO isotropic, defaults (basis_norm_mode='nodal'), cutoff 1 step": "DISCO isotropic, basis_norm_mode='individual'",
    "DISCO isotropic, basis_norm_mode='individual' (explicit), cutoff 1 step": "DISCO isotropic, basis_norm_mode='individual'",
    "DISCO isotropic, defaults (basis_norm_mode='mean'), cutoff 4 steps": "DISCO isotropic, cutoff 4 steps",
    "DISCO isotropic, basis_norm_mode='mean' (explicit), cutoff 4 steps": "DISCO isotropic, cutoff 4 steps",
    "DISCO anisotropic (3 x 4), defaults (basis_norm_mode='mean')": "DISCO anisotropic (3 x 4), defaults",
    "DISCO anisotropic (3 x 4), basis_norm_mode='mean' (explicit)": "DISCO anisotropic (3 x 4), defaults",
}


def th_modules(b: int) -> dict[str, tuple[object, str]]:
    """label -> (module, basis_norm_mode or ""). Every module is built right after
    ``torch.manual_seed(0)``, so its weights do not depend on which modules come before it."""
    import torch_harmonics as th
    from torch_harmonics.examples.models._layers import SpectralConvS2
    from torch_harmonics.examples.models.sfno import SphericalFourierNeuralOperatorBlock

    g = harness.grid("cc", b)
    sht = th.RealSHT(*g.shape, lmax=b, mmax=b, grid="equiangular").float()  # lmax explicit: 0.9 changed the default
    isht = th.InverseRealSHT(*g.shape, lmax=b, mmax=b, grid="equiangular").float()
    default = _disco_default_mode()

    def seeded(build):
        torch.manual_seed(0)
        return build()

    complex_conv = seeded(lambda: SpectralConvS2(sht, isht, 2, 2, operator_type="driscoll-healy"))
    real_conv = seeded(lambda: SpectralConvS2(sht, isht, 2, 2, operator_type="driscoll-healy"))
    with torch.no_grad():
        real_conv.weight.imag.zero_()

    def disco(kernel_shape=(3,), **kw):
        return seeded(lambda: th.DiscreteContinuousConvS2(2, 2, in_shape=g.shape, out_shape=g.shape,
                                                          kernel_shape=kernel_shape, grid_in="equiangular",
                                                          grid_out="equiangular", **kw))

    step = math.pi / (g.nlat - 1)
    mods = {"SFNO spectral conv, complex weights (as shipped)": (lambda x: complex_conv(x)[0], ""),
            "SFNO spectral conv, real weights": (lambda x: real_conv(x)[0], ""),
            "SFNO block (spectral conv + GELU MLP)": (seeded(lambda: SphericalFourierNeuralOperatorBlock(
                sht, isht, 2, 2, mlp_ratio=2.0)), "")}
    if hasattr(th, "SpectralConvS2"):  # 0.9's public layer, everything by default (its own truncation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Default SHT truncation changed in v0.9.0"
            mods["SpectralConvS2 (public, 0.9), defaults"] = (seeded(lambda: th.SpectralConvS2(g.shape, g.shape, 2, 2)), "")
    for cutoff, kw in (("1 step", {}), ("4 steps", {"theta_cutoff": 4 * step})):
        modes = [default] + [m for m in ("mean", "individual") if m != default and not (cutoff == "4 steps" and m == "individual")]
        for mode in modes:
            which = f"defaults (basis_norm_mode='{mode}')" if mode == default else f"basis_norm_mode='{mode}' (explicit)"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # 0.9: "individual" is an alias of "nodal"
                m = disco(**kw) if mode == default else disco(basis_norm_mode=mode, **kw)
            mods[f"DISCO isotropic, {which}, cutoff {cutoff}"] = (m, mode)
    for mode in [default] + [m for m in ("mean",) if m != default]:
        which = f"defaults (basis_norm_mode='{mode}')" if mode == default else f"basis_norm_mode='{mode}' (explicit)"
        mods[f"DISCO anisotropic (3 x 4), {which}"] = (disco((3, 4)) if mode == default else disco((3, 4), basis_norm_mode=mode), mode)
    if b <= 32:  # dense attention holds (nlat nlon)^2 scores: 4096^2 at b = 32
        mods["S2 attention"] = (seeded(lambda: th.AttentionS2(2, 1, in_shape=g.shape, out_shape=g.shape,
                                                              grid_in="equiangular", grid_out="equiangular")), "")
    return mods


def _join_th080(df: pd.DataFrame) -> pd.DataFrame:
    """The 0.8.0 errors of the same configuration, input and rotation, as ``*_th080`` columns."""
    df["th080_module"] = df["module"].map(lambda m: TH080_LABELS.get(m, m))
    if not TH080.is_file():
        return df
    old = pd.read_parquet(TH080)
    old = old[["module", "nlat", "input", "rotation", "exact_rel_error", "interpolated_error", "interpolation_alone",
               "constant_input_spread"]].rename(columns={
        "module": "th080_module", "exact_rel_error": "exact_error_th080", "interpolated_error": "interpolated_error_th080",
        "interpolation_alone": "interpolation_alone_th080", "constant_input_spread": "constant_input_spread_th080"})
    out = df.merge(old, on=["th080_module", "nlat", "input", "rotation"], how="left", validate="many_to_one")
    out.loc[out["exact_error_th080"].isna(), "th080_module"] = ""  # no 0.8.0 measurement of this configuration
    out["th080_version"] = np.where(out["th080_module"] != "", "0.8.0", "")
    return out


def part_torch_harmonics(bandwidths: list[int], degree: int = 12, n_inputs: int = 3, n_rotations: int = 3) -> None:
    rows = []
    R = harness.random_rotations(n_rotations, seed=2)
    for b in bandwidths:
        g = harness.grid("cc", b)
        c = harness.sphere.fields.random_coefficients(n_inputs, 2, degree + 1, seed=1)  # degrees <= 12, as the notebook
        x = harness.isft(harness.resize_coefficients(c, b), "cc").float()
        for name, (mod, mode) in th_modules(b).items():
            t0 = time.perf_counter()
            exact = harness.equivariance_error(mod, x, R, input="cc")
            with torch.no_grad():
                y = mod(x)
                one = mod(torch.ones(1, 2, *g.shape))  # an equivariant map sends constants to constants
                spread = float((one.amax((-1, -2)) - one.amin((-1, -2))).max() / one.abs().mean())
                for k in range(n_rotations):
                    Rk = R[k].numpy()
                    back = _cubic_rotate(mod(_cubic_rotate(x, Rk, g)), Rk.T, g)
                    alone = _cubic_rotate(_cubic_rotate(y, Rk, g), Rk.T, g)
                    e = exact[exact["rotation"] == k].sort_values("input")
                    rows.append(pd.DataFrame({
                        "module": name, "basis_norm_mode": mode, "bandwidth": b, "nlat": g.nlat, "nlon": g.nlon,
                        "input_degree": degree, "input": np.arange(n_inputs), "rotation": k,
                        "exact_rel_error": e["rel_error"].to_numpy(), "exact_floor": e["floor"].to_numpy(),
                        "interpolated_error": _grid_rel(back, y, g), "interpolation_alone": _grid_rel(alone, y, g),
                        "constant_input_spread": spread, "seconds": time.perf_counter() - t0}))
            print(f"b={b:3d} {name}: exact {exact['rel_error'].median():.3g}", file=sys.stderr)
    df = _stamp(_join_th080(pd.concat(rows, ignore_index=True)))
    OUT.mkdir(parents=True, exist_ok=True)
    df.to_parquet(OUT / "torch_harmonics.parquet", index=False)


# --------------------------------------------------------------------------- 3. DISCO constant input
DISCO_GRIDS = [(32, 32), (64, 64), (128, 128), (129, 256)]
DISCO_MODES = ["nodal", "mean", "individual"]
WEIGHT_SEEDS = range(10)


def _equator_rows(nlat: int) -> list[int]:
    return [(nlat - 1) // 2] if nlat % 2 else [nlat // 2 - 1, nlat // 2]


def _disco_responses(shape: tuple[int, int], mode: str) -> tuple[torch.Tensor, str]:
    """r[k] = the output of basis function k alone (weight one-hot) for the input 1, float64 copy
    of torch-harmonics' float32 result; and the text of any warning the construction gave."""
    import torch_harmonics as th

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conv = th.DiscreteContinuousConvS2(1, 1, in_shape=shape, out_shape=shape, kernel_shape=3, basis_norm_mode=mode,
                                           grid_in="equiangular", grid_out="equiangular", bias=False)
    note = "; ".join(sorted({str(w.message) for w in caught if w.category is DeprecationWarning}))
    r = []
    with torch.no_grad():
        for k in range(conv.kernel_size):
            conv.weight.zero_()
            conv.weight[0, 0, k] = 1.0
            r.append(conv(torch.ones(1, 1, *shape))[0, 0].double())
    return torch.stack(r), note


def _profile(y: torch.Tensor) -> dict[str, float]:
    mean = float(y.mean())
    lat = y.mean(-1) / mean
    return {"grid_mean": mean, "spread": float((y.max() - y.min()) / abs(mean)),
            "north_pole_over_mean": float(lat[0]), "equator_over_mean": float(lat[_equator_rows(y.shape[0])].mean()),
            "south_pole_over_mean": float(lat[-1]), "min_row_over_mean": float(lat.min()),
            "max_row_over_mean": float(lat.max()),
            "longitude_spread": float(((y.amax(-1) - y.amin(-1)) / abs(mean)).max())}


def part_disco_constant(grids=DISCO_GRIDS, modes=DISCO_MODES, seeds=WEIGHT_SEEDS) -> pd.DataFrame:
    default = _disco_default_mode()
    rows, lat_rows = [], []
    for nlat, nlon in grids:
        ref = None
        for mode in [default] + [m for m in modes if m != default]:
            base = {"grid": f"{nlat} x {nlon}", "nlat": nlat, "nlon": nlon, "kernel_shape": 3, "theta_cutoff": "1 step",
                    "basis_norm_mode": mode, "is_default": mode == default}
            try:
                r, note = _disco_responses((nlat, nlon), mode)
            except ValueError as e:  # a mode this release does not have (0.8.0: "nodal")
                rows.append({**base, "weights": "", "note": f"ValueError: {e}"})
                print(f"{nlat}x{nlon} {mode}: {e}", file=sys.stderr)
                continue
            if mode == default:
                ref = r
            diff = float((r - ref).abs().max()) if ref is not None and mode in modes else math.nan
            base |= {"kernel_size": r.shape[0], "note": note, "max_abs_diff_vs_default": diff}
            weights = {"ones": torch.ones(r.shape[0], dtype=torch.float64)}
            for s in seeds:
                weights[f"randn seed {s}"] = torch.randn(r.shape[0], generator=torch.Generator().manual_seed(s),
                                                         dtype=torch.float64)
            for wname, w in weights.items():
                y = torch.einsum("k,kij->ij", w, r)
                rows.append({**base, "weights": wname, "w": w.tolist(), **_profile(y)})
            theta = np.linspace(0, math.pi, nlat)
            for k in range(r.shape[0]):
                lat_rows.append(pd.DataFrame({**base, "weights": f"basis {k}", "ilat": np.arange(nlat), "theta": theta,
                                              "value": r[k].mean(-1).numpy(), "over_mean": (r[k].mean(-1) / r[k].mean()).numpy()}))
            y = r.sum(0)
            lat_rows.append(pd.DataFrame({**base, "weights": "ones", "ilat": np.arange(nlat), "theta": theta,
                                          "value": y.mean(-1).numpy(), "over_mean": (y.mean(-1) / y.mean()).numpy()}))
            one = rows[-len(weights)]
            print(f"{nlat}x{nlon} {mode:10s}: spread (w=1) {one['spread']:.3g}, pole {one['north_pole_over_mean']:.3g},"
                  f" equator {one['equator_over_mean']:.3g}", file=sys.stderr)
    df = _stamp(pd.DataFrame(rows))
    lat = _stamp(pd.concat(lat_rows, ignore_index=True))
    df["w"] = df["w"].map(lambda v: v if isinstance(v, list) else [])
    out = {}
    for name, new in (("disco_constant.parquet", df), ("disco_constant_latitudes.parquet", lat)):
        path = OUT / name
        if path.is_file():  # keep the rows of other torch-harmonics releases
            old = pd.read_parquet(path)
            new = pd.concat([old[old["torch_harmonics_version"] != new["torch_harmonics_version"].iloc[0]], new],
                            ignore_index=True)
        OUT.mkdir(parents=True, exist_ok=True)
        new.to_parquet(path, index=False)
        out[name] = new
    summary = disco_constant_summary(out["disco_constant.parquet"])
    summary.to_csv(OUT / "disco_constant.csv", index=False, float_format="%.4g")
    return summary


def disco_constant_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per release, grid and mode: w = (1, 1), and mean / min / max over the weight seeds."""
    keys = ["torch_harmonics_version", "grid", "nlat", "nlon", "basis_norm_mode", "is_default"]
    cols = ["spread", "north_pole_over_mean", "equator_over_mean", "south_pole_over_mean", "min_row_over_mean",
            "max_row_over_mean"]
    out = []
    for key, grp in df.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key))
        ones = grp[grp["weights"] == "ones"]
        seeded = grp[grp["weights"].str.startswith("randn")]
        row["note"] = grp["note"].iloc[0]
        for c in cols:
            row[f"{c}_w1"] = ones[c].iloc[0] if len(ones) else math.nan
        row["n_seeds"] = len(seeded)
        for c in cols:
            v = seeded[c] if len(seeded) else pd.Series([math.nan])
            row |= {f"{c}_seed_mean": v.mean(), f"{c}_seed_min": v.min(), f"{c}_seed_max": v.max()}
        row["longitude_spread_max"] = grp["longitude_spread"].max() if "longitude_spread" in grp else math.nan
        row["max_abs_diff_vs_default"] = grp["max_abs_diff_vs_default"].iloc[0] if "max_abs_diff_vs_default" in grp else math.nan
        row["torch_version"] = grp["torch_version"].iloc[0]
        out.append(row)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- figures
def figures() -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    out = OUT / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    e3 = harness.load_results(OUT / "e3nn_s2activation")
    pw = harness.load_results(OUT / "harness_pointwise")
    e3 = e3.assign(points=e3["res"].map(e3nn_grid_points), library="e3nn S2Activation (res)")
    pw = pw.assign(points=[harness_grid_points(b, s) for b, s in zip(pw["bandwidth"], pw["oversampling"])],
                   library="harness Pointwise (oversampling)")
    both = pd.concat([e3, pw], ignore_index=True)
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    sns.lineplot(data=both, x="points", y="rel_error", hue="library", marker="o", errorbar=("pi", 80), ax=axes[0])
    axes[0].set(xscale="log", yscale="log", xlabel="grid points the ReLU is sampled on",
                ylabel="relative equivariance error")
    axes[0].legend(title=None, loc="lower left", fontsize=9)
    t = both.groupby(["library", "points"], as_index=False)["forward_ms"].median()
    sns.lineplot(data=t, x="points", y="forward_ms", hue="library", marker="o", ax=axes[1], legend=False)
    axes[1].set(xscale="log", yscale="log", xlabel="grid points the ReLU is sampled on",
                ylabel="forward time per input (ms, 1 thread)")
    for ax in axes:
        ax.set_xticks([500, 1000, 2000, 5000], ["500", "1000", "2000", "5000"])
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle(f"e3nn {e3['e3nn_version'].iloc[0]}: coefficients of degree < {LMAX + 1} -> grid -> ReLU ->"
                 " coefficients, float64 (bands: 10-90% over 8 inputs x 8 rotations; time: median of 7 calls)", y=1.02)
    fig.tight_layout()
    written.append(out / "e3nn_vs_harness_relu.png")
    fig.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    th = pd.read_parquet(OUT / "torch_harmonics.parquet")
    ver = th["torch_harmonics_version"].iloc[0]
    names = {"exact_rel_error": f"exact rotation (harness), {ver}",
             "interpolated_error": f"cubic interpolation (notebook protocol), {ver}",
             "interpolation_alone": f"interpolation alone, {ver}",
             "exact_error_th080": "exact rotation (harness), 0.8.0, same configuration"}
    long = th.melt(id_vars=["module", "nlat"], value_vars=list(names), var_name="measure", value_name="error")
    long = long.dropna(subset=["error"])
    long["measure"] = long["measure"].map(names)
    long["module"] = long["module"].map(lambda m: "\n".join(textwrap.wrap(m, 44)))
    order = [v for v in names.values() if v in set(long["measure"])]
    g = sns.relplot(data=long, x="nlat", y="error", hue="measure", hue_order=order, style="measure", style_order=order,
                    col="module", col_wrap=4, kind="line", markers=True, dashes=False, errorbar=("pi", 100),
                    height=3.4, aspect=1.15, facet_kws={"sharey": False})
    g.set(xscale="log", yscale="log")
    from matplotlib.ticker import LogLocator, NullFormatter

    for ax in g.axes.flat:
        ax.set_xticks(sorted(long["nlat"].unique()), [str(v) for v in sorted(long["nlat"].unique())])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(numticks=6))
        ax.yaxis.set_minor_formatter(NullFormatter())
    g.set_titles("{col_name}", size=8.5)
    g.set_axis_labels("grid 2b x 2b (nlat)", "relative error")
    sns.move_legend(g, "upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, title=None, frameon=False)
    g.figure.subplots_adjust(hspace=0.45)
    g.figure.suptitle(f"torch-harmonics {ver} on its equiangular (cc) grid, float32, inputs of degree <= 12;"
                      " lines: median, bands: range over 3 inputs x 3 rotations", y=1.02)
    written.append(out / "torch_harmonics.png")
    g.figure.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(g.figure)

    lat = pd.read_parquet(OUT / "disco_constant_latitudes.parquet")
    lat = lat[lat["weights"] == "ones"].copy()
    lat["release, basis_norm_mode"] = [f"{v}, {m}{' (default)' if d else ''}" for v, m, d in
                                       zip(lat["torch_harmonics_version"], lat["basis_norm_mode"], lat["is_default"])]
    lat["latitude (deg)"] = 90 - np.degrees(lat["theta"])
    fig, axes = plt.subplots(1, len(DISCO_GRIDS), figsize=(4.0 * len(DISCO_GRIDS), 3.8), sharey=True)
    for ax, (nlat, nlon) in zip(axes, DISCO_GRIDS):
        sub = lat[(lat["nlat"] == nlat) & (lat["nlon"] == nlon)]
        sns.lineplot(data=sub, x="latitude (deg)", y="over_mean", hue="release, basis_norm_mode", style="release, basis_norm_mode",
                     ax=ax, legend=ax is axes[-1])
        ax.set(title=f"{nlat} x {nlon} equiangular", ylabel="row mean / grid mean")
    sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, title="release, basis_norm_mode")
    fig.suptitle("DISCO isotropic conv (kernel_shape=3, cutoff 1 grid step, weights (1, 1), no bias) on a constant input:"
                 " an equivariant map returns a constant (1)", y=1.02)
    fig.tight_layout()
    written.append(out / "disco_constant.png")
    fig.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["e3nn", "torch-harmonics", "disco-constant", "figures"],
                   choices=["e3nn", "torch-harmonics", "disco-constant", "figures"])
    p.add_argument("--bandwidths", type=int, nargs="+", default=[16, 32, 64])
    a = p.parse_args(argv)
    if "e3nn" in a.parts:
        part_e3nn()
    if "torch-harmonics" in a.parts:
        part_torch_harmonics(a.bandwidths)
    if "disco-constant" in a.parts:
        print(part_disco_constant().to_string(), file=sys.stderr)
    if "figures" in a.parts:
        for f in figures():
            print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
