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
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, dt in zip(axes[:2], ("float64", "float32")):
        sns.lineplot(data=long[long["dtype"] == dt], x="b", y="ms", hue="library", style="direction",
                     marker="o", ax=ax)
        ax.set(xscale="log", yscale="log", title=f"spherical Fourier transform, batch 16, {dt}",
               xlabel="bandwidth b", ylabel="ms")
        ax.set_xticks(sorted(long["b"].unique()), [str(v) for v in sorted(long["b"].unique())])
        ax.minorticks_off()
    rot = pd.read_csv(peers / "rotation.csv")
    rot = rot[rot["what"].isin(["wigner_D_explicit", "construction_per_call"])]
    rot = rot.assign(label=rot["library"] + " " + rot["what"].str.replace("_", " "))
    sns.barplot(data=rot, x="b", y="per_rotation_ms", hue="label", ax=axes[2])
    axes[2].set(yscale="log", title="Wigner-D per rotation (all l < b)", ylabel="ms per rotation", xlabel="bandwidth b")
    fig.tight_layout()
    out = peers / "peers.png"
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
