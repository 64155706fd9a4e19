"""Third-party spherical models, measured with exact rotations (``make third-party``).

1. e3nn ``S2Activation`` (irreps -> grid -> ReLU -> irreps) against the harness's ``Pointwise``
   ReLU at the same number of grid points: relative equivariance error and forward time, as two
   factory sweeps (``results/third_party/e3nn_s2activation``, ``.../harness_pointwise``).
2. torch-harmonics 0.8.0 on its "equiangular" grid (the harness's ``cc``): the SFNO spectral
   convolution (complex weights, as shipped, and real weights), an SFNO block, the DISCO
   convolution (defaults; "individual" basis normalization; a 4-step cutoff; anisotropic) and S2
   attention. A constant input's output shows why the DISCO defaults are far from equivariant. Each one's exact-rotation
   error (the harness), beside the protocol of torch-harmonics' equivariance notebook (rotate the
   input by cubic interpolation, apply, rotate back, compare on the grid) and that protocol's
   interpolation alone (``results/third_party/torch_harmonics.parquet``).

Figures in ``results/third_party/figures``. Run from the repository root.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import harness
from harness.runs.results import provenance

OUT = Path("results/third_party")
LMAX = 10  # e3nn's irreps 0e..10e: bandwidth 11
IRREPS = "+".join(f"{l}{'eo'[l % 2]}" for l in range(LMAX + 1))


# --------------------------------------------------------------------------- 1. e3nn vs harness
def e3nn_s2activation(res: int) -> torch.nn.Module:
    """e3nn's S2Activation on irreps 0e..10e with ReLU on a res x max(2 LMAX + 1, res - 1) grid."""
    from e3nn import nn as enn

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
    e3 = {"name": "e3nn_s2activation", "description": "e3nn S2Activation(0e..10e, relu, res) in float64",
          "axes": {"bandwidth": [LMAX + 1], "res": [22, 26, 32, 40, 48, 64, 88], "dtype": ["float64"]},
          "run": RUN, "model": {"input": {"field": "Irreps", "irreps": IRREPS},
                                "output": {"field": "Irreps", "irreps": IRREPS}}}
    pw = {"name": "harness_pointwise", "description": "harness Pointwise(relu, oversampling) at b = 11, float64",
          "axes": {"bandwidth": [LMAX + 1], "oversampling": [1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0], "dtype": ["float64"]},
          "run": RUN, "model": {"input": {"field": "S2Coeffs"}, "output": {"field": "S2Coeffs"}, "in_channels": 1}}
    harness.run_sweep(e3, out=OUT / "e3nn_s2activation", model_factory=e3nn_s2activation)
    harness.run_sweep(pw, out=OUT / "harness_pointwise", model_factory=harness_pointwise)


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


def th_modules(b: int) -> dict[str, object]:
    import torch_harmonics as th
    from torch_harmonics.examples.models._layers import SpectralConvS2
    from torch_harmonics.examples.models.sfno import SphericalFourierNeuralOperatorBlock

    g = harness.grid("cc", b)
    sht = th.RealSHT(*g.shape, lmax=b, mmax=b, grid="equiangular").float()
    isht = th.InverseRealSHT(*g.shape, lmax=b, mmax=b, grid="equiangular").float()
    torch.manual_seed(0)
    complex_conv = SpectralConvS2(sht, isht, 2, 2, operator_type="driscoll-healy")
    real_conv = SpectralConvS2(sht, isht, 2, 2, operator_type="driscoll-healy")
    with torch.no_grad():
        real_conv.weight.imag.zero_()
    block = SphericalFourierNeuralOperatorBlock(sht, isht, 2, 2, mlp_ratio=2.0)
    def disco(kernel_shape=(3,), **kw):
        return th.DiscreteContinuousConvS2(2, 2, in_shape=g.shape, out_shape=g.shape, kernel_shape=kernel_shape,
                                           grid_in="equiangular", grid_out="equiangular", **kw)

    step = math.pi / (g.nlat - 1)
    mods = {"SFNO spectral conv, complex weights (as shipped)": lambda x: complex_conv(x)[0],
            "SFNO spectral conv, real weights": lambda x: real_conv(x)[0],
            "SFNO block (spectral conv + GELU MLP)": block,
            "DISCO isotropic, defaults (mean norm, cutoff 1 step)": disco(),
            "DISCO isotropic, basis_norm_mode='individual'": disco(basis_norm_mode="individual"),
            "DISCO isotropic, cutoff 4 steps": disco(theta_cutoff=4 * step),
            "DISCO anisotropic (3 x 4), defaults": disco((3, 4))}
    if b <= 32:  # dense attention holds (nlat nlon)^2 scores: 4096^2 at b = 32
        mods["S2 attention"] = th.AttentionS2(2, 1, in_shape=g.shape, out_shape=g.shape, grid_in="equiangular",
                                              grid_out="equiangular")
    return mods


