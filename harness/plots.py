"""Seaborn figures, made from stored results only (``python -m harness plot results/X``).

Each figure function takes the DataFrame of :func:`harness.results.load_results` and returns a
matplotlib Figure; :func:`plot_results` writes them all as PNGs under ``<results>/figures``.
The "last layer" is the network's last grid layer (its equivariance, before any descriptor).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .results import load_results


def _last_grid_layer(df: pd.DataFrame) -> pd.DataFrame:
    eq = df[df["error_kind"] == "equivariance"]
    last = eq.groupby("cell_id")["layer_index"].transform("max")
    return eq[eq["layer_index"] == last]


def _cumulative(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["mode"] == "cumulative"] if "cumulative" in set(df["mode"]) else df


def _facet(df: pd.DataFrame, *candidates: str) -> str | None:
    """The first of ``candidates`` that varies in ``df`` (to split panels by), else None."""
    return next((c for c in candidates if c in df and df[c].nunique() > 1), None)


def _bandwidth_ticks(g, values) -> None:
    for ax in g.axes.flat:
        ax.set_xticks(sorted(values))
        ax.set_xticklabels([str(v) for v in sorted(values)])
        ax.minorticks_off()


def error_vs_bandwidth(df: pd.DataFrame) -> plt.Figure:
    d = _cumulative(_last_grid_layer(df))
    d = d[d["oversampling"] == d["oversampling"].min()]
    g = sns.relplot(data=d, x="bandwidth", y="rel_error", hue="activation", hue_order=sorted(d["activation"].unique()), kind="line", marker="o",
                    col=_facet(d, "alpha", "kind", "depth"), errorbar=("pi", 80), height=4, aspect=1.1)
    g.set(yscale="log", xscale="log")
    _bandwidth_ticks(g, d["bandwidth"].unique())
    g.figure.suptitle(f"last grid layer, oversampling {d['oversampling'].min():g}; bands: 10-90% over"
                      " inputs x rotations", y=1.03)
    g.set_axis_labels("bandwidth b", "relative equivariance error")
    return g.figure


def error_vs_oversampling(df: pd.DataFrame) -> plt.Figure:
    d = _cumulative(_last_grid_layer(df))
    g = sns.relplot(data=d, x="oversampling", y="rel_error", hue="activation",
                    hue_order=sorted(d["activation"].unique()), col="bandwidth",
                    row=_facet(d, "alpha", "kind"), kind="line", marker="o", errorbar=("pi", 80),
                    height=3.2, aspect=1.0)
    g.set(yscale="log")
    g.set_axis_labels("oversampling factor s", "relative equivariance error")
    return g.figure


def error_along_depth(df: pd.DataFrame) -> plt.Figure:
    d = df[(df["error_kind"] == "equivariance") & (df["oversampling"] == df["oversampling"].min())]
    d = d[(d["bandwidth"] == d["bandwidth"].max()) & (d["alpha"] == d["alpha"].min())]
    order = d.sort_values("layer_index")["layer"].unique()
    g = sns.catplot(data=d, x="layer", y="rel_error", hue="activation", hue_order=sorted(d["activation"].unique()),
                    col="mode", kind="point",
                    order=order, errorbar=("pi", 80), height=3.8, aspect=1.2, dodge=0.3)
    g.set(yscale="log")
    for ax in g.axes.flat:
        ax.tick_params(axis="x", rotation=30)
        ax.set_ylim(bottom=1e-16)
    g.figure.suptitle(f"bandwidth {d['bandwidth'].max()}, oversampling {d['oversampling'].min():g},"
                      f" input spectrum alpha = {d['alpha'].min():g}", y=1.02)
    return g.figure


def error_vs_aliasing(df: pd.DataFrame) -> plt.Figure:
    d = df[(df["layer_type"] == "Pointwise") & (df["mode"] == "isolated")] if "isolated" in set(df["mode"]) \
        else df[df["layer_type"] == "Pointwise"]
    d = d.groupby(["cell_id", "layer", "input", "activation", "oversampling"], as_index=False)[
        ["rel_error", "aliasing_error"]].mean()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sns.scatterplot(data=d, x="aliasing_error", y="rel_error", hue="activation", style="oversampling",
                    hue_order=sorted(d["activation"].unique()), ax=ax)
    lo = max(min(d["aliasing_error"].min(), d["rel_error"].min()), 1e-17)
    hi = max(d["aliasing_error"].max(), d["rel_error"].max())
    ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="y = x")
    ax.set(xscale="log", yscale="log", xlabel="aliasing error ||layer(y) - P_b sigma(y)|| / ||P_b sigma(y)||",
           ylabel="measured equivariance error (isolated layer)")
    ax.legend(fontsize=7)
    return fig


def error_vs_cost(df: pd.DataFrame) -> plt.Figure:
    d = _cumulative(_last_grid_layer(df))
    d = d[d["alpha"] == d["alpha"].min()]
    d = d.groupby(["bandwidth", "activation", "oversampling"], as_index=False)[["rel_error", "forward_ms"]].median()
    g = sns.relplot(data=d, x="forward_ms", y="rel_error", hue="oversampling", style="activation",
                    style_order=sorted(d["activation"].unique()),
                    col="bandwidth", height=3.5, aspect=1.0, s=60, palette="viridis",
                    facet_kws={"sharex": False})
    g.set(xscale="log", yscale="log")
    g.set_axis_labels("forward time per input (ms)", "median relative equivariance error")
    return g.figure


def accuracy_vs_oversampling(df: pd.DataFrame) -> plt.Figure:
    g = sns.catplot(data=df, x="oversampling", y="accuracy", hue="setting", kind="point",
                    hue_order=[s for s in ("NR/NR", "NR/R", "R/R") if s in set(df["setting"])],
                    col=_facet(df, "activation", "dataset"), errorbar=("pi", 100), dodge=0.2,
                    height=3.8, aspect=1.1)
    g.set_axis_labels("oversampling factor s of the nonlinearities", "test accuracy")
    g.figure.suptitle(f"{df['dataset'].iloc[0]}, {df['n_train'].iloc[0]} train / {df['n_test'].iloc[0]} test,"
                      f" {df['epochs'].iloc[0]} epochs (range over seeds)", y=1.03)
    return g.figure


def training_cost(df: pd.DataFrame) -> plt.Figure:
    d = df.drop_duplicates(["cell_id", "checkpoint"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    sns.barplot(data=d, x="oversampling", y="train_time_s", ax=axes[0], errorbar=None, color="C0")
    axes[0].set(ylabel="training time (s)", xlabel="oversampling factor s")
    sns.barplot(data=d, x="oversampling", y="descriptor_invariance_error", ax=axes[1], errorbar=None, color="C1")
    axes[1].set(yscale="log", ylabel="descriptor invariance error", xlabel="oversampling factor s")
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
    fig, ax = plt.subplots(figsize=(6, 4.6))
    sns.scatterplot(data=d, x="lie_derivative", y="rel_error", hue="bandwidth", style="activation",
                    style_order=sorted(d["activation"].unique()), palette="viridis", ax=ax, s=40)
    lo, hi = d["lie_derivative"].min(), d["lie_derivative"].max()
    for b in sorted(d["bandwidth"].unique()):  # error ~ lie_derivative x (grid step pi / 2b)
        ax.plot([lo, hi], [lo * np.pi / (2 * b), hi * np.pi / (2 * b)], ":", lw=0.8,
                color=plt.cm.viridis((b - d["bandwidth"].min()) / max(1, np.ptp(d["bandwidth"]))))
    ax.set(xscale="log", yscale="log", xlabel="Lie derivative ||L_X f|| / ||f|| (per radian, RMS over x, y, z)",
           ylabel="error under Haar-random rotations")
    ax.set_title("nonlinearity layers (isolated), medians per cell;\ndotted: error = Lie derivative x pi/(2b),"
                 " one grid step", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return fig


ACCURACY_FIGURES = {"accuracy_vs_oversampling": accuracy_vs_oversampling, "training_cost": training_cost}

FIGURES = {
    "error_vs_bandwidth": error_vs_bandwidth,
    "error_vs_oversampling": error_vs_oversampling,
    "error_along_depth": error_along_depth,
    "error_vs_aliasing": error_vs_aliasing,
    "error_vs_cost": error_vs_cost,
    "lie_vs_error": lie_vs_error,
}


def plot_results(path: str | os.PathLike) -> list[Path]:
    """Regenerate every figure of a results directory from its Parquet files; returns the PNGs."""
    root = Path(path)
    df = load_results(root)
    out = root / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    sns.set_theme(style="whitegrid", context="notebook")
    figures = ACCURACY_FIGURES if "accuracy" in df.columns else FIGURES
    for name, fn in figures.items():
        fig = fn(df)
        if fig is None:
            continue
        p = out / f"{name}.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(p)
    return written


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Median relative error at the last grid layer (cumulative): rows (any other varying axis,)
    activation, oversampling; columns bandwidth."""
    d = _cumulative(_last_grid_layer(df))
    extra = [c for c in ("kind", "alpha", "depth", "channels", "dtype") if c in d and d[c].nunique() > 1]
    return d.pivot_table(index=[*extra, "activation", "oversampling"], columns="bandwidth", values="rel_error",
                         aggfunc="median")
