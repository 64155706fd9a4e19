"""Does training amplify aliasing? (``make trained``)

Per-layer equivariance errors of the ``esteves_mnist`` preset at initialisation and after
training, for every checkpoint of the accuracy experiment (``results/accuracy``: ReLU oversampled
1, 1.5, 2; seeds 0, 1; trained on non-rotated (NR) and rotated (R) digits). The untrained model of
a checkpoint is the same seed's initialisation (``torch.manual_seed(seed)`` then ``build_model``,
as the training run did). Inputs: the first 32 mnist5k test digits, projected onto the sphere and
measured through their band-limited part (``project=True``), under 8 Haar rotations; float64.
Also the aliasing of each nonlinearity on the input it receives (``model_aliasing``).

Writes ``results/trained_vs_untrained/errors.parquet``, ``aliasing.parquet`` and
``figures/trained_vs_untrained.png``. Run from the repository root.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import torch

import harness
from harness.runs.data import projected_dataset
from harness.runs.results import provenance
from harness.runs.train import checkpoint_path, model_spec

SRC = Path("results/accuracy")
OUT = Path("results/trained_vs_untrained")


def measure() -> None:
    cfg = json.loads((SRC / "config.json").read_text())
    cells = harness.load_results(SRC).drop_duplicates("checkpoint")
    d = cfg["data"]
    x, _ = projected_dataset(d["dataset"], "test", bandwidth=d["bandwidth"], kind=d["kind"])
    x = x[:32].double()
    R = harness.random_rotations(8, seed=7)
    errors, alias = [], []
    for row in cells.itertuples():
        spec = model_spec(cfg, row.activation, row.oversampling)
        for state in ("initialisation", "trained"):
            with torch.random.fork_rng():
                torch.manual_seed(int(row.seed))
                model = harness.build_model(spec)
            if state == "trained":
                model.load_state_dict(torch.load(checkpoint_path(SRC, row.checkpoint), weights_only=True))
            model = model.double().eval()
            tag = {"state": state, "oversampling": row.oversampling, "seed": row.seed,
                   "trained_on": Path(row.checkpoint).stem.split("-")[-1], "checkpoint": row.checkpoint}
            for mode in ("isolated", "cumulative"):
                errors.append(harness.equivariance_error(model, x, R, mode=mode, project=True).assign(**tag))
            alias.append(harness.model_aliasing(model, x, project=True).assign(**tag))
            print(f"{row.checkpoint} {state}", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    prov = provenance()
    pd.concat(errors, ignore_index=True).assign(**prov).to_parquet(OUT / "errors.parquet", index=False)
    pd.concat(alias, ignore_index=True).assign(**prov).to_parquet(OUT / "aliasing.parquet", index=False)


def figure() -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    df = pd.read_parquet(OUT / "errors.parquet")
    panels = [("nonlinearities alone (isolated)", "isolated", ["pointwise1", "pointwise2", "pointwise3"]),
              ("up to the classifier (cumulative)", "cumulative", ["descriptor1", "batchnorm1", "linear1"])]
    svals = sorted(df["oversampling"].unique())
    fig, axes = plt.subplots(2, len(svals), figsize=(4.2 * len(svals), 6.4), sharey="row")
    for r, (title, mode, layers) in enumerate(panels):
        for c, sv in enumerate(svals):
            ax = axes[r, c]
            d = df[(df["mode"] == mode) & (df["oversampling"] == sv) & df["layer"].isin(layers)]
            sns.pointplot(data=d, x="layer", y="rel_error", hue="state", order=layers,
                          hue_order=["initialisation", "trained"], estimator="median", errorbar=("pi", 80),
                          dodge=0.3, linestyle="none", ax=ax, legend=(r == 0 and c == len(svals) - 1))
            ax.set(yscale="log", xlabel="", ylabel="relative error" if c == 0 else "")
            ax.set_title(f"{title}, ReLU oversampling s = {sv:g}", fontsize=9)
    fig.suptitle("esteves_mnist at bandwidth 30, at initialisation and trained on mnist5k (float64): median over"
                 " 32 test digits x 8 rotations x 2 seeds x {NR, R}-trained; bars: 10-90%", fontsize=10)
    fig.tight_layout()
    out = OUT / "figures" / "trained_vs_untrained.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


if __name__ == "__main__":
    if "--figure-only" not in sys.argv:
        measure()
    print(figure())
