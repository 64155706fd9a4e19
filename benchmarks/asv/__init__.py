"""airspeed velocity (asv) benchmarks of harness, run over the project's history.

Configured by ``asv.conf.json`` at the repository root; results are committed in ``results/asv``.
Every suite keeps the default parameter grids small so a run over the whole history stays short;
``HARNESS_ASV_FULL=1`` in the environment selects the full grids. Every ``setup`` sets one torch
thread (noise on a small shared machine is large; compare runs with ``asv continuous --factor``).

The suites look harness up inside ``setup``: on an old commit where a module or function does not
exist yet, ``setup`` raises ``NotImplementedError``, which asv records as skipped (n/a).
"""

from __future__ import annotations

import importlib
import os

# Imported once here: with ``launch_method: forkserver`` (asv.conf.json) asv pre-imports this
# package in a server process and forks each benchmark from it, so torch (and harness, where it
# imports at this commit) is not re-imported for every benchmark and parameter.
import torch

try:
    import harness  # noqa: F401
except Exception:  # an old commit, or a broken one: each setup reports it
    pass

FULL = os.environ.get("HARNESS_ASV_FULL", "") == "1"


def grid(default, full):
    """The default parameter list, or the full one under ``HARNESS_ASV_FULL=1``."""
    return list(full if FULL else default)


def require(module: str | tuple[str, ...] = "harness", *names: str):
    """Import ``module`` (one thread for torch) — or the first importable of several paths, as
    modules moved over the history (``harness.sweeps`` became ``harness.runs.sweeps``);
    NotImplementedError (asv: skip) if none is, or any of ``names`` is missing at this commit."""
    torch.set_num_threads(1)
    candidates = (module,) if isinstance(module, str) else module
    for i, path in enumerate(candidates):
        try:
            mod = importlib.import_module(path)
            module = path
            break
        except ImportError as e:
            if i == len(candidates) - 1:
                raise NotImplementedError(f"{candidates} are not importable at this commit: {e}") from None
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise NotImplementedError(f"{module} has no {', '.join(missing)} at this commit")
    return mod
