"""Training and the three evaluation settings of spherical image classification.

NR/NR: trained and tested on non-rotated projections; NR/R: trained non-rotated, tested on rotated
projections (the test of a rotation-invariant network); R/R: trained and tested rotated.
Rotated projections sample the planar image at ``R^-1 p`` (see :mod:`harness.runs.data`).

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
import functools
import itertools
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..measure.equivariance import equivariance_error
from ..nn.layers import ACTIVATIONS
from ..nn.models import NONLINEARITY_VARIANTS, PRESETS, build_model, normalize_spec
from ..sphere.grids import GRID_KINDS, grid_shape
from ..sphere.so3 import random_rotations
from ..util.memory import TooLarge, available_bytes, gib
from ..util.schema import Choice, ConfigError, Custom, Int, ListOf, Name, Number, Optional, Str, Table, describe, validate
from .data import DATASETS, dataset_missing, min_bandwidth
from .results import load_results, provenance, read_config
from .runner import Cell, ResultsDir, check_grid, config_hash, run_cells

SETTINGS = ("NR/NR", "NR/R", "R/R")
IMAGE_SIZE = (28, 28)  # both datasets
SPLIT_SIZES = {"mnist5k": (4000, 1000), "fashion-mnist": (60000, 10000)}


def _model_table(v: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(v, dict) or len(v) != 1 or not set(v) <= {"preset", "spec"}:
        problems.append(f"{where}: expected exactly one of preset = (one of {sorted(PRESETS)}) or a [model.spec]"
                        f" table, got {describe(v)}")
        return None
    if "preset" in v and v["preset"] not in PRESETS:
        problems.append(f"{where}.preset: expected one of {sorted(PRESETS)}, got {describe(v['preset'])}")
        return None
    if "spec" in v and not isinstance(v["spec"], dict):
        problems.append(f"{where}.spec: expected a model spec table, got {describe(v['spec'])}")
        return None
    return copy.deepcopy(v)


TRAIN_SCHEMA = Table({
    "name": (Name(), "accuracy"),
    "description": (Str(), ""),
    "data": (Table({
        "dataset": (Choice(DATASETS), "mnist5k"),
        "bandwidth": (Int(1), 30),
        "kind": (Choice(GRID_KINDS), "dh"),
        "rotation": (Choice(("per-sample", "shared")), "per-sample"),
        "n_train": (Optional(Int(1)), None),
        "n_test": (Optional(Int(1)), None),
    }), dict),
    "model": (Custom(_model_table, "a model table"), lambda: {"preset": "esteves_mnist"}),
    "train": (Table({
        "epochs": (Int(1), 4),
        "batch_size": (Int(1), 32),
        "lr": (Number(0.0, lo_open=True), 5e-3),
        "weight_decay": (Number(0.0), 0.0),
        "threads": (Int(1), 2),
        "invariance_inputs": (Int(1), 32),
        "invariance_rotations": (Int(1), 4),
    }), dict),
    "axes": (Table({
        "activation": (ListOf(Choice(ACTIVATIONS)), lambda: ["relu"]),
        "oversampling": (ListOf(Number(1.0)), lambda: [1.0]),
        "seed": (ListOf(Int(0)), lambda: [0]),
        "settings": (ListOf(Choice(SETTINGS)), lambda: list(SETTINGS)),
        # named nonlinearities (NONLINEARITY_VARIANTS) in place of every pointwise layer; when
        # given, activation and oversampling must keep their single default. Not stored when absent.
        "nonlinearity": (Optional(ListOf(Choice(NONLINEARITY_VARIANTS))), None),
    }), dict),
})


def _cross(cfg: dict[str, Any], problems: list[str]) -> None:
    ax = cfg["axes"]
    if ax["nonlinearity"] is None:
        ax.pop("nonlinearity")  # not stored: results of configs without it stay resumable
    elif ax["activation"] != ["relu"] or ax["oversampling"] != [1.0]:
        problems.append(f"axes.nonlinearity: names the whole nonlinearity, so activation and oversampling must stay"
                        f" at their defaults ['relu'] and [1.0], got {ax['activation']} and {ax['oversampling']}")
        return
    d = cfg["data"]
    missing = dataset_missing(d["dataset"])
    if missing:  # the dry run says so too, before the run would find out
        problems.append(f"data.dataset: {missing}")
    m = cfg["model"]
    spec = PRESETS[m["preset"]] if "preset" in m else m["spec"]
    cin = spec.get("in_channels") if isinstance(spec, dict) else None
    if cin is not None and cin != 1:
        problems.append(f"model: in_channels is {cin}, but the {d['dataset']} images are one channel (grey levels)")
    need = min_bandwidth(*IMAGE_SIZE, d["kind"])
    if d["bandwidth"] < need:
        problems.append(f"data.bandwidth: expected at least {need} for {IMAGE_SIZE[0]} x {IMAGE_SIZE[1]} images on the"
                        f" {d['kind']!r} grid (one grid step per pixel at the south pole), got {d['bandwidth']}")
        return
    for act, s, nl in itertools.product(cfg["axes"]["activation"], cfg["axes"]["oversampling"],
                                        cfg["axes"].get("nonlinearity") or [None]):
        try:
            normalize_spec(model_spec(cfg, act, s, nl))
        except ConfigError as e:
            problems += [f"model (activation={act}, oversampling={s:g}, nonlinearity={nl}): {p}" for p in e.problems]
            return
    avail = available_bytes()
    try:
        peak = max(estimate_training(cfg, c.params)[1] for c in training_cells(cfg))
    except TooLarge as e:  # the model itself does not fit (its filters, its tables)
        problems.append(f"data.bandwidth: {e}")
        return
    if avail is not None and peak > avail:
        problems.append(f"data.bandwidth: a cell needs about {gib(peak)}, but only {gib(avail)} of memory is available")


def load_train_config(config: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """Read and validate a training config (TOML path or dict); no compute. Raises
    :class:`~harness.util.schema.ConfigError` listing every problem."""
    return validate(TRAIN_SCHEMA, dict(read_config(config)), "", _cross)


def model_spec(cfg: dict[str, Any], activation: str, oversampling: float, nonlinearity: str | None = None
               ) -> dict[str, Any]:
    """The model of a cell: the preset (or spec) at the data's bandwidth and grid, with every
    nonlinearity set to ``activation`` at ``oversampling`` — or, with ``nonlinearity``, replaced
    by that named variant (:data:`~harness.nn.models.NONLINEARITY_VARIANTS`)."""
    m = cfg["model"]
    spec = copy.deepcopy(PRESETS[m["preset"]] if "preset" in m else m["spec"])
    spec["bandwidth"], spec["kind"] = cfg["data"]["bandwidth"], cfg["data"]["kind"]
    layers = spec.get("layers", [])
    for i, layer in enumerate(layers):
        if isinstance(layer, dict) and layer.get("type") == "pointwise":
            if nonlinearity is not None:
                layers[i] = copy.deepcopy(NONLINEARITY_VARIANTS[nonlinearity])
            else:
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
        seed: int, weight_decay: float = 0.0, progress: bool | None = None,
        state_path: str | os.PathLike | None = None, desc: str = "train") -> list[float]:
    """Adam with a cosine schedule; returns the mean training loss of each epoch.

    progress: None shows a tqdm bar on a terminal and otherwise one line per epoch on stderr
    (``desc``, the epoch, its loss, the training seconds so far); True always the bar; False nothing.

    With ``state_path``, the model, optimiser, schedule, shuffling generator, losses and elapsed
    training seconds are saved there after every epoch (atomically), and a later call with the same
    path resumes after the last saved epoch: an interrupted run ends where an uninterrupted one
    would, bit for bit on the same machine (for a model that draws no random numbers while
    training: torch's global generator is not saved). The file is left for the caller to remove.
    """
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    per_epoch = (len(x) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * per_epoch)
    losses: list[float] = []
    seconds = 0.0
    path = Path(state_path) if state_path is not None else None
    if path is not None and path.is_file():
        st = torch.load(path, weights_only=False)
        if (st["epochs"], st["batch_size"], st["n"]) != (epochs, batch_size, len(x)):
            raise ValueError(f"state_path {path} holds a run of {st['epochs']} epochs, batch {st['batch_size']}, "
                             f"{st['n']} samples; this call asks for {epochs}, {batch_size}, {len(x)}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        gen.set_state(st["generator"])
        losses, seconds = st["losses"], st["seconds"]
    bar = tqdm(total=epochs * per_epoch, initial=len(losses) * per_epoch, desc=desc, unit="step",
               disable=None if progress is None else not progress)
    lines = progress is None and not sys.stderr.isatty()  # a log file: one line per epoch
    if lines and losses:
        print(f"{desc}: resumed after epoch {len(losses)}/{epochs}", file=sys.stderr, flush=True)
    for _ in range(len(losses), epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            value = float(loss.detach())
            if not math.isfinite(value):  # say so here, not later as a NaN in some layer
                raise ValueError(f"train: the loss diverged to {value} at step {i // batch_size + 1} of epoch"
                                 f" {len(losses) + 1} (lr {lr:g}); lower train.lr")
            loss.backward()
            opt.step()
            sched.step()
            total += value * len(idx)
            bar.update(1)
        losses.append(total / len(x))
        seconds += time.perf_counter() - t0
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if lines:
            print(f"{desc}: epoch {len(losses)}/{epochs}, mean loss {losses[-1]:.4f}, {seconds:.0f} s training so far",
                  file=sys.stderr, flush=True)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "generator": gen.get_state(), "losses": losses, "seconds": seconds,
                        "epochs": epochs, "batch_size": batch_size, "n": len(x)}, tmp)
            os.replace(tmp, path)
    bar.close()
    return losses


def fit_seconds(state_path: str | os.PathLike) -> float:
    """Training seconds summed over the epochs (and resumptions) a ``fit`` state file records."""
    return float(torch.load(state_path, weights_only=False)["seconds"])


def training_cells(cfg: dict[str, Any]) -> list[Cell]:
    """One cell per (activation, oversampling, seed); each trains what its settings need."""
    out = []
    ax = cfg["axes"]
    if ax.get("nonlinearity"):  # seed-major: every nonlinearity has a first seed before any has a second
        for seed, nl in itertools.product(ax["seed"], ax["nonlinearity"]):
            params = {"experiment": cfg["name"], "activation": "relu", "oversampling": 1.0, "nonlinearity": nl,
                      "seed": seed, "settings": ax["settings"], "data": cfg["data"], "train": cfg["train"],
                      "model": cfg["model"]}
            out.append(Cell(params, f"nonlinearity={nl} seed={seed}"))
        return out
    vary = [k for k in ("activation", "oversampling", "seed") if len(ax[k]) > 1] or ["activation", "oversampling", "seed"]
    for act, s, seed in itertools.product(ax["activation"], ax["oversampling"], ax["seed"]):
        params = {"experiment": cfg["name"], "activation": act, "oversampling": s, "seed": seed,
                  "settings": ax["settings"], "data": cfg["data"], "train": cfg["train"], "model": cfg["model"]}
        point = {"activation": act, "oversampling": s, "seed": seed}
        out.append(Cell(params, " ".join(f"{k}={point[k]}" for k in vary)))
    return out


# Training step time of the preset at b = 30, batch 32, 2 threads (idle machine): 61 ms at
# s = 1, 147 ms at 2 (results/frontier_train/step_time.csv); scaled by (b/30)^3 and the batch.
_STEP_MS = {1.0: 61.0, 2.0: 147.0}


def estimate_training(cfg: dict[str, Any], cell: dict[str, Any]) -> tuple[float, float]:
    """Rough (seconds, peak bytes) of one training cell."""
    d, t = cfg["data"], cfg["train"]
    n_train, n_test = SPLIT_SIZES[d["dataset"]]
    n_train, n_test = min(n_train, d["n_train"] or n_train), min(n_test, d["n_test"] or n_test)
    # a nonlinearity costs about what the sampled ReLU costs on a grid of as many points
    model = build_model(model_spec(cfg, cell["activation"], cell["oversampling"], cell.get("nonlinearity")))
    native = math.prod(grid_shape(d["kind"], d["bandwidth"]))
    s = max([1.0] + [math.sqrt(math.prod(m.fine_grid(d["bandwidth"]).shape) / native)
                     for m in model.modules() if hasattr(m, "fine_grid")])
    lo, hi = max([k for k in _STEP_MS if k <= s], default=1.0), min([k for k in _STEP_MS if k >= s], default=2.0)
    step = _STEP_MS[lo] if hi == lo else _STEP_MS[lo] + (s - lo) / (hi - lo) * (_STEP_MS[hi] - _STEP_MS[lo])
    step *= max(s / 2, 1.0) ** 3 * (d["bandwidth"] / 30) ** 3 * t["batch_size"] / 32
    trainings = ("NR" in {x.split("/")[0] for x in cell["settings"]}) + ("R/R" in cell["settings"])
    seconds = trainings * t["epochs"] * math.ceil(n_train / t["batch_size"]) * step / 1e3
    nlat, nlon = (d["bandwidth"], 2 * d["bandwidth"] - 1) if d["kind"] == "gl" else (2 * d["bandwidth"],) * 2
    data = 4 * nlat * nlon * (n_train + 2 * n_test) * 2
    acts = 8 * t["batch_size"] * 64 * nlat * nlon * max(s, 1.0) ** 2 * 4
    return seconds, 400 * 2**20 + data + acts


def checkpoint_path(root: str | os.PathLike, value: str) -> Path:
    """Where the checkpoint a results row names lies: always in ``<root>/checkpoints`` (the row
    holds its name relative to the results directory, so a copied directory uses its own
    checkpoints, never the original's; rows written before hold a longer path, same file name)."""
    return Path(root) / "checkpoints" / Path(value).name


def verify_training_cell(c: Cell, df: pd.DataFrame, root: str | os.PathLike = ".") -> str | None:
    """Complete: one row per setting, every column, and the checkpoints it names exist in ``root``."""
    problem = check_grid(df, ["setting", "accuracy", "checkpoint", "cell_id", "train_time_s"], ["setting"],
                         {"setting": len(c.params["settings"])})
    if problem is None and set(df["setting"]) != set(c.params["settings"]):
        problem = f"settings {sorted(df['setting'])}, expected {sorted(c.params['settings'])}"
    missing = [p for p in df.get("checkpoint", []) if not checkpoint_path(root, p).is_file()]
    return problem or (f"checkpoint {checkpoint_path(root, missing[0])} missing" if missing else None)


def _train_cell(cfg: dict[str, Any], root: Path, progress: bool | None, c: Cell) -> pd.DataFrame:
    return run_training_cell(cfg, {**c.params, "cell_id": c.id}, root, progress)


def run_training_cell(cfg: dict[str, Any], cell: dict[str, Any], root: Path, progress: bool | None = None) -> pd.DataFrame:
    """Train the needed models of one cell (NR and/or R) and evaluate its settings."""
    from .data import projected_dataset  # noqa: PLC0415

    d, t = cfg["data"], cfg["train"]
    threads = torch.get_num_threads()
    torch.set_num_threads(t["threads"])
    try:
        def data(split: str, rotated: bool):
            x, y = projected_dataset(d["dataset"], split, bandwidth=d["bandwidth"], kind=d["kind"],
                                     rotation=d["rotation"] if rotated else "none", seed=cell["seed"])
            n = d["n_train"] if split == "train" else d["n_test"]
            return (x[:n], y[:n]) if n else (x, y)

        rows, states = [], []
        needs = {"NR": any(s.startswith("NR/") for s in cell["settings"]), "R": "R/R" in cell["settings"]}
        for train_rot, needed in needs.items():
            if not needed:
                continue
            with torch.random.fork_rng():
                torch.manual_seed(cell["seed"])
                model = build_model(model_spec(cfg, cell["activation"], cell["oversampling"], cell.get("nonlinearity")))
            xtr, ytr = data("train", train_rot == "R")
            # per-epoch state: an interrupted cell resumes its training where it stopped
            state = root / "partial" / f"{cell['cell_id']}-{train_rot}.state.pt"
            what = cell.get("nonlinearity") or f"{cell['activation']} s={cell['oversampling']:g}"
            losses = fit(model, xtr, ytr, t["epochs"], t["batch_size"], t["lr"], cell["seed"], t["weight_decay"],
                         progress, state_path=state,
                         desc=f"{cfg['name']}: {what} seed={cell['seed']}, {train_rot}-trained")
            train_s = fit_seconds(state)
            states.append(state)
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
                             "descriptor_invariance_error": inv, "checkpoint": str(ckpt.relative_to(root))})
    finally:
        torch.set_num_threads(threads)
    for state in states:  # the cell is complete: its checkpoints hold the models
        state.unlink(missing_ok=True)
    df = pd.DataFrame(rows)
    for k in ("experiment", "cell_id", "activation", "oversampling", "seed"):
        df[k] = cell[k]
    if cell.get("nonlinearity") is not None:
        df["nonlinearity"] = cell["nonlinearity"]
    df["steps"] = t["epochs"] * math.ceil(len(xtr) / t["batch_size"])  # per trained model
    df["dataset"], df["bandwidth"], df["epochs"] = d["dataset"], d["bandwidth"], t["epochs"]
    df["n_train"], df["n_test"] = len(xtr), len(xte)
    return df


