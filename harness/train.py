"""Training and the three evaluation settings of spherical image classification.

NR/NR: trained and tested on non-rotated projections; NR/R: trained non-rotated, tested on rotated
projections (the test of a rotation-invariant network); R/R: trained and tested rotated.
Rotated projections sample the planar image at ``R^-1 p`` (see :mod:`harness.data`).

A config (see ``experiments/accuracy.toml``)::

    name = "accuracy"
    [data]
    dataset = "mnist5k"        # or "fashion-mnist"
    bandwidth = 30
    rotation = "per-sample"    # how rotated sets are made: "per-sample" or "shared" (s2cnn)
    [model]
    preset = "esteves_mnist"   # or a full model spec under [model.spec]
    [train]
    epochs = 4
    batch_size = 32
    lr = 5e-3
    [axes]                     # every combination is one cell
    activation = ["relu"]
    oversampling = [1.0, 1.5, 2.0]
    seed = [0]
    settings = ["NR/NR", "NR/R", "R/R"]
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from .equivariance import equivariance_error
from .layers import ACTIVATIONS
from .models import PRESETS, build_model, normalize_spec
from .results import finished_cells, load_results, provenance, read_config, write_cell
from .rotations import random_rotations

SETTINGS = ("NR/NR", "NR/R", "R/R")
_TOP = {"name", "description", "data", "model", "train", "axes"}
_DATA = {"dataset": "mnist5k", "bandwidth": 30, "kind": "dh", "rotation": "per-sample", "n_train": None,
         "n_test": None}
_TRAIN = {"epochs": 4, "batch_size": 32, "lr": 5e-3, "weight_decay": 0.0, "threads": 2,
          "invariance_inputs": 32, "invariance_rotations": 4}
_AXES = {"activation": ["relu"], "oversampling": [1.0], "seed": [0], "settings": list(SETTINGS)}


def _merge(table: Any, defaults: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table, got {table!r}")
    unknown = set(table) - set(defaults)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys are {sorted(defaults)}")
    return {**copy.deepcopy(defaults), **table}


def load_train_config(config: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """Read and validate a training config (TOML path or dict); no compute."""
    from .data import DATASETS, ROTATION_MODES

    config = read_config(config)
    unknown = set(config) - _TOP
    if unknown:
        raise ValueError(f"config: unknown key(s) {sorted(unknown)}; valid keys are {sorted(_TOP)}")
    cfg = {"name": config.get("name", "accuracy"), "description": config.get("description", ""),
           "data": _merge(config.get("data", {}), _DATA, "data"),
           "train": _merge(config.get("train", {}), _TRAIN, "train"),
           "axes": _merge(config.get("axes", {}), _AXES, "axes")}
    model = config.get("model", {"preset": "esteves_mnist"})
    if not isinstance(model, dict) or set(model) - {"preset", "spec"} or len(model) != 1:
        raise ValueError(f"model: expected exactly one of 'preset' (one of {sorted(PRESETS)}) or 'spec', got {model!r}")
    cfg["model"] = model
    d = cfg["data"]
    if d["dataset"] not in DATASETS:
        raise ValueError(f"data.dataset: unknown dataset {d['dataset']!r}; known: {list(DATASETS)}")
    if d["rotation"] not in ROTATION_MODES or d["rotation"] == "none":
        raise ValueError(f"data.rotation: expected one of {[m for m in ROTATION_MODES if m != 'none']}, got {d['rotation']!r}")
    for a in cfg["axes"]["activation"]:
        if a not in ACTIVATIONS:
            raise ValueError(f"axes.activation: unknown activation {a!r}; known: {sorted(ACTIVATIONS)}")
    for s in cfg["axes"]["oversampling"]:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 1:
            raise ValueError(f"axes.oversampling: expected numbers >= 1, got {s!r}")
    for s in cfg["axes"]["settings"]:
        if s not in SETTINGS:
            raise ValueError(f"axes.settings: unknown setting {s!r}; valid settings are {list(SETTINGS)}")
    for k in ("epochs", "batch_size", "threads"):
        v = cfg["train"][k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"train.{k}: expected an int >= 1, got {v!r}")
    normalize_spec(_model_spec(cfg, cfg["axes"]["activation"][0], cfg["axes"]["oversampling"][0]))
    return cfg


def _model_spec(cfg: dict[str, Any], activation: str, oversampling: float) -> dict[str, Any]:
    m = cfg["model"]
    spec = copy.deepcopy(PRESETS[m["preset"]] if "preset" in m else m["spec"])
    if "preset" in m and m["preset"] not in PRESETS:
        raise ValueError(f"model.preset: unknown preset {m['preset']!r}; presets are {sorted(PRESETS)}")
    spec["bandwidth"], spec["kind"] = cfg["data"]["bandwidth"], cfg["data"]["kind"]
    for layer in spec["layers"]:
        if layer["type"] == "pointwise":
            layer["activation"], layer["oversampling"] = activation, oversampling
    return spec


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 100) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += int((model(x[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum())
    return correct / len(x)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float,
        seed: int, weight_decay: float = 0.0, progress: bool | None = None) -> list[float]:
    """Adam with a cosine schedule; returns the mean training loss of each epoch."""
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses = []
    bar = tqdm(total=steps, desc="train", unit="step", disable=None if progress is None else not progress)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            bar.update(1)
        losses.append(total / len(x))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    return losses


def _cells(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    ax = cfg["axes"]
    for act, s, seed in itertools.product(ax["activation"], ax["oversampling"], ax["seed"]):
        cell = {"experiment": cfg["name"], "activation": act, "oversampling": float(s), "seed": int(seed),
                "settings": ax["settings"], "data": cfg["data"], "train": cfg["train"], "model": cfg["model"]}
        cell["cell_id"] = hashlib.sha1(json.dumps(cell, sort_keys=True).encode()).hexdigest()[:12]
        out.append(cell)
    return out


def run_training_cell(cfg: dict[str, Any], cell: dict[str, Any], root: Path, progress: bool | None = None) -> pd.DataFrame:
    """Train the needed models of one cell (NR and/or R) and evaluate its settings."""
    from .data import projected_dataset

    d, t = cfg["data"], cfg["train"]
    threads = torch.get_num_threads()
    torch.set_num_threads(t["threads"])
    try:
        def data(split: str, rotated: bool):
            x, y = projected_dataset(d["dataset"], split, bandwidth=d["bandwidth"], kind=d["kind"],
                                     rotation=d["rotation"] if rotated else "none", seed=cell["seed"])
            n = d["n_train"] if split == "train" else d["n_test"]
            return (x[:n], y[:n]) if n else (x, y)

        rows = []
        needs = {"NR": any(s.startswith("NR/") for s in cell["settings"]), "R": "R/R" in cell["settings"]}
        for train_rot, needed in needs.items():
            if not needed:
                continue
            with torch.random.fork_rng():
                torch.manual_seed(cell["seed"])
                model = build_model(_model_spec(cfg, cell["activation"], cell["oversampling"]))
            xtr, ytr = data("train", train_rot == "R")
            t0 = time.perf_counter()
            losses = fit(model, xtr, ytr, t["epochs"], t["batch_size"], t["lr"], cell["seed"], t["weight_decay"], progress)
            train_s = time.perf_counter() - t0
            ckpt = root / "checkpoints" / f"{cell['cell_id']}-{train_rot}.pt"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), ckpt)
            xte, yte = data("test", False)
            inv = _descriptor_invariance(model, xte, t, cell["seed"])
            for setting in cell["settings"]:
                tr, te = setting.split("/")
                if tr != train_rot:
                    continue
                xs, ys = (xte, yte) if te == "NR" else data("test", True)
                rows.append({"setting": setting, "accuracy": evaluate_accuracy(model, xs, ys),
                             "train_time_s": train_s, "final_train_loss": losses[-1],
                             "descriptor_invariance_error": inv, "checkpoint": str(ckpt)})
    finally:
        torch.set_num_threads(threads)
    df = pd.DataFrame(rows)
    for k in ("experiment", "cell_id", "activation", "oversampling", "seed"):
        df[k] = cell[k]
    df["dataset"], df["bandwidth"], df["epochs"] = d["dataset"], d["bandwidth"], t["epochs"]
    df["n_train"], df["n_test"] = len(xtr), len(xte)
    return df


def _descriptor_invariance(model: nn.Module, x: torch.Tensor, t: dict[str, Any], seed: int) -> float:
    """Median invariance error of the learned descriptor on exact rotations of test inputs."""
    model.eval()
    xs = x[: t["invariance_inputs"]].double()
    m = copy.deepcopy(model).double()
    df = equivariance_error(m, xs, random_rotations(t["invariance_rotations"], seed=seed + 99), mode="cumulative",
                            project=True)
    return float(df[df["layer"].str.startswith("descriptor")]["rel_error"].median())


def run_training(config: str | os.PathLike | dict[str, Any], out: str | os.PathLike | None = None,
                 progress: bool | None = None) -> pd.DataFrame:
    """Run (or resume) every cell of a training config; results in ``results/<name>/``."""
    cfg = load_train_config(config)
    root = Path(out) if out is not None else Path("results") / cfg["name"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    done = finished_cells(root)
    prov = provenance("cpu")
    chash = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    for cell in _cells(cfg):
        if cell["cell_id"] in done:
            continue
        df = run_training_cell(cfg, cell, root, progress)
        for k, v in {**prov, "config_hash": chash}.items():
            df[k] = v
        write_cell(root, cell["cell_id"], df)
    return load_results(root)


__all__ = ["SETTINGS", "load_train_config", "fit", "evaluate_accuracy", "run_training", "run_training_cell"]

