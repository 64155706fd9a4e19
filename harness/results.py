"""Stored results: one Parquet file per finished sweep cell, provenance on every row.

Layout of a results directory::

    results/<experiment>/config.toml        the sweep's config, as run
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
    from . import __version__

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
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"config: no such file {path}")
    with open(path, "rb") as f:
        try:
            out = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"config: {path} is not valid TOML: {e}") from None
    out.setdefault("name", path.stem)
    return out


def cell_path(root: Path, cell_id: str) -> Path:
    return Path(root) / "cells" / f"{cell_id}.parquet"


def write_cell(root: Path, cell_id: str, df: pd.DataFrame) -> Path:
    """Write one cell's rows atomically (temporary file, then ``os.replace``)."""
    path = cell_path(root, cell_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def finished_cells(root: Path) -> set[str]:
    """Ids of the cells whose file exists and reads back; a corrupt file is deleted (recomputed)."""
    done = set()
    cells = Path(root) / "cells"
    if not cells.is_dir():
        return done
    for p in cells.glob("*.parquet"):
        try:
            pd.read_parquet(p, columns=["cell_id"])
        except Exception:  # noqa: BLE001 - any unreadable file is recomputed, never used
            p.unlink(missing_ok=True)
            continue
        done.add(p.stem)
    for p in cells.glob(".*.tmp"):  # leftovers of a killed writer
        p.unlink(missing_ok=True)
    return done


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """All rows of a results directory (or of one Parquet file), concatenated."""
    path = Path(path)
    if path.is_file():
        return pd.read_parquet(path)
    files = sorted((path / "cells").glob("*.parquet")) if (path / "cells").is_dir() else []
    if not files:
        raise FileNotFoundError(f"path: no results under {path} (expected {path}/cells/*.parquet)")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
