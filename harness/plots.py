"""Seaborn figures, made from stored results only (``python -m harness plot results/X``).

Each figure function takes the DataFrame of :func:`harness.runs.results.load_results` and returns a
matplotlib Figure; :func:`plot_results` writes them all as PNGs under ``<results>/figures``.
The "last layer" is the network's last grid layer (its equivariance, before any descriptor).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .runs.results import load_results


def _last_grid_layer(df: pd.DataFrame) -> pd.DataFrame:
    eq = df[df["error_kind"] == "equivariance"]
    last = eq.groupby("cell_id")["layer_index"].transform("max")
    return eq[eq["layer_index"] == last]


def _cumulative(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["mode"] == "cumulative"] if "cumulative" in set(df["mode"]) else df


def _facet(df: pd.DataFrame, *candidates: str) -> str | None:
    """The first of ``candidates`` that varies in ``df`` (to split panels by), else None."""
    return next((c for c in candidates if c in df and df[c].nunique() > 1), None)


def _plain_log_ticks(ax, values, axis: str = "x") -> None:
    """Log axis with one plain label per value (no overlapping 10^x minor labels)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(FixedLocator(sorted(set(values))))
    a.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
    a.set_minor_locator(NullLocator())
    a.set_minor_formatter(NullFormatter())


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """The 1-2-5 values inside [lo, hi] (at least the two nearest to its ends), for a log axis
    whose range is less than a few decades."""
    decades = range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
    nice = [m * 10.0**e for e in decades for m in (1, 2, 5)]
    inside = [t for t in nice if lo <= t <= hi]
    if len(inside) >= 2:
        return inside if len(inside) <= 6 else inside[:: -(-len(inside) // 5)]
    below = max((t for t in nice if t < lo), default=lo)
    above = min((t for t in nice if t > hi), default=hi)
    return sorted({below, *inside, above})


def _spectrum_label(decay: float) -> str:
    return "white inputs" if decay == 0 else f"inputs with power (1+l)^-{decay:g}"


def _slice_note(d: pd.DataFrame) -> str:
    """What one point summarizes: the inputs x rotations of a cell."""
    n, k = d["n_inputs"].iloc[0], d["n_rotations"].iloc[0]
    return f"median over {n} inputs x {k} rotations, bands: 10-90%"


def error_vs_bandwidth(df: pd.DataFrame) -> plt.Figure:
    d = _cumulative(_last_grid_layer(df))
    d = d[d["oversampling"] == d["oversampling"].min()]
    col = _facet(d, "decay", "kind", "depth")
    g = sns.relplot(data=d, x="bandwidth", y="rel_error", hue="activation", hue_order=sorted(d["activation"].unique()),
                    kind="line", marker="o", estimator="median", col=col, errorbar=("pi", 80), height=4, aspect=1.1)
    g.set(yscale="log", xscale="log")
    for ax in g.axes.flat:
        _plain_log_ticks(ax, d["bandwidth"].unique())
    if col == "decay":
        for ax, a in zip(g.axes.flat, sorted(d["decay"].unique())):
            ax.set_title(_spectrum_label(a))
    g.figure.suptitle(f"last grid layer (cumulative), oversampling s = {d['oversampling'].min():g}; "
                      + _slice_note(d), y=1.03)
    g.set_axis_labels("bandwidth b", "relative equivariance error")
    return g.figure


def error_vs_oversampling(df: pd.DataFrame) -> plt.Figure:
    d = _cumulative(_last_grid_layer(df))
    layer = d.sort_values("layer_index")["layer"].iloc[-1]
    row = _facet(d, "decay", "kind")
    g = sns.relplot(data=d, x="oversampling", y="rel_error", hue="activation",
                    hue_order=sorted(d["activation"].unique()), col="bandwidth", row=row, kind="line", marker="o",
                    estimator="median", errorbar=("pi", 80), height=3.2, aspect=1.0)
    g.set(yscale="log")
    g.set_titles(row_template="{row_var} = {row_name}", col_template="bandwidth b = {col_name}")
    if row == "decay":
        for (a, b), ax in g.axes_dict.items():
            ax.set_title(f"b = {b}, {_spectrum_label(a)}", fontsize=10)
    g.set_axis_labels("oversampling factor s", "relative equivariance error")
    g.figure.suptitle(f"error at the last grid layer ({layer}, cumulative mode: it carries every nonlinearity's"
                      f" aliasing); {_slice_note(d)}", y=1.02)
    return g.figure


def error_along_depth(df: pd.DataFrame) -> plt.Figure:
    d = df[(df["error_kind"] == "equivariance") & (df["oversampling"] == df["oversampling"].min())]
    d = d[(d["bandwidth"] == d["bandwidth"].max()) & (d["decay"] == d["decay"].min())]
    order = d.sort_values("layer_index")["layer"].unique()
    modes = sorted(d["mode"].unique())
    acts = sorted(d["activation"].unique())
    g = sns.catplot(data=d, x="layer", y="rel_error", hue="activation", hue_order=acts,
                    col="mode", col_order=modes, kind="point", order=order, estimator="median", errorbar=("pi", 80),
                    height=3.8, aspect=1.3, dodge=0.5 if len(acts) > 1 else False,  # (one hue: nothing to dodge)
                    linestyle="none", markersize=5)
    g.set(yscale="log")
    for ax, mode in zip(g.axes.flat, modes):
        ax.tick_params(axis="x", rotation=30)
        ax.set_ylim(bottom=1e-16)
        ax.set_title("cumulative: the network run on g.x" if mode == "cumulative" else
                     "isolated: each layer on the exact g of its own input", fontsize=10)
    g.set_axis_labels("layer", "relative equivariance error")
    g.figure.suptitle(f"bandwidth {d['bandwidth'].max()}, oversampling s = {d['oversampling'].min():g},"
                      f" {_spectrum_label(d['decay'].min())}; {_slice_note(d)}", y=1.03)
    return g.figure


def error_vs_aliasing(df: pd.DataFrame) -> plt.Figure:
    d = df[(df["layer_type"] == "Pointwise") & (df["mode"] == "isolated")] if "isolated" in set(df["mode"]) \
        else df[df["layer_type"] == "Pointwise"]
    d = d.groupby(["cell_id", "layer", "input", "activation", "oversampling"], as_index=False)[
        ["rel_error", "aliasing_error"]].mean()
    fig, ax = plt.subplots(figsize=(6, 4.8))
    sns.scatterplot(data=d, x="aliasing_error", y="rel_error", hue="activation", style="oversampling",
                    hue_order=sorted(d["activation"].unique()), ax=ax, s=18)
    lo = max(min(d["aliasing_error"].min(), d["rel_error"].min()), 1e-17)
    hi = max(d["aliasing_error"].max(), d["rel_error"].max())
    ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="y = x")
    ax.plot([lo, hi], [np.sqrt(2) * lo, np.sqrt(2) * hi], "k--", lw=1,
            label="y = sqrt(2) x: two independent\naliasing terms (docs/metrics.md)")
    ax.set(xscale="log", yscale="log", xlabel="aliasing error ||layer(y) - P_b sigma(y)|| / ||P_b sigma(y)||",
           ylabel="measured equivariance error (isolated layer)")
    ax.set_title("each nonlinearity alone; one point per (cell, layer, input),\nmean over rotations", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def error_vs_cost(df: pd.DataFrame) -> plt.Figure:
    d = _cumulative(_last_grid_layer(df))
    d = d[d["decay"] == d["decay"].min()]
    decay = d["decay"].min()
    d = d.groupby(["bandwidth", "activation", "oversampling"], as_index=False)[["rel_error", "forward_ms"]].median()
    g = sns.relplot(data=d, x="forward_ms", y="rel_error", hue="oversampling", style="activation",
                    style_order=sorted(d["activation"].unique()), col="bandwidth", height=3.5, aspect=1.0, s=60,
                    palette="viridis", facet_kws={"sharex": False})
    g.set(xscale="log", yscale="log")
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator

    for ax, b in zip(g.axes.flat, sorted(d["bandwidth"].unique())):
        lo, hi = d.loc[d["bandwidth"] == b, "forward_ms"].agg(["min", "max"])
        _plain_log_ticks(ax, _nice_ticks(lo, hi))
        ax.yaxis.set_major_locator(LogLocator(base=10, numticks=12))  # every decade labelled
        ax.yaxis.set_major_formatter(LogFormatterSciNotation())
        ax.set_title(f"bandwidth b = {b}")
    ymin, ymax = d["rel_error"].min(), d["rel_error"].max()  # the y range ends at labelled decades
    g.set(ylim=(10.0 ** np.floor(np.log10(ymin)), 10.0 ** np.ceil(np.log10(ymax))))
    g.set_axis_labels("forward time per input (ms, 1 thread)", "median relative equivariance error")
    g.figure.suptitle(f"last grid layer (cumulative), {_spectrum_label(decay)}: error against the forward"
                      " pass's time; medians per (bandwidth, activation, s)", y=1.04)
    return g.figure


def accuracy_vs_oversampling(df: pd.DataFrame) -> plt.Figure:
    """Each seed's accuracy as a dot, the mean over seeds as a bar-less line; the axis spans
    0.8-1 (not zoomed to the spread, which would make differences within seed noise look real)."""
    settings = [s for s in ("NR/NR", "NR/R", "R/R") if s in set(df["setting"])]
    col = _facet(df, "activation", "dataset")
    keys = [None] if col is None else sorted(df[col].unique())
    svals = sorted(df["oversampling"].unique())
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8), squeeze=False, sharey=True)
    width = 0.8 / len(settings)
    for ax, key in zip(axes[0], keys):
        sub = df if key is None else df[df[col] == key]
        for j, setting in enumerate(settings):
            color = f"C{j}"
            for i, sv in enumerate(svals):
                acc = sub[(sub["setting"] == setting) & (sub["oversampling"] == sv)]["accuracy"]
                x = i - 0.4 + width * (j + 0.5)
                ax.scatter(np.full(len(acc), x), acc, s=22, color=color, edgecolor="black", linewidth=0.4, zorder=3)
                ax.hlines(acc.mean(), x - width / 2.5, x + width / 2.5, color=color, lw=2.5,
                          label=setting if i == 0 else None)
        ax.set(xticks=range(len(svals)), xticklabels=[f"{v:g}" for v in svals], ylim=(0.8, 1.0),
               xlabel="oversampling factor s of the nonlinearities", ylabel="test accuracy",
               title="" if key is None else f"{col} = {key}")
    axes[0, -1].legend(title="setting (line: mean)", fontsize=8)
    fig.suptitle(f"{df['dataset'].iloc[0]}, {df['n_train'].iloc[0]} train / {df['n_test'].iloc[0]} test,"
                 f" {df['epochs'].iloc[0]} epochs: dots = each of {df['seed'].nunique()} seed(s), line = mean",
                 fontsize=10)
    fig.tight_layout()
    return fig