def part_torch_harmonics(bandwidths: list[int], degree: int = 12, n_inputs: int = 3, n_rotations: int = 3) -> None:
    rows = []
    R = harness.random_rotations(n_rotations, seed=2)
    for b in bandwidths:
        g = harness.grid("cc", b)
        c = harness.sphere.fields.random_coefficients(n_inputs, 2, degree + 1, seed=1)  # degrees <= 12, as the notebook
        x = harness.isft(harness.resize_coefficients(c, b), "cc").float()
        for name, mod in th_modules(b).items():
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
                        "module": name, "bandwidth": b, "nlat": g.nlat, "nlon": g.nlon, "input_degree": degree,
                        "input": np.arange(n_inputs), "rotation": k, "exact_rel_error": e["rel_error"].to_numpy(),
                        "exact_floor": e["floor"].to_numpy(), "interpolated_error": _grid_rel(back, y, g),
                        "interpolation_alone": _grid_rel(alone, y, g), "constant_input_spread": spread,
                        "seconds": time.perf_counter() - t0}))
            print(f"b={b:3d} {name}: exact {exact['rel_error'].median():.3g}", file=sys.stderr)
    df = pd.concat(rows, ignore_index=True)
    for k, v in provenance().items():
        df[k] = v
    OUT.mkdir(parents=True, exist_ok=True)
    df.to_parquet(OUT / "torch_harmonics.parquet", index=False)


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
    fig.suptitle(f"coefficients of degree < {LMAX + 1} -> grid -> ReLU -> coefficients, float64 (bands: 10-90% over"
                 " 8 inputs x 8 rotations; time: median of 7 calls)", y=1.02)
    fig.tight_layout()
    written.append(out / "e3nn_vs_harness_relu.png")
    fig.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    th = pd.read_parquet(OUT / "torch_harmonics.parquet")
    long = th.melt(id_vars=["module", "nlat"], value_vars=["exact_rel_error", "interpolated_error", "interpolation_alone"],
                   var_name="measure", value_name="error")
    long["measure"] = long["measure"].map({"exact_rel_error": "exact rotation (harness)",
                                           "interpolated_error": "cubic interpolation (notebook protocol)",
                                           "interpolation_alone": "interpolation alone"})
    order = ["exact rotation (harness)", "cubic interpolation (notebook protocol)", "interpolation alone"]
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
    g.figure.subplots_adjust(hspace=0.35)
    g.figure.suptitle("torch-harmonics 0.8.0 on its equiangular (cc) grid, float32, inputs of degree <= 12;"
                      " lines: median, bands: range over 3 inputs x 3 rotations", y=1.03)
    written.append(out / "torch_harmonics.png")
    g.figure.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(g.figure)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["e3nn", "torch-harmonics", "figures"],
                   choices=["e3nn", "torch-harmonics", "figures"])
    p.add_argument("--bandwidths", type=int, nargs="+", default=[16, 32, 64])
    a = p.parse_args(argv)
    if "e3nn" in a.parts:
        part_e3nn()
    if "torch-harmonics" in a.parts:
        part_torch_harmonics(a.bandwidths)
    if "figures" in a.parts:
        for f in figures():
            print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
