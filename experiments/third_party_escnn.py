"""escnn's sampled nonlinearities measured with exact rotations (``make third-party-escnn``; runs in
``.venv-escnn``, since escnn 1.0.11 pins numpy < 2).

The question is the one the e3nn comparison in ``third_party.py`` answers: how many grid points does
a sampled ReLU need to be close to equivariant? Two layers, each beside the harness's own layer:

* SO(3) features: escnn ``FourierPointwise`` on ``gspaces.no_base_space(so3_group(L))`` with
  ``G.bl_irreps(L)`` (band-limited regular fields) on its grids of N group elements ('thomson',
  'hopf', 'fibonacci', 'rand', and the orbits 'tetra', 'cube', 'ico'), against the harness's
  ``SO3Pointwise`` at oversampling s (its fine SOFT grid has (2 ceil(s b))^3 points, b = L + 1).
* S^2 features: escnn ``QuotientFourierPointwise`` on SO(3)/SO(2) (subgroup id (False, -1)) with
  ``grid=G.sphere_grid(type, ...)`` ('thomson', 'fibonacci', 'healpix', 'longlat', 'rand', 'ico'),
  against the harness's ``Pointwise`` at oversampling s (fine dh grid of (2 ceil(s b))^2 points).

Both sides are measured the same way: on the same input vectors, in the same field (escnn's feature
vectors, ``harness.Representation.from_escnn``: rotations exact through escnn's own representation
matrices at ``G.element(R, 'MAT')``), so rel_error is ||f(rho(R) x) - rho(R) f(x)|| / ||f(x)|| in the
Euclidean norm of escnn's coefficients (for regular SO(3) fields that is the L2(SO(3)) norm up to a
constant; for quotient fields degree l is weighted by sqrt(2l + 1) against L2(S^2), and the column
``rel_error_l2`` gives the same error in the L2(S^2) norm). The harness layer is fed escnn's vectors
through an exact bridge: a vector x is the function g -> <x, rho(g) k> (k escnn's kernel, what
FourierPointwise samples), evaluated on the harness's SOFT / dh grid of bandwidth b = L + 1; after
the layer the band-limited output (degrees <= L, projected by the harness's exact transform) is read
back by a least-squares solve that is exact for such functions. ``tests/test_escnn.py`` checks the
bridge against the harness's exact grid rotations.

"Exact by design" controls: escnn's transform pair alone (function = identity; exact up to its
eps = 1e-8 Tikhonov regularization, and to rounding on the 'ico' orbit) and the harness's square
at s = 1.5 (a degree-2 polynomial, exact once the fine grid integrates degree 3b - 2; rounding).

Time per call: forward of a batch of 16 inputs x 4 channels, 1 torch thread; every layer is timed
in 9 interleaved rounds after all errors are measured (each round the mean over ~0.1 s of calls),
the median over the rounds;
escnn on ``GeometricTensor``s, the harness on its own coefficients (coefficients -> grid -> layer
-> coefficients, as ``third_party.py`` times e3nn's S2Activation against ``Pointwise``), so both pay
for their transforms. The first run computes escnn's Thomson grids (numerical optimization, cached
by escnn inside its package: minutes on 2 cores); later runs reuse them.

Rows carry the versions (escnn, torch, numpy, harness) and the load average. Writes
``results/third_party/escnn/errors.parquet`` (one row per layer, input and rotation),
``results/third_party/escnn/summary.csv`` (one row per layer) and
``results/third_party/figures/escnn_vs_harness.png``. Run from the repository root.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from escnn import group, gspaces
from escnn import nn as enn

import harness
from harness.runs.results import provenance
from harness.sphere.so3_transforms import so3_fft, so3_grid_angles, so3_ifft

OUT = Path("results/third_party/escnn")
FIG = Path("results/third_party/figures/escnn_vs_harness.png")
SO2 = (False, -1)  # escnn's id of SO(2) (rotations about z) in SO(3)
CHANNELS = 2  # channels of the measured fields
N_INPUTS, N_ROTATIONS = 8, 8
TIME_BATCH, TIME_CHANNELS, TIME_ROUNDS = 16, 4, 9


def versions() -> dict[str, object]:
    return {**provenance(), "escnn_version": version("escnn"), "numpy_version": np.__version__,
            "load_1min": os.getloadavg()[0]}


# --------------------------------------------------------------------------- escnn on plain tensors
class Wrapped(torch.nn.Module):
    """An escnn module on plain tensors ``[batch, in_type.size]``."""

    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.m(enn.GeometricTensor(t, self.m.in_type)).tensor


def kernel(G, irreps, quotient: bool) -> np.ndarray:
    from escnn.nn.modules.nonlinearities.fourier import _build_kernel
    from escnn.nn.modules.nonlinearities.fourier_quotient import _build_kernel as _build_quotient_kernel

    k = _build_quotient_kernel(G, SO2, irreps) if quotient else _build_kernel(G, irreps)
    return k / np.linalg.norm(k)  # FourierPointwise's normalize=True


# --------------------------------------------------------------------------- the bridge
class Bridge:
    """escnn feature vectors <-> harness grid samples of the same functions (see the docstring)."""

    def __init__(self, rho, k: np.ndarray, rotations: torch.Tensor, shape: tuple[int, ...]) -> None:
        G = rho.group
        E = np.stack([rho(G.element(r, "MAT")) @ k for r in rotations.numpy()])  # [M, d]
        self.E = torch.from_numpy(E.T.copy())  # [d, M]: basis function i at grid point m
        self.Einv = torch.linalg.pinv(self.E)  # [M, d]; exact on the span (d <= M, full rank)
        self.d, self.shape = rho.size, shape

    def to_grid(self, v: torch.Tensor) -> torch.Tensor:
        n = v.shape[0]
        return (v.reshape(n, -1, self.d) @ self.E).reshape(n, -1, *self.shape)

    def from_grid(self, g: torch.Tensor) -> torch.Tensor:
        n = g.shape[0]
        return (g.reshape(n, g.shape[1], -1) @ self.Einv).reshape(n, -1)


def so3_bridge(rho, k, b: int) -> Bridge:
    be, al, ga = so3_grid_angles(b)
    B, A, C = np.meshgrid(be, al, ga, indexing="ij")  # SOFT sample at Rz(alpha) Ry(beta) Rz(gamma)
    R = harness.euler_zyz_to_matrix(*(torch.from_numpy(a.ravel()) for a in (A, B, C)))
    return Bridge(rho, k, R, (2 * b, 2 * b, 2 * b))


def s2_bridge(rho, k, b: int) -> Bridge:
    g = harness.grid("dh", b)
    th, ph = np.meshgrid(g.theta, g.phi, indexing="ij")  # the coset of Rz(phi) Ry(theta): the point (theta, phi)
    R = harness.euler_zyz_to_matrix(torch.from_numpy(ph.ravel()), torch.from_numpy(th.ravel()), torch.zeros(th.size))
    return Bridge(rho, k, R, g.shape)


class HarnessOnEscnn(torch.nn.Module):
    """A harness grid layer as a map of escnn vectors: bridge -> layer -> exact projection onto
    degrees <= L -> bridge back."""

    def __init__(self, layer: torch.nn.Module, bridge: Bridge, so3: bool) -> None:
        super().__init__()
        self.layer, self.bridge, self.so3 = layer, bridge, so3

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        y = self.layer(self.bridge.to_grid(v))
        y = so3_ifft(so3_fft(y)) if self.so3 else harness.isft(harness.sft(y, "dh"), "dh")
        return self.bridge.from_grid(y)


class HarnessCoeffs(torch.nn.Module):
    """The harness layer on its own coefficients (timing): coefficients -> grid -> layer -> coefficients."""

    def __init__(self, layer: torch.nn.Module, so3: bool) -> None:
        super().__init__()
        self.layer, self.so3 = layer, so3

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        if self.so3:
            return so3_fft(self.layer(so3_ifft(c)))
        return harness.sft(self.layer(harness.isft(c, "dh")), "dh")


TIMING_JOBS: list[tuple] = []  # (fn, x) of every timed layer, timed together at the end


def time_jobs(rounds: int) -> list[float]:
    """ms per call of every job in TIMING_JOBS: ``rounds`` interleaved rounds (each job once per
    round, so that a change of the machine's load hits every job alike), each the mean over ~0.1 s
    of calls; the median over the rounds. 1 torch thread."""
    inner, times = [], [[] for _ in TIMING_JOBS]
    with torch.no_grad():
        for fn, x in TIMING_JOBS:
            fn(x)
            t0 = time.perf_counter()
            fn(x)
            inner.append(max(1, min(500, int(0.1 / max(time.perf_counter() - t0, 1e-6)))))
        for _ in range(rounds):
            for j, (fn, x) in enumerate(TIMING_JOBS):
                t0 = time.perf_counter()
                for _ in range(inner[j]):
                    fn(x)
                times[j].append((time.perf_counter() - t0) / inner[j] * 1e3)
    return [statistics.median(t) for t in times]


# --------------------------------------------------------------------------- the measurements
def measure(label: dict, model, rep, x, R, l2_bridge: Bridge | None, timing: tuple | None) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = harness.equivariance_error(model, x, R, input=rep, output=rep, paired=False)
    if l2_bridge is not None:  # the same error in the L2(S^2) norm: both outputs as dh grids, compared by the harness
        f = harness.S2Grid("dh", l2_bridge.shape[0] // 2)
        with torch.no_grad():
            y = model(x)
            ys = torch.cat([model(rep.rotate(x[i : i + 1], R[k : k + 1])) for i, k in zip(df["input"], df["rotation"])])
        ii, kk = torch.from_numpy(df["input"].to_numpy().copy()), torch.from_numpy(df["rotation"].to_numpy().copy())
        ref = f.rotate(l2_bridge.to_grid(y[ii]), R[kk])
        diff = f.coefficients(l2_bridge.to_grid(ys)) - f.coefficients(ref)
        df["rel_error_l2"] = (f.norm2(diff) / f.norm2(f.coefficients(ref))).sqrt().numpy()
    else:
        df["rel_error_l2"] = np.nan
    for key, value in label.items():
        df[key] = value
    df["timing_job"] = -1
    if timing is not None:
        df["timing_job"] = len(TIMING_JOBS)
        TIMING_JOBS.append(timing)
    print(f"{label['space']:5s} {label['library']:7s} {label['grid']:24s} N={label['n_points']:6d} "
          f"{label['function']:8s} median rel_error {df['rel_error'].median():.3g}", flush=True)
    return df


def part_so3(L: int, thomson: list[int], R: torch.Tensor) -> list[pd.DataFrame]:
    G = group.so3_group(L)
    gs = gspaces.no_base_space(G)
    b = L + 1
    irreps = G.bl_irreps(L)
    grids = ([("thomson", (), {"N": n}) for n in thomson]
             + [("hopf", (), {"N": n}) for n in (50, 150, 400, 1000, 2000)]
             + [("fibonacci", (), {"N": n}) for n in (60, 150, 400, 1000, 3000, 10000)]
             + [("rand", (), {"N": n, "seed": 0}) for n in (150, 1000, 10000)]
             + [(t, (), {}) for t in ("tetra", "cube", "ico")])
    rows = []
    bridge = None
    for kind, args, kw in grids:
        act = enn.FourierPointwise(gs, CHANNELS, irreps, kind, *args, **kw)
        rep = harness.Representation.from_escnn(act.in_type, name=f"escnn regular bl{L} x{CHANNELS}")
        if bridge is None:
            bridge = so3_bridge(act.rho, kernel(G, irreps, False), b)
            x = rep.random(N_INPUTS, seed=1)
        n = act.A.shape[0]
        desc = f"{kind}" + "".join(f" {k}={v}" for k, v in kw.items() if k != "seed")
        tact = enn.FourierPointwise(gs, TIME_CHANNELS, irreps, kind, *args, **kw)
        xt = enn.GeometricTensor(torch.randn(TIME_BATCH, tact.in_type.size), tact.in_type)
        label = {"space": "SO(3)", "library": "escnn", "layer": "FourierPointwise", "grid": desc, "grid_type": kind,
                 "n_points": n, "L": L, "oversampling": np.nan, "function": "relu"}
        rows.append(measure(label, Wrapped(act).eval(), rep, x, R, None, (lambda t, m=tact: m(t).tensor, xt)))
        if kind in ("ico", "fibonacci") and kw.get("N") in (None, 1000) or (kind == "thomson" and kw["N"] == thomson[-1]):
            act._function = lambda t: t
            rows.append(measure({**label, "function": "identity"}, Wrapped(act).eval(), rep, x, R, None, None))
    rep = harness.Representation.from_escnn(act.in_type, name=f"escnn regular bl{L} x{CHANNELS}")
    ct = so3_fft(harness.SO3Grid(b).random(TIME_BATCH, channels=TIME_CHANNELS, seed=2))
    for s in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
        layer = harness.SO3Pointwise("relu", oversampling=s)
        n = (2 * math.ceil(s * b - 1e-9)) ** 3
        label = {"space": "SO(3)", "library": "harness", "layer": "SO3Pointwise", "grid": f"SOFT s={s:g}",
                 "grid_type": "SOFT", "n_points": n, "L": L, "oversampling": s, "function": "relu"}
        rows.append(measure(label, HarnessOnEscnn(layer, bridge, True), rep, x, R, None, (HarnessCoeffs(layer, True), ct)))
    sq = harness.SO3Pointwise(torch.square, oversampling=1.5)
    label = {"space": "SO(3)", "library": "harness", "layer": "SO3Pointwise", "grid": "SOFT s=1.5",
             "grid_type": "SOFT", "n_points": (2 * math.ceil(1.5 * b - 1e-9)) ** 3, "L": L, "oversampling": 1.5,
             "function": "square"}
    rows.append(measure(label, HarnessOnEscnn(sq, bridge, True), rep, x, R, None, (HarnessCoeffs(sq, True), ct)))
    return rows


def part_s2(L: int, thomson: list[int], R: torch.Tensor) -> list[pd.DataFrame]:
    G = group.so3_group(L)
    gs = gspaces.no_base_space(G)
    b = L + 1
    irreps = G.bl_irreps(L)
    grids = ([("thomson", (n,)) for n in thomson]
             + [("fibonacci", (n,)) for n in (30, 60, 100, 200, 400, 800, 1600, 3200)]
             + [("healpix", (n,)) for n in (2, 4, 8, 16)]
             + [("longlat", (n, n // 2)) for n in (10, 20, 40, 80)]
             + [("rand", (n,)) for n in (100, 1000)]
             + [("ico", ())])
    rows = []
    bridge = None
    for kind, args in grids:
        np.random.seed(0)  # sphere_grid picks coset representatives (and 'rand' its points) with numpy's global generator
        pts = G.sphere_grid(kind, *args)
        act = enn.QuotientFourierPointwise(gs, SO2, CHANNELS, irreps, grid=pts)
        rep = harness.Representation.from_escnn(act.in_type, name=f"escnn quotient SO(3)/SO(2) bl{L} x{CHANNELS}")
        if bridge is None:
            bridge = s2_bridge(act.rho, kernel(G, irreps, True), b)
            x = rep.random(N_INPUTS, seed=3)
        desc = kind + " " + "x".join(str(a) for a in args)
        tact = enn.QuotientFourierPointwise(gs, SO2, TIME_CHANNELS, irreps, grid=pts)
        xt = enn.GeometricTensor(torch.randn(TIME_BATCH, tact.in_type.size), tact.in_type)
        label = {"space": "S2", "library": "escnn", "layer": "QuotientFourierPointwise", "grid": desc.strip(),
                 "grid_type": kind, "n_points": len(pts), "L": L, "oversampling": np.nan, "function": "relu"}
        rows.append(measure(label, Wrapped(act).eval(), rep, x, R, bridge, (lambda t, m=tact: m(t).tensor, xt)))
        if kind == "ico" or (kind == "fibonacci" and args[0] == 800) or (kind == "thomson" and args[0] == thomson[-1]):
            act._function = lambda t: t
            rows.append(measure({**label, "function": "identity"}, Wrapped(act).eval(), rep, x, R, bridge, None))
    rep = harness.Representation.from_escnn(act.in_type, name=f"escnn quotient SO(3)/SO(2) bl{L} x{CHANNELS}")
    ct = harness.sft(harness.S2Grid("dh", b).random(TIME_BATCH, channels=TIME_CHANNELS, seed=4), "dh")
    for s in (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0):
        layer = harness.Pointwise("relu", oversampling=s)
        n = (2 * math.ceil(s * b - 1e-9)) ** 2
        label = {"space": "S2", "library": "harness", "layer": "Pointwise", "grid": f"dh s={s:g}", "grid_type": "dh",
                 "n_points": n, "L": L, "oversampling": s, "function": "relu"}
        rows.append(measure(label, HarnessOnEscnn(layer, bridge, False), rep, x, R, bridge, (HarnessCoeffs(layer, False), ct)))
    sq = harness.Pointwise(torch.square, oversampling=1.5)
    label = {"space": "S2", "library": "harness", "layer": "Pointwise", "grid": "dh s=1.5", "grid_type": "dh",
             "n_points": (2 * math.ceil(1.5 * b - 1e-9)) ** 2, "L": L, "oversampling": 1.5, "function": "square"}
    rows.append(measure(label, HarnessOnEscnn(sq, bridge, False), rep, x, R, bridge, (HarnessCoeffs(sq, False), ct)))
    return rows


SUMMARY = ["space", "library", "layer", "function", "grid", "grid_type", "n_points", "L", "oversampling"]


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    agg = df.groupby(SUMMARY, dropna=False, sort=False).agg(
        rel_error_median=("rel_error", "median"), rel_error_mean=("rel_error", "mean"),
        rel_error_max=("rel_error", "max"), rel_error_l2_median=("rel_error_l2", "median"),
        ms_per_call=("ms_per_call", "first"), pairs=("rel_error", "size")).reset_index()
    keep = ["escnn_version", "torch_version", "numpy_version", "harness_version", "git_commit", "load_1min"]
    first = df.groupby(SUMMARY, dropna=False, sort=False)[keep].first().reset_index(drop=True)
    return pd.concat([agg, first], axis=1)


def figure(df: pd.DataFrame) -> None:
    """Error (ReLU lines with IQR bands; the exact-by-design controls as single markers) and time per
    call against the number of grid points, one column per space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    d = df.copy()
    d["series"] = d["library"] + " " + d["grid_type"]
    s = summarize(df)
    s["series"] = s["library"] + " " + s["grid_type"]
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(2, 2, figsize=(17, 9.5), sharex="col", gridspec_kw={"height_ratios": [2, 1]})
    titles = {"SO(3)": "SO(3) features: escnn FourierPointwise vs harness SO3Pointwise",
              "S2": "S² features: escnn QuotientFourierPointwise vs harness Pointwise"}
    for j, space in enumerate(["SO(3)", "S2"]):
        part = d[d["space"] == space]
        relu = part[part["function"] == "relu"]
        harness_series = sorted(relu.loc[relu["library"] == "harness", "series"].unique())
        escnn_series = sorted(relu.loc[relu["library"] == "escnn", "series"].unique())
        palette = {**{n: "black" for n in harness_series},
                   **dict(zip(escnn_series, sns.color_palette("tab10", len(escnn_series))))}
        markers = {n: ("s" if n in harness_series else "o") for n in palette}
        ax = axes[0, j]
        sns.lineplot(data=relu, x="n_points", y="rel_error", hue="series", hue_order=harness_series + escnn_series,
                     style="series", markers=markers, dashes=False, palette=palette, estimator="median",
                     errorbar=("pi", 50), ax=ax, markersize=6)
        ctrl = s[(s["space"] == space) & (s["function"] != "relu")].copy()
        ctrl["control"] = ctrl["series"] + ", " + ctrl["function"] + " (exact by design)"
        for _, c in ctrl.iterrows():  # one marker each, so that the legend shows its marker
            ax.scatter(c["n_points"], c["rel_error_median"], s=140, color=palette.get(c["series"], "grey"),
                       marker={"identity": "X", "square": "*"}[c["function"]], label=c["control"], zorder=5)
        ax.set(xscale="log", yscale="log", title=titles[space], xlabel="",
               ylabel="relative equivariance error, unitless\n‖f(ρ(R)x) − ρ(R)f(x)‖ / ‖f(x)‖ (median, IQR band)")
        handles, labels = ax.get_legend_handles_labels()
        handles, labels = zip(*[(h, lab) for h, lab in zip(handles, labels) if lab != "series"])
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  title=f"library, grid (ReLU unless said); degrees ≤ L = {int(part['L'].iloc[0])}", title_fontsize=7)
        st = s[(s["space"] == space) & (s["function"] == "relu")]
        sns.lineplot(data=st, x="n_points", y="ms_per_call", hue="series", hue_order=harness_series + escnn_series,
                     style="series", markers=markers, dashes=False, palette=palette, ax=axes[1, j], legend=False)
        axes[1, j].set(xscale="log", yscale="log", xlabel="grid points N (samples of each feature)",
                       ylabel=f"time per call (ms)\n{TIME_BATCH} inputs × {TIME_CHANNELS} channels, 1 thread")
    v = df.iloc[0]
    fig.suptitle(f"Exact-rotation equivariance error against grid size — escnn {v['escnn_version']}, torch "
                 f"{v['torch_version']}, numpy {v['numpy_version']}, harness {v['harness_version']} (float64)", fontsize=10)
    fig.tight_layout()
    FIG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIG, dpi=130)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--so3-L", type=int, default=2, help="band-limit of the SO(3) fields (degrees 0..L)")
    ap.add_argument("--s2-L", type=int, default=4, help="band-limit of the S^2 fields")
    ap.add_argument("--thomson-so3", type=int, nargs="*", default=[30, 60, 120],
                    help="Thomson grid sizes on SO(3) (the first run optimizes each: 18 s at 30, 46 s at 120, minutes at 200)")
    ap.add_argument("--thomson-s2", type=int, nargs="*", default=[40, 100, 200], help="Thomson grid sizes on S^2")
    ap.add_argument("--figure-only", action="store_true", help="redraw the figure from the stored rows")
    args = ap.parse_args()
    if args.figure_only:
        figure(pd.read_parquet(OUT / "errors.parquet"))
        return
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)  # escnn builds its buffers in the default dtype
    t0 = time.perf_counter()
    R = harness.random_rotations(N_ROTATIONS, seed=0)
    rows = part_so3(args.so3_L, args.thomson_so3, R) + part_s2(args.s2_L, args.thomson_s2, R)
    df = pd.concat(rows, ignore_index=True)
    load_before = os.getloadavg()[0]
    ms = time_jobs(TIME_ROUNDS)
    df["ms_per_call"] = [ms[j] if j >= 0 else np.nan for j in df.pop("timing_job")]
    print(f"timed {len(ms)} layers in {TIME_ROUNDS} interleaved rounds (load {load_before:.1f} -> {os.getloadavg()[0]:.1f})")
    for k, v in versions().items():
        if k != "load_1min":
            df[k] = v
    df["load_1min"] = os.getloadavg()[0]
    OUT.mkdir(parents=True, exist_ok=True)
    df.to_parquet(OUT / "errors.parquet", index=False)
    summary = summarize(df)
    summary.to_csv(OUT / "summary.csv", index=False, float_format="%.4g")
    figure(df)
    print(f"wrote {OUT}/errors.parquet, summary.csv and {FIG} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