def training_cost(df: pd.DataFrame, step_times: pd.DataFrame | None = None) -> plt.Figure:
    """Left: time per training step, from the quiet benchmark (``step_time.csv``, one process per
    configuration) when the results directory has it, else the runs' own wall time (noted).
    Right: the learned descriptor's invariance error."""
    d = df.drop_duplicates(["cell_id", "checkpoint"])
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
    if step_times is not None:
        sns.barplot(data=step_times, x="oversampling", y="step_ms", ax=axes[0], errorbar=None, color="C0")
        axes[0].set(ylabel="time per training step (ms)", xlabel="oversampling factor s",
                    title=f"quiet benchmark (benchmarks/train_step.py): batch {step_times['batch'].iloc[0]},"
                          f" {step_times['threads'].iloc[0]} threads, median")
    else:
        sns.barplot(data=d, x="oversampling", y="train_time_s", ax=axes[0], errorbar=None, color="C0")
        axes[0].set(ylabel="training time (s)", xlabel="oversampling factor s",
                    title="wall time during the runs (other jobs may have shared the cores)")
    axes[0].title.set_fontsize(9)
    sns.pointplot(data=d, x="oversampling", y="descriptor_invariance_error", ax=axes[1], estimator="median",
                  errorbar=("pi", 100), color="C1", linestyle="none")
    axes[1].set(yscale="log", ylabel="descriptor invariance error", xlabel="oversampling factor s",
                title="median (bars: range) over seeds and NR/R-trained models")
    axes[1].title.set_fontsize(9)
    fig.tight_layout()
    return fig


