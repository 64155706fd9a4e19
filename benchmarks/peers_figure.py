#!/usr/bin/env python
"""Seaborn figure of the stored peer measurements: ``results/peers/{sht,rotation}.csv`` ->
``results/peers/peers.png`` (left: transform time vs bandwidth per library, forward and inverse;
right: Wigner-D construction per rotation, harness vs e3nn)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    peers = ROOT / "results" / "peers"
    sht = pd.read_csv(peers / "sht.csv")
    sht = sht[sht["batch"] > 0]
    long = sht.melt(id_vars=["library", "dtype", "b"], value_vars=["forward_ms", "inverse_ms"],
                    var_name="direction", value_name="ms")
    long["direction"] = long["direction"].str.removesuffix("_ms")
    versions = sht.iloc[0]
    long["library"] = long["library"].replace({"torch-harmonics": f"torch-harmonics {versions['torch_harmonics']}",
                                               "ducc0-direct": f"ducc0 {versions['ducc0']} (direct)"})
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), layout="constrained")
    for i, (ax, dt) in enumerate(zip(axes[:2], ("float64", "float32"))):
        sns.lineplot(data=long[long["dtype"] == dt], x="b", y="ms", hue="library", style="direction",
                     marker="o", ax=ax, legend=i == 0)
        ax.set(xscale="log", yscale="log", title=f"spherical Fourier transform, batch 16, {dt}",
               xlabel="bandwidth b", ylabel="median time per call (ms, 2 threads)")
        ax.set_xticks(sorted(long["b"].unique()), [str(v) for v in sorted(long["b"].unique())])
        ax.minorticks_off()
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    fig.legend(handles, labels, loc="outside lower left", ncol=5, frameon=False)
    rot = pd.read_csv(peers / "rotation.csv")
    rot = rot[rot["what"].isin(["wigner_D_explicit", "construction_per_call"])]
    rot = rot.assign(label=rot["library"] + " " + rot["what"].str.replace("_", " "))
    sns.barplot(data=rot, x="b", y="per_rotation_ms", hue="label", ax=axes[2])
    axes[2].set(yscale="log", title="Wigner-D per rotation (all l < b)", ylabel="ms per rotation", xlabel="bandwidth b")
    axes[2].legend(loc="upper left", title=None)
    out = peers / "peers.png"
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
