"""The tables of the README and the results book, generated from the committed results.

Each page marks a generated table with ``<!-- table: NAME -->`` ... ``<!-- /table -->``; the text
between the markers is what ``TABLES[NAME](results_dir)`` returns. ``make docs`` rewrites the
pages (``python docs/tables.py``); ``tests/test_docs.py`` fails when a page differs from what the
results produce (``python docs/tables.py --check`` says which). Nothing here computes a model:
every number is read from ``results/``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "results").glob("*.md"))]
MARK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)

TABLES: dict[str, Callable[[Path], str]] = {}


def table(name: str) -> Callable[[Callable[[Path], str]], Callable[[Path], str]]:
    def register(f: Callable[[Path], str]) -> Callable[[Path], str]:
        TABLES[name] = f
        return f
    return register


# ---------------------------------------------------------------------------------------------
# formatting


def num(x: float | None, sig: int = 2) -> str:
    """``sig`` significant digits; scientific notation below 1e-3 (1.3e-15), none for large values."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        m, e = f"{x:.{sig - 1}e}".split("e")
        return f"{m}e{int(e)}"
    if abs(x) >= 10 ** sig:
        return f"{x:.0f}"
    return f"{x:.{sig}g}" if "e" not in f"{x:.{sig}g}" else f"{x:.0f}"


def ms(x: float) -> str:
    """A time in ms: 3 significant digits (0 decimals from 100 up)."""
    return num(x, 3)




