"""The experiment runner under sweeps and training: cells, one config per results directory,
verified resume, a lock, atomic writes, workers that die with their parent, progress.

Layout of a results directory::

    <root>/config.json          {"kind": "sweep" | "train", "config": the normalized config}
    <root>/.lock                held (flock) by the one process running cells here
    <root>/cells/<id>.parquet   one file per finished cell, written atomically

* A directory belongs to one config: running another config there is refused, naming the keys
  that differ, unless ``fresh`` (which deletes the old cells first).
* A cell's id is a hash of its normalized parameters (so 1 and 1.0 are one cell).
* On resume every cell file is verified (readable, the expected columns, the rows its ``verify``
  function expects); a bad one is recomputed and reported in one line.
* Temporary files carry their writer's host and pid; only a dead writer's leftovers are removed.
* Pool workers get SIGKILL when their parent dies (Linux ``PR_SET_PDEATHSIG``) and watch their
  parent's pid otherwise, so killing the main process alone leaves no worker behind.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..util.schema import diff


class RunnerError(RuntimeError):
    """A results directory that cannot be used as asked (locked, or holding another config)."""


def cell_id(params: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class Cell:
    """One unit of work: ``params`` (JSON, hashed into ``id``), a short ``label`` for progress."""

    params: dict[str, Any]
    label: str
    id: str = field(init=False)

    def __post_init__(self) -> None:
        self.id = cell_id(self.params)


# --------------------------------------------------------------------------- the directory
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


class ResultsDir:
    """A results directory opened for running one config (a context manager holding its lock)."""

    def __init__(self, root: str | os.PathLike, kind: str, config: dict[str, Any], fresh: bool = False) -> None:
        self.root, self.kind, self.config, self.fresh = Path(root), kind, config, fresh
        self.cells = self.root / "cells"
        self._lock_fd: int | None = None
        self.host = socket.gethostname()

    # -- lock
    def __enter__(self) -> ResultsDir:
        if self.root.exists() and not self.root.is_dir():
            raise RunnerError(f"out: {self.root} is a file, not a results directory; give a directory path")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunnerError(f"out: {self.root} is in use by another run ({holder}); wait for it, or use"
                              " another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {self.host}, since {time.strftime('%Y-%m-%d %H:%M:%S')},"
                      f" command: {' '.join(sys.argv)[:300]}".encode(), 0)
        self._lock_fd = fd
        try:
            self._claim()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _claim(self) -> None:
        """Refuse a directory that holds another config (unless fresh); record ours."""
        path = self.root / "config.json"
        mine = {"kind": self.kind, "config": self.config}
        others = sorted(p.name for p in self.root.iterdir() if p.name != ".lock")
        if others and not (is_harness_config(path) or self.cells.is_dir()):  # never write over what the harness did not write
            shown = ", ".join(others[:6]) + (f" and {len(others) - 6} more" if len(others) > 6 else "")
            raise RunnerError(f"out: {self.root} holds files the harness did not write ({shown}), and no results"
                              " config.json of its own; give a new or empty directory (nothing was changed)")
        if path.exists() and not self.fresh:
            try:
                theirs = json.loads(path.read_text())
            except (OSError, ValueError):
                theirs = None
            if theirs is None or not isinstance(theirs, dict) or "config" not in theirs:
                if any(self.cells.glob("*.parquet")):
                    raise RunnerError(f"out: {self.root} holds results whose config.json is unreadable or of an older"
                                      " format; rerun with --fresh (fresh=True) to replace them, or use another directory")
            elif theirs != mine:
                keys = diff(theirs, mine)
                raise RunnerError(f"out: {self.root} holds results of another config (differing keys: {keys}); rerun"
                                  " with --fresh (fresh=True) to replace them, or use another directory")
        if self.fresh:
            for sub in ("cells", "checkpoints", "partial", "figures"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
        self.cells.mkdir(parents=True, exist_ok=True)
        self._atomic_write_text(path, json.dumps(mine, indent=2, sort_keys=True) + "\n")
        self._remove_dead_temporaries()

    # -- files
    def cell_path(self, cid: str) -> Path:
        return self.cells / f"{cid}.parquet"

    def _tmp(self, final: Path) -> Path:
        return final.with_name(f".{final.name}.{self.host}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")

    def _atomic_write_text(self, path: Path, text: str) -> None:
        tmp = self._tmp(path)
        tmp.write_text(text)
        os.replace(tmp, path)

    def _remove_dead_temporaries(self) -> None:
        for d in (self.root, self.cells):
            for p in d.glob(".*.tmp"):
                parts = p.name.split(".")
                try:
                    host, pid = parts[-4], int(parts[-3])
                except (IndexError, ValueError):
                    continue  # not ours to judge
                if host == self.host and not _pid_alive(pid):
                    p.unlink(missing_ok=True)

    def copy_in(self, source: Path, name: str) -> None:
        """Keep a copy of ``source`` (the config as written) as ``<root>/<name>``."""
        if source.resolve() != (self.root / name).resolve():
            self._atomic_write_text(self.root / name, source.read_text())

    def write(self, cid: str, df: pd.DataFrame) -> Path:
        path = self.cell_path(cid)
        tmp = self._tmp(path)
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        return path

    def finished(self, cells: Sequence[Cell], verify: Callable[[Cell, pd.DataFrame], str | None]
                 ) -> tuple[set[str], list[str]]:
        """Ids of the cells whose file is complete, and one line per file that is not (deleted)."""
        done, notes = set(), []
        for c in cells:
            p = self.cell_path(c.id)
            if not p.exists():
                continue
            try:
                df = pd.read_parquet(p)
                ids = set(df["cell_id"].astype(str)) if "cell_id" in df else {c.id}
                problem = (f"its rows belong to cell {sorted(ids - {c.id})[0]}" if ids != {c.id}
                           else verify(c, df))
            except Exception as e:  # noqa: BLE001 - any unreadable file is recomputed, never used
                problem = f"unreadable ({type(e).__name__})"
            if problem is None:
                done.add(c.id)
            else:
                notes.append(f"cell {c.id} ({c.label}): {problem}; recomputing it")
                p.unlink(missing_ok=True)
        return done, notes


def is_harness_config(path: Path) -> bool:
    """Whether ``path`` is a config.json the harness wrote: ``{"kind": ..., "config": ...}``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"kind", "config"} <= set(data)


