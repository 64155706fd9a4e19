"""Stored results: one Parquet file per finished sweep cell, provenance on every row.

Layout of a results directory (written by :mod:`harness.runs.runner`)::

    results/<experiment>/config.json        the normalized config the cells belong to
    results/<experiment>/cells/<id>.parquet one file per finished cell, written atomically
    results/<experiment>/figures/*.png      made by ``python -m harness plot`` from the files

pandas ``df.attrs`` do not survive ``concat``, so provenance is kept as columns.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .._version import __version__


@functools.lru_cache(maxsize=1)
def _git() -> tuple[str, bool]:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "harness"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return commit, dirty


def provenance(device: str = "cpu") -> dict[str, object]:
    """Columns stamped on every stored row (the per-cell ones, dtype/seed, come with the cell)."""
    commit, dirty = _git()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "harness_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def read_config(config: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """A config as a dict: a dict is returned as is; a TOML path is read, its ``name`` defaulting
    to the file's stem. Missing files and invalid TOML raise errors naming the file."""
    if isinstance(config, dict):
        return config
    if not isinstance(config, (str, os.PathLike)):
        raise TypeError(f"config: expected a TOML file's path or a dict, got {type(config).__name__}")
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"config: no such file {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"config: {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        out = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config: {path} is not valid TOML: {e}") from None
    out.setdefault("name", path.stem)
    return out


def load_results(path: str | os.PathLike, config_hash: str | None = None) -> pd.DataFrame:
    """All rows of a results directory (or of one Parquet file), concatenated.

    Rows of more than one config are never pooled silently: a directory whose cells carry several
    ``config_hash`` values is a ValueError naming them, unless ``config_hash`` selects one.
    """
    path = Path(path)
    if path.is_file():
        df = pd.read_parquet(path)
    else:
        files = sorted((path / "cells").glob("*.parquet")) if (path / "cells").is_dir() else []
        if not files:
            inner = sorted({f.parent.parent.name for f in path.glob("*/cells/*.parquet")})
            hint = (f"; it holds the results directories {inner} (e.g. {path / inner[0]}): its other files come"
                    f" from a script, not a sweep" if inner else "")
            raise FileNotFoundError(f"path: no results under {path} (expected {path}/cells/*.parquet){hint}")
        df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if "config_hash" in df:
        hashes = df["config_hash"].value_counts()
        if config_hash is not None:
            if config_hash not in hashes:
                raise ValueError(f"config_hash: {config_hash!r} is not among {path}'s configs {list(hashes.index)}")
            df = df[df["config_hash"] == config_hash].reset_index(drop=True)
        elif len(hashes) > 1:
            counts = ", ".join(f"{h} ({n} rows)" for h, n in hashes.items())
            raise ValueError(f"path: {path} holds rows of {len(hashes)} configs: {counts}; pass config_hash= to"
                             " choose one, or rerun the sweep with --fresh")
    return df