def md(rows: Iterable[Iterable[object]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def accuracy_cell(values: pd.Series) -> str:
    """One seed: the value; two: their mean (each seed); three or more: mean ± 95% t half-width."""
    v = values.to_numpy(float)
    if len(v) == 0:
        return "—"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    if len(v) == 2:
        return f"{v.mean():.3f} ({v[0]:.3f}, {v[1]:.3f})"
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return f"{v.mean():.3f} ± {half:.3f}"


def _load(root: Path, name: str) -> pd.DataFrame:
    from harness import load_results
    return load_results(root / name)


SETTINGS = ["NR/NR", "NR/R", "R/R"]


def _accuracies(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per ``keys``: one column per setting (accuracy_cell over seeds, seed order)."""
    df = df.sort_values("seed")
    out = df.groupby(keys + ["setting"], sort=False)["accuracy"].apply(accuracy_cell).unstack("setting")
    return out.reindex(columns=SETTINGS).astype(object).fillna("—")


# ---------------------------------------------------------------------------------------------
# the default sweep


@table("default-error")
def default_error(root: Path) -> str:
    df = _load(root, "default")
    df = df[(df["mode"] == "cumulative") & (df["layer"] == "pointwise3")]
    med = df.groupby(["decay", "activation", "oversampling", "bandwidth"])["rel_error"].median()
    bs = sorted(df["bandwidth"].unique())
    rows = []
    for (decay, act, s), g in med.groupby(level=[0, 1, 2]):
        rows.append([("white" if decay == 0 else f"(1+l)^-{decay:g}"), act, f"{s:g}",
                     " / ".join(num(g.loc[(decay, act, s, b)]) for b in bs)])
    return md(rows, ["input spectrum", "activation", "s",
                     f"error after the last nonlinearity (cumulative) at b = {' / '.join(map(str, bs))}"])


@table("default-lie")
def default_lie(root: Path) -> str:
    df = _load(root, "default")
    df = df[(df["mode"] == "isolated") & (df["decay"] == 0) & df["layer"].str.startswith("pointwise")
            & (df["oversampling"] == 1.0)]
    bs = sorted(df["bandwidth"].unique())
    med = df.groupby(["activation", "bandwidth"])[["rel_error", "lie_derivative"]].median()
    rows = [[act, " / ".join(num(med.loc[(act, b), "rel_error"]) for b in bs),
             " / ".join(num(med.loc[(act, b), "lie_derivative"]) for b in bs)]
            for act in sorted(df["activation"].unique())]
    return md(rows, ["activation, s = 1, isolated, white", f"error at b = {' / '.join(map(str, bs))}",
                     "Lie derivative (per radian)"])


# ---------------------------------------------------------------------------------------------
# Cohen et al. 2018, section 5.1


@table("cohen2018")
def cohen2018(root: Path) -> str:
    df = _load(root, "cohen2018")
    df = df[df["layer_type"] != "SO3Pointwise"]  # Δ after each correlation, as the paper plots it
    delta = df.groupby(["rotations", "activation", "dtype", "layer_index", "bandwidth"])["cohen_delta"].mean()
    bs = sorted(df["bandwidth"].unique())
    rows = []
    for (rot, act, dtype), g in delta.groupby(level=[0, 1, 2], sort=False):
        name = {"haar": "Haar", "grid_z": "grid-aligned z"}[rot]
        cells = []
        for li, d in g.groupby(level=3):
            cells.append(f"{num(d.min())} – {num(d.max())}")
        rows.append([f"{name}, {'ReLU after each' if act == 'relu' else 'linear'}, {dtype}", *cells])
    order = {"Haar": 0, "grid-aligned z": 1}
    rows.sort(key=lambda r: (order[r[0].split(",")[0]], r[0]))
    return md(rows, [f"rotations, stack, dtype (range over b = {', '.join(map(str, bs))})",
                     "Δ after correlation 1", "2", "3"])


# ---------------------------------------------------------------------------------------------
# third-party models


def _experiment(name: str):  # noqa: ANN202 - a module
    """experiments/NAME.py as a module (its conventions, e.g. how many points a grid has)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", ROOT / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@table("e3nn")
def e3nn(root: Path) -> str:
    tp = _experiment("third_party")
    e3 = _load(root, "third_party/e3nn_s2activation")
    pw = _load(root, "third_party/harness_pointwise")
    rows = []
    for res, g in e3.groupby("res"):
        rows.append([tp.e3nn_grid_points(int(res)), f"e3nn `S2Activation`, res = {res}", num(g["rel_error"].median()),
                     ms(g["forward_ms"].median()), f"e3nn {g['e3nn_version'].iloc[0]}" if "e3nn_version" in g else "—"])
    for s, g in pw.groupby("oversampling"):
        rows.append([tp.harness_grid_points(int(g["bandwidth"].iloc[0]), float(s)), f"harness `Pointwise`, s = {s:g}",
                     num(g["rel_error"].median()), ms(g["forward_ms"].median()), f"harness {g['harness_version'].iloc[0]}"])
    rows.sort(key=lambda r: (r[0], r[1]))
    return md([[f"{r[0]:,}", *r[1:]] for r in rows],
              ["grid points", "ReLU sampled by", "relative error (median)", "forward ms per input (1 thread)", "version"])


@table("torch-harmonics")
def torch_harmonics(root: Path) -> str:
    df = pd.read_parquet(root / "third_party" / "torch_harmonics.parquet")
    cols = ["exact_rel_error", "interpolated_error", "interpolation_alone", "exact_error_th080"]
    med = df.groupby(["module", "nlat"], sort=False)[cols].median()
    old = df.groupby("module", sort=False)["th080_module"].first()
    version = df["torch_harmonics_version"].iloc[0]
    rows = []
    for module, g in med.groupby(level=0, sort=False):
        cell = lambda c: " / ".join(num(v) for v in g[c])  # noqa: E731
        rows.append([module, " / ".join(f"{n}²" for n in g.index.get_level_values(1)), cell("exact_rel_error"),
                     cell("interpolated_error"), cell("interpolation_alone"),
                     cell("exact_error_th080") + (f" ({old[module]})" if old[module] not in ("", module) else "")])
    th080 = df["th080_version"].dropna().iloc[0]
    return md(rows, ["module (as built with torch-harmonics " + version + ")", "grid", f"exact error, {version}",
                     "notebook protocol", "interpolation alone", f"exact error, {th080} (same set-up)"])


@table("disco-constant")
def disco_constant(root: Path) -> str:
    df = pd.read_csv(root / "third_party" / "disco_constant.csv")
    df = df[df["n_seeds"] > 0]
    rows = []
    for (v, mode), g in df.groupby(["torch_harmonics_version", "basis_norm_mode"], sort=False):
        default = " (default)" if g["is_default"].all() else ""
        rows.append([v, f"`{mode}`{default}", " / ".join(num(x) for x in g["spread_w1"]),
                     " / ".join(f"{num(a)}–{num(b)}" for a, b in zip(g["spread_seed_min"], g["spread_seed_max"])),
                     *(f"{num(g[c + '_w1'].iloc[-1], 3)} ({num(g[c + '_seed_min'].iloc[-1])} to {num(g[c + '_seed_max'].iloc[-1])})"
                       for c in ["north_pole_over_mean", "equator_over_mean"])])
    grids = " / ".join(df["grid"].drop_duplicates())
    return md(rows, ["torch-harmonics", "basis_norm_mode", f"spread, weights (1, 1): {grids}",
                     f"spread over {df['n_seeds'].max()} random weight seeds", "north pole ÷ mean on 129 × 256 (seeds' range)",
                     "equator ÷ mean on 129 × 256 (seeds' range)"])


@table("escnn")
def escnn(root: Path) -> str:
    df = pd.read_csv(root / "third_party" / "escnn" / "summary.csv")
    rows = []
    for (space, lib, layer, grid), g in df.groupby(["space", "library", "layer", "grid_type"], sort=False):
        act = g[g["function"] == "relu"].sort_values("n_points")
        exact = g[g["function"] != "relu"]
        v = g.iloc[0]
        rows.append([space, f"{lib} {v['escnn_version'] if lib == 'escnn' else v['harness_version']} `{layer}`", grid,
                     ", ".join(f"{n:,}: {num(e)}" for n, e in zip(act["n_points"], act["rel_error_median"])),
                     " / ".join(f"{ms(t)}" for t in act["ms_per_call"]),
                     "; ".join(f"{r.function} at {r.n_points:,}: {num(r.rel_error_median)}" for r in exact.itertuples()) or "—"])
    load = f"{df['load_1min'].min():.1f}–{df['load_1min'].max():.1f}"
    return md(rows, ["space", "layer", "grid", "grid points: median relative error (ReLU)", "ms per call (same order)",
                     "without the ReLU (identity) or with an exact σ (square)"]) + \
        f"\n(float64, 64 (input, rotation) pairs per row, 16 inputs × 4 channels per timed call, 1 thread; torch" \
        f" {df['torch_version'].iloc[0]}, numpy {df['numpy_version'].iloc[0]}; load average {load} while measured.)\n"


# ---------------------------------------------------------------------------------------------
# training runs


@table("accuracy")
def accuracy(root: Path) -> str:
    df = _load(root, "accuracy")
    acc = _accuracies(df, ["oversampling"]).sort_index()
    inv = df.groupby("oversampling")["descriptor_invariance_error"].median()
    step = pd.read_csv(root / "accuracy" / "step_time.csv").set_index("oversampling")["step_ms"]
    base = step.loc[1.0]
    rows = [[f"{s:g}", *acc.loc[s], num(inv.loc[s]), f"{ms(step.loc[s])} ms ({step.loc[s] / base:.1f}×)"]
            for s in acc.index]
    return md(rows, ["oversampling", *SETTINGS, "descriptor invariance error (relative, median)", "time per training step"])


def _invariance(df: pd.DataFrame) -> str:
    by = df.drop_duplicates("checkpoint").assign(t=lambda d: d["checkpoint"].str.extract(r"-(NR|R)\.pt$")[0])
    parts = by.groupby("t")["descriptor_invariance_error"].median()
    return " / ".join(f"{num(parts[t])} ({t}-trained)" for t in ["NR", "R"] if t in parts)


@table("cohen-accuracy")
def cohen_accuracy(root: Path) -> str:
    rows = []
    for name, run, keep in [("esteves_mnist (s = 1)", "accuracy", lambda d: d["oversampling"] == 1.0),
                            ("cohen_mnist", "cohen_accuracy", None),
                            ("esteves_mnist, s2cnn's shared rotations", "accuracy_shared", None),
                            ("cohen_mnist, s2cnn's shared rotations", "cohen_accuracy_shared", None)]:
        df = _load(root, run)
        if keep is not None:
            df = df[keep(df)]
        acc = _accuracies(df.assign(k=0), ["k"]).iloc[0]
        rows.append([name, f"`results/{run}`", *acc, _invariance(df)])
    return md(rows, ["model (mnist5k, 4 epochs)", "results", *SETTINGS, "relative invariance error of the learned invariant"])


@table("fashion")
def fashion(root: Path) -> str:
    rows = []
    for name, run in [("esteves_mnist (s = 1), 3 epochs", "fashion"), ("esteves_mnist (s = 1), 1 epoch", "fashion_1epoch"),
                      ("cohen_mnist, 1 epoch", "cohen_fashion_full")]:
        df = _load(root, run)
        acc = _accuracies(df.assign(k=0), ["k"]).iloc[0]
        per_epoch = df.drop_duplicates("checkpoint")["train_time_s"].median() / df["epochs"].iloc[0]
        rows.append([name, f"`results/{run}`", *acc, _invariance(df), f"{per_epoch:.0f} s"])
    return md(rows, ["model (full Fashion-MNIST, seed 0, batch 64)", "results", *SETTINGS,
                     "relative invariance error of the learned invariant", "training time per epoch (median over the trainings)"])


@table("cohen-fashion-subset")
def cohen_fashion_subset(root: Path) -> str:
    rows = []
    for name, run, keep in [("esteves_mnist, relu s = 1", "frontier_train", lambda d: d["nonlinearity"] == "relu_s1"),
                            ("cohen_mnist", "cohen_fashion", None)]:
        df = _load(root, run)
        if keep is not None:
            df = df[keep(df)]
        acc = _accuracies(df.assign(k=0), ["k"]).iloc[0]
        rows.append([name, f"`results/{run}`", *acc, _invariance(df)])
    return md(rows, ["model (Fashion-MNIST 3,000 / 1,000, 2 epochs, seeds 0–2)", "results", *SETTINGS,
                     "relative invariance error of the learned invariant"])


# ---------------------------------------------------------------------------------------------
# trained vs untrained


@table("trained")
def trained(root: Path) -> str:
    df = pd.read_parquet(root / "trained_vs_untrained" / "errors.parquet")
    med = df.groupby(["oversampling", "mode", "layer", "state"])["rel_error"].median()

    def pair(s: float, mode: str, layer: str) -> str:
        return f"{num(med.loc[(s, mode, layer, 'initialisation')])} → {num(med.loc[(s, mode, layer, 'trained')])}"

    rows = [[f"{s:g}", ", ".join(pair(s, "isolated", f"pointwise{i}") for i in (1, 2, 3)),
             pair(s, "cumulative", "descriptor1"), pair(s, "cumulative", "linear1")]
            for s in sorted(df["oversampling"].unique())]
    return md(rows, ["ReLU s", "pointwise1 / 2 / 3 alone, init → trained", "descriptor (cumulative)",
                     "classifier output (cumulative)"])


@table("trained-aliasing")
def trained_aliasing(root: Path) -> str:
    df = pd.read_parquet(root / "trained_vs_untrained" / "aliasing.parquet")
    med = df.groupby(["oversampling", "layer", "state"])["out_of_band"].median()
    layers = sorted(df["layer"].unique())
    rows = [[f"{s:g}", *(f"{num(med.loc[(s, l, 'initialisation')])} → {num(med.loc[(s, l, 'trained')])}" for l in layers)]
            for s in sorted(df["oversampling"].unique())]
    return md(rows, ["ReLU s", *(f"{l}: out-of-band energy of σ(input), init → trained" for l in layers)])


# ---------------------------------------------------------------------------------------------
# speed


_LAYER_NAMES = {
    "conv": "SphericalConv 16→16, 8 anchors", "pointwise_s1": "Pointwise relu, s = 1",
    "pointwise_s1.5": "Pointwise relu, s = 1.5", "pointwise_s2": "Pointwise relu, s = 2",
    "pool": "SpectralPool b → b/2", "descriptor": "InvariantDescriptor", "esteves_mnist": "esteves_mnist preset",
    "conv@coeffs": "SphericalConv on coefficients", "pointwise_s1@coeffs": "Pointwise s = 1 on coefficients",
    "pointwise_s1.5@coeffs": "Pointwise s = 1.5 on coefficients", "pointwise_s2@coeffs": "Pointwise s = 2 on coefficients",
}


def _layer_table(csv: Path, names: dict[str, str], ratio_to: str | None) -> str:
    df = pd.read_csv(csv)
    bs = sorted(df["b"].unique())
    t = df.set_index(["layer", "b", "direction"])
    rows = []
    for layer in df["layer"].unique():
        here = [b for b in bs if (layer, b, "forward") in t.index]
        cell = lambda col, d: " / ".join(ms(t.loc[(layer, b, d), col]) for b in here)  # noqa: E731
        row = [names.get(layer, layer), " / ".join(map(str, here)), cell("median_ms", "forward"),
               cell("median_ms", "forward+backward")]
        if ratio_to is not None:
            row.append(" / ".join(num(t.loc[(layer, b, "forward"), "median_ms"] / t.loc[(ratio_to, b, "forward"), "median_ms"])
                                  for b in here))
        row += [cell("peak_mib", "forward"), cell("peak_mib", "forward+backward")]
        big = here[-1]
        row.append(num(t.loc[(layer, big, "forward"), "peak_mib"] / t.loc[(layer, big, "forward"), "input_mib"]))
        rows.append(row)
    load = f"{df['loadavg_1m'].min():.1f}–{df['loadavg_1m'].max():.1f}"
    header = ["layer", "b", "fwd ms", "fwd+bwd ms", *(["fwd ÷ conv"] if ratio_to else []), "fwd peak MiB",
              "fwd+bwd peak MiB", "peak ÷ input (largest b)"]
    return md(rows, header) + f"\n(load average while measured: {load}; torch {df['torch_version'].iloc[0]}, {df['threads'].iloc[0]} threads.)\n"


@table("layers")
def layers(root: Path) -> str:
    return _layer_table(root / "benchmarks" / "layers.csv", _LAYER_NAMES, "conv")


@table("layers-b64-rounds")
def layers_b64_rounds(root: Path) -> str:
    df = pd.read_csv(root / "benchmarks" / "layers_b64_rounds.csv")
    t = df.pivot_table(index="round", columns="layer", values="median_ms")
    rows = [[r, ms(t.loc[r, "conv"]), ms(t.loc[r, "pointwise_s1.5"]), num(t.loc[r, "pointwise_s1.5"] / t.loc[r, "conv"], 3)]
            for r in t.index]
    med = t.median()
    rows.append(["median of the rounds", ms(med["conv"]), ms(med["pointwise_s1.5"]), num(med["pointwise_s1.5"] / med["conv"], 3)])
    load = f"{df['loadavg_1m'].min():.1f}–{df['loadavg_1m'].max():.1f}"
    return md(rows, ["round (b = 64, forward)", "SphericalConv ms", "Pointwise relu s = 1.5 ms", "÷ conv"]) + \
        f"\n(load average {load} while measured; each configuration in a fresh process, median of 10 calls.)\n"


@table("layers-frontier")
def layers_frontier(root: Path) -> str:
    return _layer_table(root / "benchmarks" / "layers_frontier.csv", {}, None)


@table("layers-cohen")
def layers_cohen(root: Path) -> str:
    a = pd.read_csv(root / "benchmarks" / "layers_cohen.csv")
    b = pd.read_csv(root / "benchmarks" / "layers_so3conv.csv")
    df = pd.concat([a[a["layer"] != "so3_conv"], b])
    rows = []
    for layer, g in df.groupby("layer", sort=False):
        t = g.set_index("direction")
        rows.append([layer, g["b"].iloc[0], ms(t.loc["forward", "median_ms"]), ms(t.loc["forward+backward", "median_ms"]),
                     num(t.loc["forward+backward", "median_ms"] / t.loc["forward", "median_ms"]),
                     f"{ms(t.loc['forward', 'best_ms'])} / {ms(t.loc['forward+backward', 'best_ms'])}",
                     f"{ms(t.loc['forward', 'peak_mib'])} / {ms(t.loc['forward+backward', 'peak_mib'])}",
                     ms(g["input_mib"].iloc[0])])
    return md(rows, ["layer (batch 32)", "b in", "fwd ms", "fwd+bwd ms", "fwd+bwd ÷ fwd", "best fwd / fwd+bwd ms",
                     "peak MiB fwd / fwd+bwd", "input MiB"])


@table("measure-cost")
def measure_cost(root: Path) -> str:
    df = pd.read_csv(root / "benchmarks" / "measure.csv")
    t = df.set_index(["source", "rotations", "mode"])
    before = [s for s in df["source"].unique() if s != "HEAD"][0]
    rows = []
    for (rot, mode), _ in df.groupby(["rotations", "mode"]):
        cell = lambda s: (f"{num(t.loc[(s, rot, mode), 'median_s'], 3)} s, {t.loc[(s, rot, mode), 'peak_mib']:.0f} MiB"  # noqa: E731
                          if (s, rot, mode) in t.index else "—")
        rows.append([rot, mode, cell(before), cell("HEAD")])
    return md(rows, ["rotations", "mode", f"before ({before}): time, peak RSS", "after: time, peak RSS"])


@table("train-step")
def train_step(root: Path) -> str:
    df = pd.read_csv(root / "benchmarks" / "train_step_issue19.csv")
    new, old = df[df["code"] == "HEAD"].set_index("nonlinearity"), df[df["code"] != "HEAD"].set_index("nonlinearity")
    rows = [[nl, ms(new.loc[nl, "step_ms"]), num(new.loc[nl, "step_ms"] / new.loc["relu_s1", "step_ms"], 3),
             f"{ms(new.loc[nl, 'round_min_ms'])}–{ms(new.loc[nl, 'round_max_ms'])}",
             ms(old.loc[nl, "step_ms"]), num(old.loc[nl, "step_ms"] / old.loc["relu_s1", "step_ms"], 3),
             f"{new.loc[nl, 'loadavg_1m']:.1f}"]
            for nl in new.sort_values("step_ms").index]
    return md(rows, ["nonlinearity", "step ms", "÷ relu s = 1", "range over rounds", f"before ({old['code'].iloc[0]}) ms",
                     "before ÷ its relu", "load"])


@table("train-step-presets")
def train_step_presets(root: Path) -> str:
    df = pd.read_csv(root / "benchmarks" / "train_step_presets.csv")
    rows = [[r.preset, r.code, ms(r.step_ms), f"{ms(r.round_min_ms)}–{ms(r.round_max_ms)}", f"{r.loadavg_1m:.1f}"]
            for r in df.itertuples()]
    return md(rows, ["preset (b = 30, batch 32)", "code", "step ms (median of rounds)", "range over rounds", "load"])


@table("peers-sht")
def peers_sht(root: Path) -> str:
    df = pd.read_csv(root / "peers" / "sht.csv")
    t = df.set_index(["library", "dtype", "b"])
    libs = ["harness-torch", "harness-ducc0", "ducc0-direct", "torch-harmonics"]
    rows = []
    for (dtype, b), _ in df.groupby(["dtype", "b"]):
        if math.isnan(t.loc[("harness-torch", dtype, b), "forward_ms"]):
            continue  # a table-memory row only
        cells = [f"{ms(t.loc[(lib, dtype, b), 'forward_ms'])} / {ms(t.loc[(lib, dtype, b), 'inverse_ms'])}"
                 if (lib, dtype, b) in t.index else "—" for lib in libs]
        ratio = "—"
        if ("torch-harmonics", dtype, b) in t.index:
            th, h = t.loc[("torch-harmonics", dtype, b)], t.loc[("harness-torch", dtype, b)]
            ratio = f"{th['forward_ms'] / h['forward_ms']:.2f}, {th['inverse_ms'] / h['inverse_ms']:.2f}"
        rows.append([dtype, b, *cells, ratio])
    v = df.iloc[0]
    return md(rows, ["dtype", "b", *(f"{lib} fwd / inv ms" for lib in libs), "torch-harmonics ÷ harness-torch fwd, inv"]) + \
        f"\n(torch {v['torch']}, ducc0 {v['ducc0']}, torch-harmonics {v['torch_harmonics']}; {v['machine']}, {v['threads']} threads"  \
        + (f"; load average {df['loadavg_1m'].min():.1f}–{df['loadavg_1m'].max():.1f} while measured" if "loadavg_1m" in df else "") + ".)\n"


@table("peers-so3")
def peers_so3(root: Path) -> str:
    df = pd.read_csv(root / "peers" / "so3.csv")
    rows = [[r.library, r.b, r.dtype, f"{ms(r.forward_ms)} / {ms(r.inverse_ms)}" if not math.isnan(r.forward_ms) else "—",
             num(r.setup_s), ms(r.table_MiB) if not math.isnan(r.table_MiB) else "—", num(r.roundtrip_rel_err),
             f"{r.other_cpus:.1f}", r.note.split(";")[0] if isinstance(r.note, str) else ""] for r in df.itertuples()]
    return md(rows, ["library", "b", "dtype", "fwd / inv ms", "set-up s", "tables MiB", "round trip", "other load (CPUs)", "note"])


@table("peers-rotation")
def peers_rotation(root: Path) -> str:
    df = pd.read_csv(root / "peers" / "rotation.csv")
    rows = [[r.library, r.b, r.what, ms(r.ms), num(r.per_rotation_ms, 3)] for r in df.itertuples()]
    return md(rows, ["library", "b", "what", "ms (median)", "per rotation ms"])


# ---------------------------------------------------------------------------------------------
# the nonlinearity frontier


@table("frontier-isolated")
def frontier_isolated(root: Path) -> str:
    df = _load(root, "frontier")
    df = df[df["layer_type"] != "SphericalConv"]
    med = df.groupby(["nonlinearity", "bandwidth"])[["rel_error", "lie_derivative"]].median()
    bs = sorted(df["bandwidth"].unique())
    rows = [[nl, " / ".join(num(med.loc[(nl, b), "rel_error"]) for b in bs),
             " / ".join(num(med.loc[(nl, b), "lie_derivative"]) for b in bs)]
            for nl in med.groupby(level=0)["rel_error"].max().sort_values(ascending=False).index]
    return md(rows, ["nonlinearity", f"error at b = {' / '.join(map(str, bs))}", "Lie derivative (per radian)"])


def _frontier(csv: Path) -> str:
    df = pd.read_csv(csv)
    rows = []
    for r in df.itertuples():
        accs = []
        for s in SETTINGS:
            m = df.loc[r.Index, s]
            h = df.loc[r.Index, f"{s} ci95"]
            accs.append("—" if math.isnan(m) else f"{m:.3f}" if math.isnan(h) else f"{m:.3f} ± {h:.3f}")
        d, dh = df.loc[r.Index, "NR/NR vs reference"], df.loc[r.Index, "NR/NR vs reference ci95"]
        diff = "—" if math.isnan(d) else f"{100 * d:+.1f}" if math.isnan(dh) else f"{100 * d:+.1f} ± {100 * dh:.1f}"
        rows.append([r.nonlinearity, num(r.error), f"{ms(r.step_ms)} ({r.time_ratio:.2f}×)", *accs, diff,
                     "not trained" if math.isnan(df.loc[r.Index, "NR/NR"]) else "yes" if r.meets_goal else "no"])
    return md(rows, ["nonlinearity", "isolated error (b = 32)", "step ms (÷ relu s = 1)", *SETTINGS,
                     "NR/NR − relu's (points, Welch 95%)", "meets the goal"])


@table("frontier")
def frontier(root: Path) -> str:
    return _frontier(root / "frontier_train" / "frontier.csv")


@table("frontier-fullsplit")
def frontier_fullsplit(root: Path) -> str:
    return _frontier(root / "frontier_fashion" / "frontier.csv")


@table("frontier-full")
def frontier_full(root: Path) -> str:
    parts = []
    for run in ["frontier_fashion", "frontier_full", "fashion"]:
        df = _load(root, run)
        if "nonlinearity" not in df:
            df = df.assign(nonlinearity="relu_s1")
        df = df.assign(run=f"`results/{run}`")
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)
    rows = []
    for (run, nl), g in df.groupby(["run", "nonlinearity"], sort=False):
        acc = _accuracies(g.assign(k=0), ["k"]).iloc[0]
        seeds = ", ".join(str(s) for s in sorted(g["seed"].unique()))
        rows.append([nl, run, seeds, *acc, _invariance(g)])
    return md(rows, ["nonlinearity", "results", "seeds", *SETTINGS, "relative invariance error of the learned descriptor"])


# ---------------------------------------------------------------------------------------------


def render(text: str, root: Path, cache: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in TABLES:
            raise KeyError(f"no table named {name!r} (known: {sorted(TABLES)})")
        if name not in cache:
            cache[name] = TABLES[name](root)
        return m.group(1) + cache[name] + m.group(4)
    return MARK.sub(sub, text)


def stale(root: Path = ROOT / "results") -> dict[str, list[str]]:
    """Page -> names of its tables that differ from what the results produce."""
    cache: dict[str, str] = {}
    out = {}
    for page in PAGES:
        text = (ROOT / page).read_text()
        new = render(text, root, cache)
        bad = [m.group("name") for m, n in zip(MARK.finditer(text), MARK.finditer(new)) if m.group("body") != n.group("body")]
        if bad:
            out[page] = bad
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 naming the tables that differ")
    args = p.parse_args(argv)
    root = ROOT / "results"
    if args.check:
        bad = stale(root)
        for page, names in bad.items():
            print(f"{page}: {', '.join(names)} differ from results/ (python docs/tables.py regenerates them)")
        return 1 if bad else 0
    cache: dict[str, str] = {}
    for page in PAGES:
        path = ROOT / page
        text = path.read_text()
        new = render(text, root, cache)
        if new != text:
            path.write_text(new)
            print(f"{page}: tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