def check_grid(df: pd.DataFrame, columns: Iterable[str], keys: Sequence[str], expected: dict[str, int]) -> str | None:
    """A cell's rows are complete when every column is present and the rows are exactly the product
    of ``expected`` = {key: number of distinct values} over ``keys``, each combination once."""
    missing = sorted(set(columns) - set(df.columns))
    if missing:
        return f"columns {missing} missing"
    want = 1
    for k in keys:
        n = df[k].nunique()
        if k in expected and n != expected[k]:
            return f"{n} distinct {k} values, expected {expected[k]}"
        want *= n
    if len(df) != want or df.duplicated(list(keys)).any():
        return f"{len(df)} rows, expected {want}"
    return None


# --------------------------------------------------------------------------- workers
def _die_with_parent(parent: int) -> None:
    """Pool worker initializer: SIGKILL when the parent dies, and a watchdog for other systems.
    Ctrl-C is the parent's to handle (it stops the workers): a worker ignores SIGINT, so a terminal's
    interrupt does not print a traceback from every process of the group."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """Spawned workers (no state shared with the parent) that die with it."""
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_die_with_parent, initargs=(os.getpid(),))


# --------------------------------------------------------------------------- progress
def _clock(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """tqdm on a terminal; otherwise a line at the start and one per finished cell (elapsed time,
    ETA) on stderr."""

    def __init__(self, total: int, done: int, desc: str, enabled: bool | None) -> None:
        self.total, self.done, self.desc, self.t0, self.new = total, done, desc, time.perf_counter(), 0
        self.enabled = enabled if enabled is not None else True
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc=desc, unit="cell")
        elif self.enabled:  # a log file: say where the run starts
            print(f"{desc}: {total} cells, {done} already done, {total - done} to run", file=sys.stderr, flush=True)

    def note(self, line: str) -> None:
        if self.enabled:
            (self.bar.write if self.bar is not None else lambda s: print(s, file=sys.stderr, flush=True))(line)

    def step(self, label: str, seconds: float) -> None:
        self.done += 1
        self.new += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled:
            el = time.perf_counter() - self.t0
            eta = el / self.new * (self.total - self.done)
            print(f"{self.desc}: {self.done}/{self.total} cells, {label} in {seconds:.2g} s; elapsed {_clock(el)},"
                  f" ETA {_clock(eta)}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- running cells
def _timed(compute: Callable[[Cell], pd.DataFrame], cell: Cell) -> tuple[pd.DataFrame, float]:
    t0 = time.perf_counter()
    return compute(cell), time.perf_counter() - t0


def run_cells(out: ResultsDir, cells: Sequence[Cell], compute: Callable[[Cell], pd.DataFrame],
              verify: Callable[[Cell, pd.DataFrame], str | None], stamp: dict[str, Any],
              executor: cf.Executor | None = None, workers: int | None = None,
              progress: bool | None = None, desc: str = "run") -> list[str]:
    """Compute every cell of ``cells`` not finished in ``out``; each result gets the ``stamp``
    columns, is verified and written atomically as it arrives. ``executor``: any
    ``concurrent.futures.Executor`` (None: in this process when ``workers`` is None or 1, else a
    pool of ``workers`` processes). Returns the notes (recomputed cells)."""
    done, notes = out.finished(cells, verify)
    todo = [c for c in cells if c.id not in done]
    bar = Progress(len(cells), len(cells) - len(todo), desc, progress)
    for n in notes:
        bar.note(n)

    def finish(c: Cell, df: pd.DataFrame, seconds: float) -> None:
        for k, v in stamp.items():
            df[k] = v
        df["cell_seconds"] = seconds  # the cell's wall time where it ran
        problem = verify(c, df)
        if problem is not None:
            raise RuntimeError(f"cell {c.id} ({c.label}): its rows are incomplete ({problem}); not written")
        out.write(c.id, df)
        bar.step(c.label, seconds)

    own = executor is None and (workers or 1) > 1
    ex = process_pool(workers) if own else executor
    stopped = False
    try:
        if ex is None:
            for c in todo:
                finish(c, *_timed(compute, c))
        else:
            # workers start during these submits: with SIGINT blocked they inherit the block, and
            # their initializer ignores it (Ctrl-C is the parent's: it stops them); a pending Ctrl-C
            # arrives here when the mask is restored
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if own else None
            try:
                futures = {ex.submit(_timed, compute, c): c for c in todo}
            finally:
                if old is not None:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old)
            try:
                for fut in cf.as_completed(futures):
                    finish(futures[fut], *fut.result())
            except BaseException:
                stopped = True
                if not own:  # someone else's executor: withdraw what has not started
                    for f in futures:
                        f.cancel()
                raise
    finally:
        bar.close()
        if own:
            if stopped:  # interrupted or failed: stop the running cells now (the finished ones are on disk);
                # the pool then fails its pending futures itself (cancelling them first races with that)
                for proc in list(getattr(ex, "_processes", {}).values()):
                    proc.terminate()
                ex.shutdown(wait=False)
            else:
                ex.shutdown(wait=True, cancel_futures=True)
    return notes


__all__ = ["RunnerError", "Cell", "ResultsDir", "cell_id", "config_hash", "check_grid", "process_pool", "Progress",
           "run_cells"]