def lie_vs_error(df: pd.DataFrame) -> plt.Figure | None:
    """The Lie derivative (a rate per radian) against the error under Haar-random rotations, per
    cell and nonlinearity layer (isolated): medians over inputs (and rotations). None when the
    sweep did not measure it (``[run] lie_derivative``)."""
    if "lie_derivative" not in df:
        return None
    d = df[(df["layer_type"] == "Pointwise") & (df["mode"] == "isolated") & df["lie_derivative"].notna()]
    d = d.groupby(["cell_id", "layer", "bandwidth", "activation", "oversampling"], as_index=False)[
        ["rel_error", "lie_derivative"]].median()
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    bands = sorted(d["bandwidth"].unique())
    colours = dict(zip(bands, sns.color_palette("colorblind", len(bands))))  # distinct, none faint
    d = d.assign(b=d["bandwidth"].map(lambda v: f"b = {v}"))
    sns.scatterplot(data=d, x="lie_derivative", y="rel_error", hue="b", hue_order=[f"b = {v}" for v in bands],
                    palette=[colours[v] for v in bands], style="activation",
                    style_order=sorted(d["activation"].unique()), ax=ax, s=40)
    lo, hi = d["lie_derivative"].min(), d["lie_derivative"].max()
    for b in bands:  # error ~ lie_derivative x (grid step pi / 2b)
        ax.plot([lo, hi], [lo * np.pi / (2 * b), hi * np.pi / (2 * b)], ":", lw=1.0, color=colours[b])
    ax.set(xscale="log", yscale="log", xlabel="Lie derivative ||L_X f|| / ||f|| (per radian, RMS over x, y, z)",
           ylabel="error under Haar-random rotations")
    ax.set_title("nonlinearity layers (isolated), medians per cell;\ndotted: error = Lie derivative x pi/(2b),"
                 " one grid step", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()  # one column outside the axes: bandwidths, then activations
    labels = ["bandwidth" if lab == "b" else lab for lab in labels]
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return fig


def cohen_delta_vs_depth(df: pd.DataFrame) -> plt.Figure:
    """Cohen et al. (2018)'s Figure 3 layout: Delta (their metric, mean over the (input, rotation)
    pairs) after each correlation of the stack, per bandwidth, with and without ReLU, one panel
    per dtype; Haar rotations solid, the grid-aligned z rotations (the instrument's baseline) dashed."""
    d = df[df["layer_type"].isin(["S2ToSO3Conv", "SO3Conv"])].copy()
    d["correlations"] = d.groupby("cell_id")["layer_index"].rank(method="dense").astype(int)
    g = (d.groupby(["dtype", "rotations", "activation", "bandwidth", "correlations"], as_index=False)
         .agg(delta=("cohen_delta", "mean"), pairs=("cohen_delta", "size")))
    g["stack"] = g["activation"].map({"identity": "linear", "relu": "ReLU after each"}).fillna(g["activation"])
    g["rotation set"] = g["rotations"].map({"haar": "Haar", "grid_z": "grid-aligned z"})
    g["b"] = g["bandwidth"].map(lambda v: f"b = {v}")
    dtypes = sorted(g["dtype"].unique())
    fig, axes = plt.subplots(1, len(dtypes), figsize=(4.6 * len(dtypes) + 1.6, 4.2), sharey=True, squeeze=False)
    sizes = {"linear": 1.2, "ReLU after each": 2.8}
    for ax, dt in zip(axes[0], dtypes):
        gd = g[g["dtype"] == dt]
        # the grid-aligned baseline first, dashed and faint, so the Haar curves on top stay visible
        sns.lineplot(data=gd[gd["rotation set"] == "grid-aligned z"], x="correlations", y="delta", hue="b",
                     size="stack", sizes=sizes, palette="viridis", linestyle="--", marker="X", alpha=0.45, ax=ax,
                     legend=False)
        sns.lineplot(data=gd[gd["rotation set"] == "Haar"], x="correlations", y="delta", hue="b", size="stack",
                     sizes=sizes, palette="viridis", marker="o", ax=ax, legend=ax is axes[0][-1])
        ax.set_yscale("log")
        ax.set_xticks(sorted(g["correlations"].unique()))
        # name the two stacks on the curves too (line width alone is easy to miss)
        haar = gd[gd["rotation set"] == "Haar"]
        last_c = haar["correlations"].max()
        for stack, va, dy in (("ReLU after each", "top", 0.3), ("linear", "bottom", 2.5)):
            ys = haar[(haar["stack"] == stack) & (haar["correlations"] == last_c)]["delta"]
            if len(ys):
                ax.annotate(stack if stack != "linear" else "linear stack", (last_c, float(ys.max()) * dy),
                            ha="right", va=va, fontsize=9, color="0.25")
        ax.set_title(dt)
        ax.set_xlabel("correlations so far")
        ax.set_ylabel("Δ = mean std(R·Φ(f) − Φ(R·f)) / std(Φ(f))")
    from matplotlib.lines import Line2D

    last = axes[0][-1]
    handles, labels = last.get_legend_handles_labels()
    handles += [Line2D([], [], color="grey", marker="o"), Line2D([], [], color="grey", ls="--", marker="X", alpha=0.45)]
    labels += ["Haar rotations", "grid-aligned z (baseline)"]
    last.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=9)
    n = int(g["pairs"].min())
    fig.suptitle(f"Cohen et al. 2018 §5.1: Δ after each correlation (S² → SO(3), then SO(3) → SO(3)),\n"
                 f"K = {int(df['channels'].iloc[0])} channels; mean over {n} (input, rotation) pairs")
    fig.tight_layout()
    return fig