def _descriptor_invariance(model: nn.Module, x: torch.Tensor, t: dict[str, Any], seed: int) -> float:
    """Median invariance error of the learned invariant (descriptor or SO(3) integration) on exact
    rotations of test inputs."""
    model.eval()
    xs = x[: t["invariance_inputs"]].double()
    m = copy.deepcopy(model).double()
    df = equivariance_error(m, xs, random_rotations(t["invariance_rotations"], seed=seed + 99), mode="cumulative",
                            project=True)
    return float(df[df["layer"].str.startswith(("descriptor", "integrate"))]["rel_error"].median())


def plan_training(config: str | os.PathLike | dict[str, Any]) -> pd.DataFrame:
    """The cells a training config would run, with rough time and peak-memory estimates."""
    cfg = load_train_config(config)
    return pd.DataFrame([{"cell_id": c.id, "cell": c.label, "est_seconds": estimate_training(cfg, c.params)[0],
                          "est_peak_gib": estimate_training(cfg, c.params)[1] / 2**30} for c in training_cells(cfg)])


def run_training(config: str | os.PathLike | dict[str, Any], out: str | os.PathLike | None = None,
                 progress: bool | None = None, fresh: bool = False) -> pd.DataFrame:
    """Run (or resume) every cell of a training config; results in ``results/<name>/`` (a
    directory that belongs to this config: another one there is refused unless ``fresh``)."""
    cfg = load_train_config(config)
    root = Path(out) if out is not None else Path("results") / cfg["name"]
    with ResultsDir(root, "train", cfg, fresh) as rd:
        if not isinstance(config, dict):
            rd.copy_in(Path(config), "config.toml")  # as written
        stamp = {**provenance("cpu"), "config_hash": config_hash(cfg)}
        run_cells(rd, training_cells(cfg), functools.partial(_train_cell, cfg, root, progress),
                  functools.partial(verify_training_cell, root=root), stamp, progress=progress, desc=cfg["name"])
    return load_results(root)


__all__ = ["SETTINGS", "checkpoint_path", "load_train_config", "model_spec", "training_cells", "plan_training", "fit",
           "evaluate_accuracy", "run_training", "run_training_cell"]

