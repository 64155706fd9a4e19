"""Sweeps: a TOML config -> validated cells -> any executor -> rows on disk as cells finish.

A config (see ``experiments/default.toml``)::

    name = "default"
    [axes]            # lists; every combination is one cell
    bandwidth = [8, 16]
    activation = ["relu", "tanh"]
    oversampling = [1.0, 2.0]
    kind = ["dh"]
    depth = [2]
    channels = [8]
    dtype = ["float64"]
    alpha = [0.0]     # input power spectrum per coefficient (1 + l)^-alpha; 0 = white
    seed = [0]
    [run]
    n_inputs = 4
    n_rotations = 8
    modes = ["cumulative", "isolated"]
    [model]           # per cell: depth x (conv(channels) -> pointwise(activation, oversampling))
    filter_params = 8 # optional: localized filters with 8 anchors
    pool = false      # a spectral pool (b -> b/2) after every block
    descriptor = true # an invariant descriptor at the end

A user's model instead of the built-in stack (``docs/config.md``)::

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
reads for the inputs (bandwidth, kind, dtype, alpha, seed). ``run_sweep(config, model_factory=fn)`` passes a
callable instead.

Everything is validated before any compute. ``run_sweep`` runs each cell independently (default
a local process pool; any ``concurrent.futures.Executor``, e.g. a Dask cluster's
``client.get_executor()``), writes each finished cell atomically, and on a rerun skips the cells
already on disk, so an interrupted sweep loses at most the cells in flight.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import functools
import hashlib
import importlib
import importlib.util
import inspect
import itertools
import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .aliasing import model_aliasing
from .equivariance import MODES, equivariance_error, random_signals
from .fields import field_from_table
from .lie import lie_derivative
from .grids import GRID_KINDS
from .layers import ACTIVATIONS
from .models import build_model
from .results import finished_cells, load_results, provenance, read_config, write_cell
from .rotations import random_rotations


def _ints(lo: int):
    def check(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= lo
    check.__doc__ = f"an int >= {lo}"
    return check


def _number_ge(lo: float):
    def check(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= lo
    check.__doc__ = f"a number >= {lo}"
    return check


def _one_of(values):
    def check(v: Any) -> bool:
        return v in values
    check.__doc__ = f"one of {sorted(values)}"
    return check


AXES: dict[str, tuple[Any, Any]] = {  # name: (validator, default)
    "bandwidth": (_ints(2), [16]),
    "activation": (_one_of(ACTIVATIONS), ["relu"]),
    "oversampling": (_number_ge(1.0), [1.0]),
    "kind": (_one_of(GRID_KINDS), ["dh"]),
    "depth": (_ints(1), [2]),
    "channels": (_ints(1), [4]),
    "dtype": (_one_of(("float32", "float64")), ["float64"]),
    "alpha": (_number_ge(0.0), [0.0]),
    "seed": (_ints(0), [0]),
}
RUN: dict[str, tuple[Any, Any]] = {
    "n_inputs": (_ints(1), 4),
    "n_rotations": (_ints(1), 8),
    "modes": (lambda v: isinstance(v, list) and len(v) > 0 and all(m in MODES for m in v), list(MODES)),
    "reference_factor": (_ints(2), 4),
    "timing_repeats": (_ints(1), 3),
    "lie_derivative": (lambda v: isinstance(v, bool), False),
    "device": (lambda v: isinstance(v, str) and v.split(":")[0] in ("cpu", "cuda"), "cpu"),
}
RUN["modes"][0].__doc__ = f"a non-empty list of {list(MODES)}"
RUN["device"][0].__doc__ = "'cpu' or 'cuda[:n]'"
RUN["lie_derivative"][0].__doc__ = "true or false"
MODEL: dict[str, tuple[Any, Any]] = {
    "filter_params": (_ints(1), None),
    "pool": (lambda v: isinstance(v, bool), False),
    "descriptor": (lambda v: isinstance(v, bool), True),
    "in_channels": (_ints(1), 1),
}
MODEL["pool"][0].__doc__ = MODEL["descriptor"][0].__doc__ = "true or false"
FACTORY_MODEL = {"factory", "input", "output", "layers", "in_channels"}
_INPUT_AXES = ("bandwidth", "kind", "dtype", "alpha", "seed")  # read by the harness for the inputs


def load_factory(spec: Any, base: Path | None = None) -> tuple[Any, str]:
    """``(callable, identity)`` for ``"package.module:function"``, ``"file.py:function"`` (relative
    to ``base``, the config's directory) or a callable; the identity is what the cells record."""
    if callable(spec):
        return spec, f"{spec.__module__}:{spec.__qualname__}"
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ValueError(f"model.factory: expected 'package.module:function' or 'file.py:function', got {spec!r}")
    mod, name = spec.split(":")
    if mod.endswith(".py"):
        path = Path(mod) if Path(mod).is_absolute() else (base or Path.cwd()) / mod
        path = path.resolve()
        if not path.is_file():
            raise ValueError(f"model.factory: no such file {path}")
        ident = f"{path}:{name}"
        loader = importlib.util.spec_from_file_location(f"harness_factory_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}", path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        ident = spec
        try:
            module = importlib.import_module(mod)
        except ImportError as e:
            raise ValueError(f"model.factory: cannot import {mod!r}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"model.factory: {mod} has no callable {name!r}")
    return fn, ident


def _check_table(table: Any, spec: dict[str, tuple[Any, Any]], where: str, axis: bool) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table, got {table!r}")
    unknown = set(table) - set(spec)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys are {sorted(spec)}")
    out = {}
    for key, (check, default) in spec.items():
        v = copy.deepcopy(table.get(key, default))
        values = (v if isinstance(v, list) else [v]) if axis else [v]
        if axis and not values:
            raise ValueError(f"{where}.{key}: expected a non-empty list")
        for item in values:
            if item is None and default is None:
                continue
            if not check(item):
                raise ValueError(f"{where}.{key}: expected {check.__doc__}, got {item!r}")
        out[key] = values if axis else v
    return out


def load_config(config: str | os.PathLike | dict[str, Any], model_factory: Any = None) -> dict[str, Any]:
    """Read (a TOML path or a dict) and validate a sweep config; returns the normalized dict.
    ``model_factory``: a callable that replaces ``[model] factory``."""
    base = None if isinstance(config, dict) else Path(config).resolve().parent
    config = read_config(config)
    unknown = set(config) - {"name", "description", "axes", "run", "model"}
    if unknown:
        raise ValueError(f"config: unknown key(s) {sorted(unknown)}; valid keys are "
                         "['axes', 'description', 'model', 'name', 'run']")
    name = config.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"config.name: expected a non-empty name without '/', got {name!r}")
    model = config.get("model", {})
    if model_factory is not None or (isinstance(model, dict) and "factory" in model):
        return _load_factory_config(config, name, model_factory, base)
    norm = {
        "name": name,
        "description": str(config.get("description", "")),
        "axes": _check_table(config.get("axes", {}), AXES, "axes", axis=True),
        "run": _check_table(config.get("run", {}), RUN, "run", axis=False),
        "model": _check_table(model, MODEL, "model", axis=False),
    }
    depth, pool, fp = max(norm["axes"]["depth"]), norm["model"]["pool"], norm["model"]["filter_params"]
    for b in norm["axes"]["bandwidth"]:
        if pool and b < 2**depth:
            raise ValueError(f"axes.bandwidth: {b} is too small to pool {depth} times (needs >= {2**depth})")
        smallest = b // 2 ** (depth - 1) if pool else b  # the bandwidth reaching the last conv
        if fp is not None and fp > smallest:
            raise ValueError(f"model.filter_params: {fp} exceeds the bandwidth {smallest} reaching the last"
                             f" conv layer when axes.bandwidth = {b}")
    return norm


def _load_factory_config(config: dict[str, Any], name: str, model_factory: Any, base: Path | None) -> dict[str, Any]:
    """A sweep over a user's model: ``[model] factory``, its input field and the axes it takes."""
    model = dict(config.get("model", {}))
    if model_factory is not None:
        model["factory"] = model_factory
    unknown = set(model) - FACTORY_MODEL
    if unknown:
        raise ValueError(f"model: unknown key(s) {sorted(unknown)} with a factory; valid keys are {sorted(FACTORY_MODEL)}")
    fn, ident = load_factory(model["factory"], base)
    axes_in = config.get("axes", {})
    if not isinstance(axes_in, dict):
        raise ValueError(f"axes: expected a table, got {axes_in!r}")
    known = {k: v for k, v in axes_in.items() if k in AXES}
    axes = _check_table(known, {k: AXES[k] for k in (*known, *_INPUT_AXES) if k in AXES}, "axes", axis=True)
    for k, v in axes_in.items():
        if k in AXES:
            continue
        values = v if isinstance(v, list) else [v]
        if not values or not all(isinstance(a, (int, float, str, bool)) for a in values):
            raise ValueError(f"axes.{k}: expected a non-empty list of numbers, strings or booleans, got {v!r}")
        axes[k] = values
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    # every axis it names goes to the factory; the harness's input axes may be left to the harness
    passed = [k for k in axes_in if takes_all or k in params]
    unused = [k for k in axes_in if k not in passed and k not in _INPUT_AXES]
    if unused:
        raise ValueError(f"model.factory: {ident} takes no argument {unused}: an axis nobody reads would make"
                         " identical cells")
    try:
        inspect.signature(fn).bind(**{k: axes[k][0] for k in passed})
    except TypeError as e:
        raise ValueError(f"model.factory: {ident} cannot be called with the axes {passed} as keyword"
                         f" arguments: {e}") from None
    if "input" not in model:
        raise ValueError("model.input: a factory model needs its input field, e.g. input = { field = \"S2Grid\","
                         " kind = \"dh\" } (bandwidth from the axis)")
    first = {k: v[0] for k, v in axes.items()}
    field_from_table(model["input"], first, "model.input")
    if model.get("output") is not None:
        field_from_table(model["output"], first, "model.output")
    layers = model.get("layers")
    if layers is not None and (not isinstance(layers, list) or not layers or not all(isinstance(n, str) for n in layers)):
        raise ValueError(f"model.layers: expected a non-empty list of submodule names, got {layers!r}")
    in_channels = model.get("in_channels")
    if in_channels is not None and not _ints(1)(in_channels):
        raise ValueError(f"model.in_channels: expected an int >= 1, got {in_channels!r}")
    return {"name": name, "description": str(config.get("description", "")), "axes": axes,
            "run": _check_table(config.get("run", {}), RUN, "run", axis=False),
            "model": {"factory": ident, "input": model["input"], "output": model.get("output"),
                      "layers": layers, "in_channels": in_channels, "factory_axes": passed}}


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def cells(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the axes, as self-contained cell dicts (with ``cell_id``)."""
    axes = config["axes"]
    keys = list(axes)
    out = []
    for values in itertools.product(*(axes[k] for k in keys)):
        cell = {"experiment": config["name"], **dict(zip(keys, values)), "run": config["run"],
                "model": config["model"]}
        cell["cell_id"] = hashlib.sha1(json.dumps(cell, sort_keys=True).encode()).hexdigest()[:12]
        out.append(cell)
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
    axes = {k: cell[k] for k in cell if k not in ("run", "model", "experiment", "cell_id")}
    out = field_from_table(m["output"], axes, "model.output") if m.get("output") else None
    return model.to(dtype), field_from_table(m["input"], axes, "model.input"), out, m.get("layers")


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
        model = model.to(device)
        x = field.random(run["n_inputs"], channels=cell["model"]["in_channels"], alpha=cell["alpha"],
                         seed=seed + 1, dtype=dtype).to(device)
        R = random_rotations(run["n_rotations"], seed=seed + 2, dtype=dtype).to(device)
        frames = [equivariance_error(model, x, R, input=field, output=out_field, layers=layers, mode=mode)
                  for mode in run["modes"]]
        df = pd.concat(frames, ignore_index=True)
        if run["lie_derivative"]:  # RMS over the three generators, per (mode, layer, input)
            lie = pd.concat([lie_derivative(model, x, input=field, output=out_field, layers=layers, mode=mode)
                             for mode in run["modes"]], ignore_index=True)
            lie = (lie.assign(ld2=lie["lie_derivative"] ** 2).groupby(["mode", "layer", "input"], as_index=False)["ld2"]
                   .mean().assign(lie_derivative=lambda d: np.sqrt(d["ld2"])).drop(columns="ld2"))
            df = df.merge(lie, on=["mode", "layer", "input"], how="left")
        alias = model_aliasing(model, x, input=field, reference_factor=run["reference_factor"])
        df = df.merge(alias, on=["layer", "input"], how="left")
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
    for k in ("experiment", "cell_id", *(k for k in cell if k not in ("run", "model", "experiment", "cell_id"))):
        df[k] = cell[k]
    df["n_inputs"], df["n_rotations"] = run["n_inputs"], run["n_rotations"]
    return df


def _default_executor(workers: int | None) -> cf.Executor:
    n = workers or max(1, min(2, os.cpu_count() or 1))
    return cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))


def run_sweep(config: str | os.PathLike | dict[str, Any], executor: cf.Executor | None = None,
              out: str | os.PathLike | None = None, workers: int | None = None,
              progress: bool | None = None, model_factory: Any = None) -> pd.DataFrame:
    """Run a sweep; returns all its rows (finished earlier or now) as one DataFrame.

    out: the results directory (default ``results/<name>``). executor: any
    ``concurrent.futures.Executor``; default a local process pool of ``workers`` (default 2).
    Cells already on disk are skipped; each finished cell is written atomically as it finishes.
    progress: a tqdm bar (None: only when stderr is a terminal). model_factory: a callable that
    builds the model from the cell's axes (replaces ``[model] factory``; it must be importable by
    the workers, i.e. defined at the top level of a module).
    """
    from tqdm.auto import tqdm

    cfg = load_config(config, model_factory)
    root = Path(out) if out is not None else Path("results") / cfg["name"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")  # as run
    if not isinstance(config, dict) and Path(config).resolve() != (root / "config.toml").resolve():
        shutil.copyfile(config, root / "config.toml")  # as written
    todo_all = cells(cfg)
    done = finished_cells(root)
    todo = [c for c in todo_all if c["cell_id"] not in done]
    prov = {**provenance(cfg["run"]["device"]), "config_hash": config_hash(cfg)}
    own = executor is None
    ex = _default_executor(workers) if own else executor
    bar = tqdm(total=len(todo_all), initial=len(todo_all) - len(todo), desc=cfg["name"], unit="cell",
               disable=None if progress is None else not progress)
    futures = {}
    try:
        task = run_cell if model_factory is None else functools.partial(run_cell, factory=model_factory)
        futures = {ex.submit(task, c): c for c in todo}
        for fut in cf.as_completed(futures):
            cell = futures[fut]
            df = fut.result()
            for k, v in prov.items():
                df[k] = v
            write_cell(root, cell["cell_id"], df)
            bar.update(1)
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    finally:
        bar.close()
        if own:
            ex.shutdown(wait=True, cancel_futures=True)
    return load_results(root)