def pareto(points: pd.DataFrame, minimize: list[str], maximize: list[str]) -> pd.Series:
    """Boolean per row: no other row is at least as good in every objective and better in one."""
    v = np.concatenate([points[minimize].to_numpy(float), -points[maximize].to_numpy(float)], axis=1)
    better_eq = (v[None, :, :] <= v[:, None, :]).all(-1)  # [i, j]: j at least as good as i everywhere
    strictly = (v[None, :, :] < v[:, None, :]).any(-1)
    dominated = (better_eq & strictly).any(1)
    return pd.Series(~dominated, index=points.index)


#: The frontier's goal (issue 13), against the sampled ReLU at s = 1.
GOAL_ERROR, GOAL_TIME_RATIO, GOAL_ACCURACY_DROP = 1e-6, 2.0, 0.005


def frontier_table(errors: pd.DataFrame, accuracy: pd.DataFrame, step_times: pd.DataFrame,
                   bandwidth: int = 32, reference: str = "relu_s1") -> pd.DataFrame:
    """One row per nonlinearity: median isolated error and Lie derivative at ``bandwidth``
    (results/frontier), time per training step (benchmarks/train_step.py), accuracy per setting
    (mean and 95% t-interval half-width over seeds; NaN from one seed), whether it is on the
    Pareto set (error and step time down, NR/R accuracy up), its time and NR/NR accuracy relative
    to ``reference`` (with Welch's 95% interval half-width of the NR/NR difference of means), and
    whether it meets the frontier's goal (issue 13): error <= GOAL_ERROR, time <= GOAL_TIME_RATIO x
    the reference's, NR/NR mean within GOAL_ACCURACY_DROP of the reference's mean."""
    from scipy.stats import t as student

    e = errors[errors["bandwidth"] == bandwidth].groupby("nonlinearity").agg(
        error=("rel_error", "median"), lie_derivative=("lie_derivative", "median"))
    a = accuracy.groupby(["nonlinearity", "setting"])["accuracy"].agg(["mean", "std", "count"])
    a["ci95"] = a["std"] * student.ppf(0.975, (a["count"] - 1).clip(lower=1)) / np.sqrt(a["count"])
    a = a[["mean", "ci95", "count"]].unstack("setting")
    a.columns = [f"{s} {k}" if k != "mean" else s for k, s in a.columns]
    st = step_times.set_index("nonlinearity")["step_ms"].rename("step_ms")
    out = e.join(st, how="inner").join(a, how="left")  # a nonlinearity not trained: no accuracy
    trained = out["NR/R"].notna()
    out["pareto"] = False
    out.loc[trained, "pareto"] = pareto(out[trained], ["error", "step_ms"], ["NR/R"])
    if reference in out.index:
        ref = out.loc[reference]
        out["time_ratio"] = out["step_ms"] / ref["step_ms"]
        out["NR/NR vs reference"] = out["NR/NR"] - ref["NR/NR"]
        # Welch's 95% interval half-width of that difference of means (NaN where a side has one seed)
        nr = accuracy[accuracy["setting"] == "NR/NR"].groupby("nonlinearity")["accuracy"].agg(["var", "count"])
        v = nr["var"] / nr["count"]
        if reference in v.index:
            se2 = v + v[reference]
            dof = se2 ** 2 / (v ** 2 / (nr["count"] - 1) + v[reference] ** 2 / (nr.loc[reference, "count"] - 1))
            half = np.sqrt(se2) * student.ppf(0.975, dof.where(dof > 0))
            out["NR/NR vs reference ci95"] = half.where(half.index != reference).reindex(out.index)
        out["meets_goal"] = ((out["error"] <= GOAL_ERROR) & (out["time_ratio"] <= GOAL_TIME_RATIO)
                             & (out["NR/NR vs reference"] >= -GOAL_ACCURACY_DROP))
    return out.sort_values("step_ms")


