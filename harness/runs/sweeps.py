"""Sweeps: a TOML config -> validated cells -> any executor -> rows on disk as cells finish.

A config (every key: ``docs/config.md``; see ``experiments/default.toml``)::

    name = "default"
    [axes]            # lists; every combination is one cell
    bandwidth = [8, 16]
    activation = ["relu", "tanh"]
    oversampling = [1.0, 2.0]
    kind = ["dh"]
    depth = [2]
    channels = [8]
    dtype = ["float64"]
    decay = [0.0]     # input power spectrum per coefficient (1 + l)^-decay; 0 = white
    seed = [0]
    [run]
    n_inputs = 4
    n_rotations = 8
    modes = ["cumulative", "isolated"]
    [model]           # per cell: depth x (conv(channels) -> pointwise(activation, oversampling))
    filter_params = 8 # optional: localized filters with 8 anchors
    pool = false      # a spectral pool (b -> b/2) after every block
    descriptor = true # an invariant descriptor at the end

A user's model instead of the built-in stack::

    [axes]
    bandwidth = [8, 16]
    res = [10, 20]               # any extra axis: the factory's keyword arguments
    [model]
    factory = "peers.py:make"    # "package.module:function", or a .py file next to the config
    input = { field = "S2Grid", kind = "dh" }   # bandwidth from the axis
    output = { field = "Invariant" }            # optional: the model output's field
    layers = ["block1", "block2"]               # optional: submodules to watch

The factory is called (under the cell's seed) with every axis of ``[axes]`` that it names as a
keyword argument and returns an ``nn.Module``; an axis it does not take must be one the harness
reads for the inputs (bandwidth, kind, dtype, decay, seed). ``run_sweep(config,
model_factory=fn)`` passes a callable instead.

Everything is validated before any compute, every problem reported at once. ``run_sweep`` runs
the cells through :mod:`harness.runs.runner` (one config per results directory, verified resume, a
lock, atomic writes, workers that die with their parent).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import importlib
import importlib.util
import inspect
import itertools
import math
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..measure.aliasing import model_aliasing
from ..measure.equivariance import CHUNK_BYTES, COLUMNS, MODES, equivariance_error
from ..measure.lie import lie_derivative
from ..nn.layers import ACTIVATIONS
from ..nn.models import build_model
from ..sphere.fields import FIELD_TYPES, field_from_table
from ..sphere.grids import GRID_KINDS
from ..sphere.so3 import random_rotations
from ..sphere.transforms import plan_bytes
from ..util.memory import available_bytes, gib
from ..util.schema import (REQUIRED, Bool, Choice, ConfigError, Custom, Int, ListOf, Name, Number, Optional, Str,
                           Table, describe, validate)
from .results import load_results, provenance, read_config
from .runner import Cell, ResultsDir, check_grid, config_hash, run_cells

# --------------------------------------------------------------------------- the schema
AXES: dict[str, tuple[Any, list]] = {  # name: (item spec, default)
    "bandwidth": (Int(2), [16]),
    "activation": (Choice(ACTIVATIONS), ["relu"]),
    "oversampling": (Number(1.0), [1.0]),
    "kind": (Choice(GRID_KINDS), ["dh"]),
    "depth": (Int(1), [2]),
    "channels": (Int(1), [4]),
    "dtype": (Choice(("float32", "float64")), ["float64"]),
    "decay": (Number(0.0), [0.0]),
    "seed": (Int(0), [0]),
    "rotations": (Choice(("haar", "grid_z")), ["haar"]),
}
INPUT_AXES = ("bandwidth", "kind", "dtype", "decay", "seed", "rotations")  # read by the harness for the inputs
#: Keys that are not stored when at their default, so results of configs written before they
#: existed stay resumable: (section, key, default).
UNSTORED_DEFAULTS = (("axes", "rotations", ["haar"]), ("run", "paired", False))
MODEL_AXES = ("activation", "oversampling", "depth", "channels")  # the built-in stack's


def _device(v: Any, where: str, problems: list[str]) -> Any:
    if isinstance(v, str) and (v == "cpu" or v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit())):
        if v != "cpu" and not torch.cuda.is_available():
            problems.append(f"{where}: {v!r} asked for, but this machine has no CUDA device (torch"
                            f" {torch.__version__}); use 'cpu'")
            return None
        if v.startswith("cuda:") and int(v[5:]) >= torch.cuda.device_count():
            problems.append(f"{where}: {v!r} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
            return None
        return v
    problems.append(f"{where}: expected 'cpu', 'cuda' or 'cuda:<n>', got {describe(v)}")
    return None


RUN = Table({
    "n_inputs": (Int(1), 4),
    "n_rotations": (Int(1), 8),
    "modes": (ListOf(Choice(MODES)), lambda: list(MODES)),
    "reference_factor": (Int(2), 4),
    "timing_repeats": (Int(1), 3),
    "device": (Custom(_device, "'cpu' or 'cuda[:n]'"), "cpu"),
    "lie_derivative": (Bool(), False),
    "paired": (Bool(), False),  # input i under rotation i only (Cohen et al.'s protocol; n_inputs = n_rotations)
})
BUILTIN_MODEL = Table({
    "filter_params": (Optional(Int(1)), None),
    "pool": (Bool(), False),
    "descriptor": (Bool(), True),
    "in_channels": (Int(1), 1),
})


def _field_table(v: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(v, dict) or v.get("field") not in FIELD_TYPES:
        problems.append(f"{where}: expected a field table, e.g. {{ field = \"S2Grid\", kind = \"dh\" }} (field one of"
                        f" {list(FIELD_TYPES)}), got {describe(v)}")
        return None
    return dict(v)


FACTORY_MODEL = Table({
    "factory": (Custom(lambda v, w, p: v if isinstance(v, str) or callable(v) else
                       p.append(f"{w}: expected 'package.module:function' or 'file.py:function', got {describe(v)}"),
                       "a factory"), REQUIRED),
    "input": (Custom(_field_table, "a field table"), REQUIRED),
    "output": (Optional(Custom(_field_table, "a field table")), None),
    "layers": (Optional(ListOf(Str(), scalar_ok=False)), None),
    "in_channels": (Optional(Int(1)), None),
})


def _scalar(v: Any, where: str, problems: list[str]) -> Any:
    if isinstance(v, bool) or isinstance(v, str) or (isinstance(v, int)):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return v
    problems.append(f"{where}: expected a number, a string or a boolean, got {describe(v)}")
    return None


def _sweep_schema(factory: bool) -> Table:
    axes = {k: (ListOf(spec), default) for k, (spec, default) in AXES.items()}
    if factory:  # only the harness's input axes get defaults; any other axis goes to the factory
        axes = {k: (s, d if k in INPUT_AXES else None) for k, (s, d) in axes.items()}
    return Table({
        "name": (Name(), REQUIRED),
        "description": (Str(), ""),
        "axes": (Table(axes, extra=ListOf(Custom(_scalar, "a scalar")) if factory else None,
                       renamed={"alpha": "decay"}), dict),
        "run": (RUN, dict),
        "model": (FACTORY_MODEL if factory else BUILTIN_MODEL, dict),
    })


# --------------------------------------------------------------------------- user factories
def load_factory(spec: Any, base: Path | None = None) -> tuple[Any, str]:
    """``(callable, identity)`` for ``"package.module:function"``, ``"file.py:function"`` (relative
    to ``base``, the config's directory) or a callable; the identity is what the cells record."""
    if callable(spec):
        return spec, f"{spec.__module__}:{spec.__qualname__}"
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ConfigError([f"model.factory: expected 'package.module:function' or 'file.py:function', got {spec!r}"])
    mod, name = spec.split(":")
    if mod.endswith(".py"):
        path = (Path(mod) if Path(mod).is_absolute() else (base or Path.cwd()) / mod).resolve()
        if not path.is_file():
            raise ConfigError([f"model.factory: no such file {path}"])
        ident = f"{path}:{name}"
        loader = importlib.util.spec_from_file_location(
            f"harness_factory_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}", path)
        module = importlib.util.module_from_spec(loader)
        try:
            loader.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - the user's file: name it and what it raised
            where = f", line {e.lineno}" if isinstance(e, SyntaxError) else ""
            raise ConfigError([f"model.factory: importing {path}{where} failed: {type(e).__name__}: {e}"]) from None
    else:
        ident = spec
        try:
            module = importlib.import_module(mod)
        except Exception as e:  # noqa: BLE001 - an ImportError, or the module's own error at import
            raise ConfigError([f"model.factory: cannot import {mod!r}: {type(e).__name__}: {e}"]) from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError([f"model.factory: {mod} has no callable {name!r}"])
    return fn, ident


def _check_factory(cfg: dict[str, Any], written: list[str], problems: list[str], base: Path | None) -> None:
    m = cfg["model"]
    try:
        fn, ident = load_factory(m["factory"], base)
    except ConfigError as e:
        problems += e.problems
        return
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    passed = [k for k in written if takes_all or k in params]
    unused = [k for k in written if k not in passed and k not in INPUT_AXES]
    if unused:
        problems.append(f"model.factory: {ident} takes no argument {unused}: an axis nobody reads would make"
                        " identical cells")
    try:
        inspect.signature(fn).bind(**{k: cfg["axes"][k][0] for k in passed})
    except TypeError as e:
        problems.append(f"model.factory: {ident} cannot be called with the axes {passed} as keyword arguments: {e}")
    first = {k: v[0] for k, v in cfg["axes"].items() if v}
    for key in ("input", "output"):
        if m[key] is not None:
            try:
                field_from_table(m[key], first, f"model.{key}")
            except (ValueError, TypeError) as e:
                problems.append(str(e))
    m["factory"], m["factory_axes"] = ident, passed


def load_config(config: str | os.PathLike | dict[str, Any], model_factory: Any = None) -> dict[str, Any]:
    """Read (a TOML path or a dict) and validate a sweep config; returns the normalized dict.
    ``model_factory``: a callable that replaces ``[model] factory``. Raises
    :class:`~harness.util.schema.ConfigError` listing every problem."""
    raw = dict(read_config(config))  # validates the argument's type first
    base = None if isinstance(config, dict) else Path(config).resolve().parent
    model = raw.get("model", {})
    factory = model_factory is not None or (isinstance(model, dict) and "factory" in model)
    if model_factory is not None:
        raw["model"] = {**(model if isinstance(model, dict) else {}), "factory": model_factory}
    written = [{"alpha": "decay"}.get(k, k) for k in raw.get("axes", {})] if isinstance(raw.get("axes"), dict) else []

    def cross(cfg: dict[str, Any], problems: list[str]) -> None:
        if cfg["run"]["paired"] and cfg["run"]["n_inputs"] != cfg["run"]["n_rotations"]:
            problems.append(f"run.paired: pairs input i with rotation i, so n_inputs and n_rotations must be equal,"
                            f" got {cfg['run']['n_inputs']} and {cfg['run']['n_rotations']}")
        for section, key, default in UNSTORED_DEFAULTS:
            if cfg[section].get(key, default) == default:
                cfg[section].pop(key, None)
        if factory:
            cfg["axes"] = {k: v for k, v in cfg["axes"].items() if v is not None}
            _check_factory(cfg, written, problems, base)
            return
        ax, m = cfg["axes"], cfg["model"]
        depth, pool, fp = max(ax["depth"]), m["pool"], m["filter_params"]
        for b in ax["bandwidth"]:
            if pool and b < 2**depth:
                problems.append(f"axes.bandwidth: {b} is too small to pool {depth} times (needs >= {2**depth})")
            smallest = b // 2 ** (depth - 1) if pool else b  # the bandwidth reaching the last conv
            if fp is not None and fp > smallest:
                problems.append(f"model.filter_params: expected at most the bandwidth {smallest} reaching the last"
                                f" conv layer when axes.bandwidth = {b}, got {fp}")
        avail = available_bytes()
        if avail is not None and not problems:
            worst = max(cells(cfg), key=lambda c: estimate_cell(c.params)[1])
            peak = estimate_cell(worst.params)[1]
            if peak > avail:
                problems.append(f"axes: the largest cell ({worst.label}) needs about {gib(peak)}, but only"
                                f" {gib(avail)} of memory is available (bandwidth, channels and oversampling count)")

    return validate(_sweep_schema(factory), raw, "", cross)


# --------------------------------------------------------------------------- cells
def cells(config: dict[str, Any]) -> list[Cell]:
    """Every combination of the axes, as cells whose ``params`` are self-contained."""
    axes = config["axes"]
    keys = list(axes)
    out = []
    for values in itertools.product(*(axes[k] for k in keys)):
        point = dict(zip(keys, values))
        params = {"experiment": config["name"], **point, "run": config["run"], "model": config["model"]}
        varying = [k for k in keys if len(axes[k]) > 1] or keys
        out.append(Cell(params, " ".join(f"{k}={point[k]}" for k in varying)))
    return out


def cell_model_spec(cell: dict[str, Any]) -> dict[str, Any]:
    m = cell["model"]
    layers: list[dict[str, Any]] = []
    for _ in range(cell["depth"]):
        layers.append({"type": "conv", "out_channels": cell["channels"], "filter_params": m["filter_params"]})
        layers.append({"type": "pointwise", "activation": cell["activation"], "oversampling": cell["oversampling"]})
        if m["pool"]:
            layers.append({"type": "pool"})
    if m["descriptor"]:
        layers.append({"type": "descriptor"})
    return {"in_channels": m["in_channels"], "bandwidth": cell["bandwidth"], "kind": cell["kind"], "layers": layers}


def n_layers(cell: dict[str, Any]) -> int | None:
    """Watched layers of a cell's model (None: a factory's, known only once built)."""
    m = cell["model"]
    return None if "factory" in m else cell["depth"] * (2 + m["pool"]) + m["descriptor"]


# Forward time per input of the built-in stack, fitted to the default sweep's forward_ms (one
# thread, 2-core VM): 1.2e-8 ms per b^3 and 4.7e-5 ms per b^2 of every map transformed, plus
# 0.15 ms; within 0.74-1.24x of the measured value for 90% of its 120 cells.
_FWD_MS = (1.2e-8, 4.7e-5, 0.15)
# Whole-cell time per forward pass of all inputs (rotations, transforms of the outputs,
# comparisons, aliasing, Lie derivative) and a fixed cost per cell, fitted to the default sweep's
# cell_seconds: 0.45-1.26x of the measured time per cell (5-95%), the total within 10%.
_CELL_PER_FORWARD = 2.07
_CELL_FIXED_S = 0.17
_BASE_BYTES = 400 * 2**20  # a worker: python, torch, harness


def estimate_cell(cell: dict[str, Any]) -> tuple[float, float]:
    """Rough (seconds, peak bytes) of one built-in cell on one thread (factories: unknown, 0)."""
    if "factory" in cell["model"]:
        return 0.0, float(_BASE_BYTES)
    b, s, depth, ch = cell["bandwidth"], cell["oversampling"], cell["depth"], cell["channels"]
    bf = math.ceil(s * b - 1e-9)
    maps = depth * ch * 2 + ch
    fine = depth * ch * (4 if s > 1 else 0)
    fwd_ms = (_FWD_MS[0] * (maps * b**3 + fine / 2 * (b**3 + bf**3)) + _FWD_MS[1] * (maps * b**2 + fine / 2 * (b**2 + bf**2))
              + _FWD_MS[2])
    run = cell["run"]
    n, k = run["n_inputs"], run["n_rotations"]
    passes = len(run["modes"]) * (1 + k) + run["timing_repeats"] + 2 + (6 * len(run["modes"]) if run["lie_derivative"] else 0)
    seconds = fwd_ms / 1e3 * n * passes * _CELL_PER_FORWARD + _CELL_FIXED_S
    item = 4 if cell["dtype"] == "float32" else 8
    grid_bytes = (4 * bf * bf) * ch * item  # one channel stack on the finest grid
    tables = plan_bytes(cell["kind"], b) + (plan_bytes(cell["kind"], bf) if bf != b else 0) + 6 * b**3
    per_pair = (depth * 3 + 2) * grid_bytes
    # the convolutions' filters: [C_out, C_in, K] float32 weights, cast to the cell's dtype, and the
    # interpolation to [C_out, C_in, b] on every call (quadratic in the channels: 100,000 channels
    # need ~300 GiB, which the grids alone never show)
    K = cell["model"]["filter_params"] or b
    cin = cell["model"]["in_channels"]
    params = (ch * cin + (depth - 1) * ch * ch) * (4 * K + item * (K + 2 * b))
    peak = _BASE_BYTES + tables + params + min(CHUNK_BYTES, n * k * per_pair) * 2 + n * per_pair
    return seconds, float(peak)


# --------------------------------------------------------------------------- one cell
def _build(cell: dict[str, Any], factory: Any, dtype: torch.dtype) -> tuple[Any, Any, Any, list | None]:
    """The cell's model (seeded), its input field, output field and watched layers."""
    m = cell["model"]
    with torch.random.fork_rng():
        torch.manual_seed(int(cell["seed"]))
        if "factory" not in m:
            model = build_model(cell_model_spec(cell))
            return model.to(dtype), model.input_field(), None, None
        fn = factory or load_factory(m["factory"])[0]
        model = fn(**{k: cell[k] for k in m["factory_axes"]})
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model.factory: {m['factory']} returned a {type(model).__name__}, not an nn.Module")
    axes = {k: cell[k] for k in cell if k not in ("run", "model", "experiment")}
    out = field_from_table(m["output"], axes, "model.output") if m.get("output") else None
    return model.to(dtype), field_from_table(m["input"], axes, "model.input"), out, m.get("layers")


def cell_rotations(cell: dict[str, Any], dtype: torch.dtype) -> torch.Tensor:
    """``[n_rotations, 3, 3]``: Haar-random, or (``rotations = "grid_z"``) rotations about z by
    random multiples k = 1..2b-1 of 2 pi / (2b), which permute the longitudes of every 2b x 2b
    grid (and the alpha axis of the SO(3) grid): a baseline where any error is the instrument's."""
    n, seed = cell["run"]["n_rotations"], int(cell["seed"])
    if cell.get("rotations", "haar") == "haar":
        return random_rotations(n, seed=seed + 2, dtype=dtype)
    b = int(cell["bandwidth"])
    k = torch.randint(1, 2 * b, (n,), generator=torch.Generator().manual_seed(seed + 2))
    t = (2 * math.pi / (2 * b)) * k.double()
    c, s_ = torch.cos(t), torch.sin(t)
    R = torch.zeros(n, 3, 3, dtype=torch.float64)
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s_, s_, c, 1.0
    return R.to(dtype)


#: Columns that may be NaN without a flag: aliasing is measured for nonlinearities only, and the
#: Lie derivative when asked.
OPTIONAL = ("out_of_band", "aliasing_error", "reference_bandwidth", "lie_derivative")


def run_cell(cell: dict[str, Any], factory: Any = None) -> pd.DataFrame:
    """One cell: build the seeded model, inputs and rotations, measure. Pure: the same cell gives
    the same numbers on the same machine (one thread, float64). ``factory``: the callable behind
    ``cell["model"]["factory"]`` when it was passed directly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dtype = getattr(torch, cell["dtype"])
        seed, run = int(cell["seed"]), cell["run"]
        device = torch.device(run.get("device", "cpu"))
        model, field, out_field, layers = _build(cell, factory, dtype)
        model = model.to(device).eval()  # measured in eval mode: say so by putting it there
        x = field.random(run["n_inputs"], channels=cell["model"]["in_channels"], decay=cell["decay"],
                         seed=seed + 1, dtype=dtype).to(device)
        R = cell_rotations(cell, dtype).to(device)
        frames = [equivariance_error(model, x, R, input=field, output=out_field, layers=layers, mode=mode,
                                     paired=run.get("paired", False)) for mode in run["modes"]]
        df = pd.concat(frames, ignore_index=True)
        if run["lie_derivative"]:  # RMS over the three generators, per (mode, layer, input)
            lie = pd.concat([lie_derivative(model, x, input=field, output=out_field, layers=layers, mode=mode)
                             for mode in run["modes"]], ignore_index=True)
            lie = (lie.assign(ld2=lie["lie_derivative"] ** 2).groupby(["mode", "layer", "input"], as_index=False)["ld2"]
                   .mean().assign(lie_derivative=lambda d: np.sqrt(d["ld2"])).drop(columns="ld2"))
            df = df.merge(lie, on=["mode", "layer", "input"], how="left")
        alias = model_aliasing(model, x, input=field, reference_factor=run["reference_factor"])
        df = df.merge(alias.rename(columns={"flag": "aliasing_flag"}), on=["layer", "input"], how="left")
        extra = df.pop("aliasing_flag").fillna("")  # a row's flag says why any of its numbers is NaN
        df["flag"] = df["flag"].where(df["flag"] != "", extra)
        times = []
        with torch.no_grad():
            for _ in range(run["timing_repeats"] + 1):
                t0 = time.perf_counter()
                model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - t0)
        df["forward_ms"] = 1e3 * float(np.median(times[1:])) / x.shape[0]  # per input
    finally:
        torch.set_num_threads(threads)
    for k in ("experiment", *(k for k in cell if k not in ("run", "model", "experiment"))):
        df[k] = cell[k]
    df["n_inputs"], df["n_rotations"] = run["n_inputs"], run["n_rotations"]
    return df


def _compute(c: Cell, factory: Any = None) -> pd.DataFrame:
    return run_cell(c.params, factory).assign(cell_id=c.id)


def verify_cell(c: Cell, df: pd.DataFrame) -> str | None:
    """A sweep cell is complete: every column, every (mode, layer, input, rotation) once, the
    model's number of layers, and no NaN outside the optional columns unless flagged."""
    run = c.params["run"]
    paired = run.get("paired", False)
    expected = {"mode": len(run["modes"]), "input": run["n_inputs"], "rotation": run["n_rotations"]}
    if n_layers(c.params) is not None:
        expected["layer"] = n_layers(c.params)
    keys = ["mode", "layer", "input"] if paired else ["mode", "layer", "input", "rotation"]
    problem = check_grid(df, [*COLUMNS, "cell_id", "forward_ms"], keys, expected)
    if problem is not None:
        return problem
    if paired and "rotation" in df and not (df["rotation"] == df["input"]).all():
        return "paired rows whose rotation is not their input's"
    numeric = df.select_dtypes("number").drop(columns=[k for k in OPTIONAL if k in df], errors="ignore")
    unflagged = numeric.isna().any(axis=1) & (df["flag"] == "")
    if unflagged.any():
        cols = sorted(numeric.columns[numeric[unflagged].isna().any()])
        return f"{int(unflagged.sum())} rows with NaN in {cols} and no flag"
    return None


# --------------------------------------------------------------------------- the sweep
def plan_sweep(config: str | os.PathLike | dict[str, Any], model_factory: Any = None) -> pd.DataFrame:
    """The cells a sweep would run, with rough time and peak-memory estimates (``--dry-run``)."""
    cfg = load_config(config, model_factory)
    rows = []
    for c in cells(cfg):
        sec, peak = estimate_cell(c.params)
        rows.append({"cell_id": c.id, "cell": c.label, "est_seconds": sec, "est_peak_gib": peak / 2**30})
    return pd.DataFrame(rows)


def run_sweep(config: str | os.PathLike | dict[str, Any], executor: cf.Executor | None = None,
              out: str | os.PathLike | None = None, workers: int | None = None,
              progress: bool | None = None, model_factory: Any = None, fresh: bool = False) -> pd.DataFrame:
    """Run (or resume) a sweep; returns all its rows as one DataFrame.

    out: the results directory (default ``results/<name>``); it belongs to this config: another
    config there is refused, naming the differing keys, unless ``fresh=True`` replaces it.
    executor: any ``concurrent.futures.Executor``; default a pool of ``workers`` processes
    (default 2) that die with this process. progress: tqdm on a terminal, one line per cell
    otherwise (None: on; False: silent). model_factory: a callable that builds the model from
    the cell's axes (replaces ``[model] factory``; it must be importable by the workers).
    """
    cfg = load_config(config, model_factory)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
    root = Path(out) if out is not None else Path("results") / cfg["name"]
    chash = config_hash(cfg)
    compute = _compute if model_factory is None else functools.partial(_compute, factory=model_factory)
    n_workers = max(1, min(2, os.cpu_count() or 1)) if workers is None and executor is None else workers
    if model_factory is not None and executor is None and (n_workers or 1) > 1:
        try:  # the process pool pickles it: say so before any cell runs, not with pickle's words
            pickle.dumps(model_factory)
        except Exception as e:  # noqa: BLE001 - pickling errors come in several types
            raise ValueError(f"model_factory: {model_factory!r} cannot be sent to the worker processes ({e});"
                             " define it at module level, or run with workers=1 or"
                             " executor=concurrent.futures.ThreadPoolExecutor()") from None
    with ResultsDir(root, "sweep", cfg, fresh) as rd:
        if not isinstance(config, dict):
            rd.copy_in(Path(config), "config.toml")  # as written
        stamp = {**provenance(cfg["run"]["device"]), "config_hash": chash}
        run_cells(rd, cells(cfg), compute, verify_cell, stamp, executor=executor, workers=n_workers,
                  progress=progress, desc=cfg["name"])
    return load_results(root)


__all__ = ["AXES", "load_config", "cells", "cell_rotations", "plan_sweep", "run_sweep", "run_cell", "estimate_cell", "verify_cell",
           "load_factory"]