def _label_offsets(x: pd.Series, y: pd.Series, log_x: bool) -> dict:
    """Annotation offsets: a label goes below its point when a point just above would collide."""
    span = float(y.max() - y.min()) or 1.0
    xs = np.log10(x.astype(float)) if log_x else x.astype(float)
    out = {}
    for k in x.index:
        close = (abs(xs - xs[k]) < 1.0) & (y > y[k]) & (y - y[k] < 0.06 * span)
        out[k] = (7, -12) if close.any() else (7, 4)
    return out


def frontier(table: pd.DataFrame, reference: str = "relu_s1", data: str = "") -> plt.Figure:
    """Error (x, log) vs time per step (y), colour = NR/R accuracy; right: NR/NR and NR/R
    accuracy (mean, 95% CI over seeds) vs time per step. Pareto set ringed. ``data`` names what
    the accuracies were trained and tested on (the title says it)."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    t, u = table[table["NR/R"].notna()], table[table["NR/R"].isna()]
    sc = ax.scatter(t["error"], t["step_ms"], c=t["NR/R"], cmap="viridis", s=90, zorder=3)
    if len(u):
        ax.scatter(u["error"], u["step_ms"], s=90, facecolors="none", edgecolors="grey", zorder=3,
                   label="not trained")
    p = table[table["pareto"]]
    ax.scatter(p["error"], p["step_ms"], s=260, facecolors="none", edgecolors="crimson", linewidths=1.6, zorder=4,
               label="Pareto set (error, time, NR/R)")
    offsets = _label_offsets(table["error"], table["step_ms"], log_x=True)
    for name, r in table.iterrows():
        ax.annotate(name, (r["error"], r["step_ms"]), textcoords="offset points", xytext=offsets[name], fontsize=9)
    ax.set_xscale("log")
    ax.margins(x=0.15)
    goal = "time_ratio" in table and reference in table.index
    if goal:  # the goal: error <= 1e-6 at <= 2x the reference's step time (and its accuracy, right)
        ref_ms = float(table.loc[reference, "step_ms"])
        xlim = ax.get_xlim()
        ax.fill_between([xlim[0], GOAL_ERROR], 0, GOAL_TIME_RATIO * ref_ms, color="tab:green", alpha=0.12,
                        zorder=0, label=f"goal: error ≤ {GOAL_ERROR:g}, ≤ {GOAL_TIME_RATIO:g}× {reference}'s time")
        ax.set_xlim(xlim)
        ax.set_ylim(bottom=0)
    ax.set_xlabel("isolated equivariance error (relative L², float64, median; b = 32)")
    ax.set_ylabel("training step time (ms)\nesteves_mnist, b = 30, batch 32")
    fig.colorbar(sc, ax=ax, label="NR/R accuracy (mean over seeds)")
    ax.legend(loc="best", fontsize=8)  # where no point is hidden
    dodge = 0.01 * float(t["step_ms"].max()) if len(t) else 0.0  # side by side, both visible
    for setting, marker, dx in (("NR/NR", "o", -dodge), ("NR/R", "s", dodge)):
        ax2.errorbar(t["step_ms"] + dx, t[setting], yerr=t.get(f"{setting} ci95"), fmt=marker, capsize=3,
                     label=setting)
    offsets = _label_offsets(t["step_ms"], t["NR/NR"], log_x=False)
    for name, r in t.iterrows():
        ax2.annotate(name, (r["step_ms"], r["NR/NR"]), textcoords="offset points", xytext=offsets[name], fontsize=8)
    if goal and reference in t.index:
        acc = float(t.loc[reference, "NR/NR"]) - GOAL_ACCURACY_DROP
        ax2.fill_between([0, GOAL_TIME_RATIO * ref_ms], acc, max(float(t[["NR/NR", "NR/R"]].max().max()), acc) + 0.01,
                         color="tab:green", alpha=0.12, zorder=0,
                         label=f"goal: NR/NR ≥ {reference}'s − {100 * GOAL_ACCURACY_DROP:g} pt, time ≤ {GOAL_TIME_RATIO:g}×")
        ax2.set_xlim(left=0)
    ax2.set_xlabel("training step time (ms; NR/NR and NR/R drawn side by side)")
    ax2.set_ylabel("test accuracy (mean, 95% CI over seeds)")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)  # below: hides nothing
    lo, hi = (int(t["NR/NR count"].min()), int(t["NR/NR count"].max())) if "NR/NR count" in t and len(t) else (0, 0)
    seeds = f"{lo} seeds per point" if lo == hi else f"{lo}-{hi} seeds per point; CI where more than one"
    on = f"\naccuracy trained and tested on {data}" if data else ""
    fig.suptitle(f"The nonlinearity frontier: equivariance, cost and accuracy ({seeds}){on}")
    fig.tight_layout()
    return fig


ACCURACY_FIGURES = {"accuracy_vs_oversampling": accuracy_vs_oversampling, "training_cost": training_cost}
#: Sweeps with a ``rotations`` axis (Cohen et al.'s protocol, experiments/cohen2018.toml).
COHEN_FIGURES = {"cohen_delta_vs_depth": cohen_delta_vs_depth}

FIGURES = {
    "error_vs_bandwidth": error_vs_bandwidth,
    "error_vs_oversampling": error_vs_oversampling,
    "error_along_depth": error_along_depth,
    "error_vs_aliasing": error_vs_aliasing,
    "error_vs_cost": error_vs_cost,
    "lie_vs_error": lie_vs_error,
}


def varying_axes(df: pd.DataFrame, root: str | os.PathLike | None = None) -> list[str]:
    """The axes of a results directory that take more than one value: the config's ``axes`` (from
    ``config.json`` when ``root`` is given), else the known axis columns present."""
    names: list[str] = []
    cfg = Path(root) / "config.json" if root is not None else None
    if cfg is not None and cfg.is_file():
        names = list(json.loads(cfg.read_text()).get("config", {}).get("axes", {}))
    if not names:
        names = [c for c in ("bandwidth", "activation", "oversampling", "nonlinearity", "kind", "decay", "depth",
                             "channels", "dtype", "seed", "rotations") if c in df]
    return [c for c in names if c in df and df[c].nunique() > 1]


def error_per_layer(df: pd.DataFrame, axes: list[str]) -> plt.Figure:
    """Any sweep (a factory's own axes included): median relative equivariance error (80% interval
    over inputs and rotations) per layer position, one line per value of the varying axis with
    the most values, a panel per value of the next one (else per mode); further axes at one value,
    named in the title; log y."""
    d = df[df["error_kind"] == "equivariance"] if "error_kind" in df else df
    ranked = sorted(axes, key=lambda c: -d[c].nunique())
    hue = ranked[0] if ranked else None
    col = ranked[1] if len(ranked) > 1 else "mode"
    rest = ranked[2:]
    if rest and len(d):
        d = d[d[rest].eq(d[rest].iloc[0]).all(axis=1)]
    if col != "mode" and d["mode"].nunique() > 1:
        d = d[d["mode"] == "cumulative"] if "cumulative" in set(d["mode"]) else d[d["mode"] == d["mode"].iloc[0]]
    g = sns.catplot(data=d, x="layer_index", y="rel_error", hue=hue, col=col, kind="point", estimator="median",
                    errorbar=("pi", 80), height=3.6, aspect=1.1, linestyle="none", markersize=5,
                    dodge=0.4 if hue and d[hue].nunique() > 1 else False)
    g.set(yscale="log")
    g.set_axis_labels("layer (position in the model)", "relative equivariance error")
    fixed = ", ".join(f"{c} = {d[c].iloc[0]}" for c in rest) if rest and len(d) else ""
    modes = "" if col == "mode" else f"{d['mode'].iloc[0]} mode; " if len(d) else ""
    g.figure.suptitle(f"Equivariance error per layer: median and 80% interval over inputs and rotations; {modes}"
                      f"{fixed}".rstrip("; "), y=1.04)
    return g.figure


def _training_data(df: pd.DataFrame) -> str:
    """'fashion-mnist, 60000 / 10000 train / test images, 3 epochs' from a training run's rows
    (the values a column takes, joined with '/', where it has several)."""
    def vals(c: str) -> str:
        return "/".join(str(v) for v in sorted(df[c].unique())) if c in df else "?"
    return f"{vals('dataset')}, {vals('n_train')} / {vals('n_test')} train / test images, {vals('epochs')} epochs"


def plot_results(path: str | os.PathLike) -> list[Path]:
    """Regenerate every figure of a results directory from its Parquet files; returns the PNGs."""
    root = Path(path)
    df = load_results(root)
    out = root / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    sns.set_theme(style="whitegrid", context="notebook")
    steps = root / "step_time.csv"
    if "accuracy" in df.columns and "nonlinearity" in df.columns:
        # the frontier: this training run, its step times, and the isolated errors of the sweep
        # results/frontier beside it (experiments/frontier.toml)
        errors = root.parent / "frontier"
        if not (steps.is_file() and errors.is_dir()):
            raise FileNotFoundError(f"the frontier figure needs {steps} (benchmarks/train_step.py --nonlinearity ...)"
                                    f" and the sweep {errors} (experiments/frontier.toml)")
        table = frontier_table(load_results(errors), df, pd.read_csv(steps))
        table.to_csv(root / "frontier.csv")
        fig = frontier(table, data=_training_data(df))
        p = out / "frontier.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return [p]
    if "accuracy" in df.columns:
        figures = ACCURACY_FIGURES
    elif "rotations" in df.columns:
        figures = COHEN_FIGURES
    elif {"activation", "oversampling"} <= set(df.columns):
        figures = FIGURES
    else:  # a sweep of the user's own model (a factory's axes): the generic figure
        axes = varying_axes(df, root)
        figures = {"error_per_layer": lambda d: error_per_layer(d, axes)}
    for name, fn in figures.items():
        fig = fn(df, pd.read_csv(steps)) if name == "training_cost" and steps.is_file() else fn(df)
        if fig is None:
            continue
        p = out / f"{name}.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(p)
    return written


def generic_summary(df: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Any sweep: median and max relative error per (varying axis..., mode, layer). A ``seed``
    axis is a replicate, not a factor: its values are pooled with the inputs and rotations."""
    d = df[df["error_kind"] == "equivariance"] if "error_kind" in df else df
    keys = [*(a for a in axes if a != "seed"), "mode", "layer_index", "layer"]
    out = d.groupby(keys, sort=True)["rel_error"].agg(["median", "max"]).reset_index("layer_index", drop=True)
    return out


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Median relative error at the last grid layer (cumulative): rows (any other varying axis,)
    activation, oversampling; columns bandwidth."""
    d = _cumulative(_last_grid_layer(df))
    extra = [c for c in ("kind", "decay", "depth", "channels", "dtype") if c in d and d[c].nunique() > 1]
    if "decay" in extra:  # the input spectrum by name (power per coefficient), in the order of decay
        names = {v: "white" if v == 0 else f"(1+l)^-{v:g}" for v in sorted(d["decay"].unique())}
        d = d.assign(spectrum=pd.Categorical(d["decay"].map(names), categories=list(names.values()), ordered=True))
        extra[extra.index("decay")] = "spectrum"
    return d.pivot_table(index=[*extra, "activation", "oversampling"], columns="bandwidth", values="rel_error",
                         aggfunc="median")
