"""Command line: ``python -m harness {sweep,train,plot,show,demo}``.

    python -m harness sweep experiments/default.toml     # run (or resume) a sweep -> results/default
    python -m harness sweep experiments/default.toml --dry-run   # its cells, time and memory, nothing run
    python -m harness sweep experiments/default.toml --fresh     # replace what results/default holds
    python -m harness plot results/default               # regenerate every figure from the Parquet files
    python -m harness show results/default               # a summary table on the terminal
    python -m harness train experiments/accuracy.toml    # spherical MNIST: NR/NR, NR/R, R/R

A user error (a config problem, a locked or foreign results directory, a request too large for
this machine) prints one line per problem and exits with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import torch

from . import grid, isft, sft
from .sphere.grids import GRID_KINDS
from .sphere.transforms import BACKENDS


def _demo(args: argparse.Namespace) -> int:
    """Round-trip error and time of both transform paths on every grid."""
    from .util.memory import check_fits

    torch.set_num_threads(args.threads)
    for b in args.bandwidths:  # before anything is allocated
        check_fits(args.batch * (16 * b * b * 3 + 8 * 4 * b * b * 3) + 8 * 2 * b * b, f"demo at bandwidth {b}")
    gen = torch.Generator().manual_seed(0)
    print(f"{'grid':5} {'b':>4} {'backend':7} {'dtype':8} {'sft ms':>8} {'isft ms':>8} {'round trip':>11}")
    for kind in GRID_KINDS:
        for b in args.bandwidths:
            c = torch.randn(args.batch, b, b, dtype=torch.complex128, generator=gen)
            c = c * torch.tril(torch.ones(b, b))
            c[..., 0] = c[..., 0].real.to(c.dtype)
            for backend in BACKENDS:
                for cdt in (torch.complex128, torch.complex64):
                    cc = c.to(cdt)
                    x = isft(cc, kind, backend=backend)  # warm-up builds the tables
                    t0 = time.perf_counter()
                    x = isft(cc, kind, backend=backend)
                    t1 = time.perf_counter()
                    c2 = sft(x, kind, backend=backend)
                    t2 = time.perf_counter()
                    err = float((c2 - cc).abs().max() / cc.abs().max())
                    dt = "float64" if cdt == torch.complex128 else "float32"
                    print(f"{kind:5} {b:4d} {backend:7} {dt:8} {1e3 * (t2 - t1):8.2f} "
                          f"{1e3 * (t1 - t0):8.2f} {err:11.2e}")
    g = grid("dh", args.bandwidths[0])
    print(f"\nDH grid at b={g.bandwidth}: {g.nlat} x {g.nlon} points, sum of weights {g.weights.sum():.15f}")
    return 0


def _print_plan(plan, workers: int, out: str) -> None:
    import pandas as pd

    from .runs.runner import is_harness_config

    ours = is_harness_config(Path(out) / "config.json")
    plan = plan.assign(on_disk=[ours and (Path(out) / "cells" / f"{c}.parquet").is_file() for c in plan["cell_id"]])
    with pd.option_context("display.width", 160, "display.max_rows", 60, "display.max_colwidth", 70):
        print(plan.assign(est_seconds=plan["est_seconds"].map("{:.2g}".format), est_peak_gib=plan["est_peak_gib"].round(2))
              .to_string(index=False))
    todo = plan[~plan["on_disk"]]
    total = todo["est_seconds"].sum()
    print(f"{len(plan)} cells, {int(plan['on_disk'].sum())} already in {out} (kept unless they fail verification);"
          f" the {len(todo)} to compute take about {total / workers / 60:.1f} minutes on {workers} worker(s)"
          f" (rough: +-2x), peak about {plan['est_peak_gib'].max():.2f} GiB per worker; nothing was run")


def _sweep(args: argparse.Namespace) -> int:
    from .runs.sweeps import load_config, plan_sweep, run_sweep

    cfg = load_config(args.config)  # validated before any compute
    out = args.out or f"results/{cfg['name']}"
    if args.dry_run:
        _print_plan(plan_sweep(args.config), args.workers or 2, out)
        return 0
    executor = None
    if args.dask:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args.workers or 2, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        executor = Client(cluster).get_executor()
    start = time.time()
    df = run_sweep(args.config, executor=executor, out=out, workers=args.workers, fresh=args.fresh)
    cells = Path(out) / "cells"  # a cell written by this run is newer than its start; reused ones are untouched
    computed = sum(1 for c in df["cell_id"].unique() if (cells / f"{c}.parquet").stat().st_mtime >= start)
    print(f"{df['cell_id'].nunique()} cells, {len(df)} rows in {out}: {computed} computed, "
          f"{df['cell_id'].nunique() - computed} reused from disk")
    return 0


def _train(args: argparse.Namespace) -> int:
    import pandas as pd

    from .runs.train import load_train_config, plan_training, run_training

    cfg = load_train_config(args.config)  # validated before any compute
    out = args.out or f"results/{cfg['name']}"
    if args.dry_run:
        _print_plan(plan_training(args.config), 1, out)
        return 0
    df = run_training(args.config, out=out, fresh=args.fresh)
    with pd.option_context("display.width", 160):
        print(f"test accuracy, mean over seeds {sorted(df['seed'].unique().tolist())}:")
        print(training_summary(df).map("{:.4f}".format))
    print(f"results in {out}")
    return 0


def training_summary(df):
    """Mean accuracy over seeds, one row per model variant (activation, oversampling and, when the
    run has that axis, nonlinearity: never averaged across variants), one column per setting."""
    index = ["activation", "oversampling"] + (["nonlinearity"] if "nonlinearity" in df.columns else [])
    return df.pivot_table(index=index, columns="setting", values="accuracy", aggfunc="mean")


def _plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # headless: the figures are files
    from .plots import plot_results

    for p in plot_results(args.results):
        print(p)
    return 0


def _show(args: argparse.Namespace) -> int:
    import pandas as pd

    from .plots import generic_summary, summary, varying_axes
    from .runs.results import load_results

    df = load_results(args.results)
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(f"{args.results}: {df['cell_id'].nunique()} cells, {len(df)} rows, commit "
              f"{df['git_commit'].iloc[0][:10]}{' (dirty)' if df['git_dirty'].iloc[0] else ''}")
        if "accuracy" in df.columns:  # a training run
            print("test accuracy, mean over seeds:")
            print(training_summary(df).map("{:.3f}".format))
        elif {"activation", "oversampling"} <= set(df.columns) and "rotations" not in df.columns:
            print("median relative equivariance error at the last grid layer (cumulative):")
            print(summary(df).map("{:.2e}".format))
        else:  # any other sweep: per layer and varying axis
            print("relative equivariance error per layer (median, max over inputs, rotations and seeds):")
            print(generic_summary(df, varying_axes(df, args.results)).map("{:.2e}".format))
    return 0


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {n}")
    return n


def _terminate(signum, frame) -> None:  # SIGTERM: unwind (the lock is released, workers shut down)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    from .util.memory import TooLarge
    from .runs.runner import RunnerError

    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__.replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="run or resume a sweep from a TOML config")
    sw.add_argument("config", help="the sweep's TOML file (docs/config.md)")
    sw.add_argument("--out", help="results directory (default results/<name>)")
    sw.add_argument("--workers", type=_positive, help="parallel cells (default 2)")
    sw.add_argument("--dask", action="store_true", help="run the cells on a local Dask cluster")
    sw.add_argument("--fresh", action="store_true", help="replace the results of another config in --out")
    sw.add_argument("--dry-run", action="store_true", help="print the cells and estimates; run nothing")
    sw.set_defaults(func=_sweep)
    tr = sub.add_parser("train", help="train and evaluate (NR/NR, NR/R, R/R) from a TOML config")
    tr.add_argument("config", help="the training run's TOML file (docs/config.md)")
    tr.add_argument("--out", help="results directory (default results/<name>)")
    tr.add_argument("--fresh", action="store_true", help="replace the results of another config in --out")
    tr.add_argument("--dry-run", action="store_true", help="print the cells and estimates; run nothing")
    tr.set_defaults(func=_train)
    pl = sub.add_parser("plot", help="regenerate the figures of a results directory")
    pl.add_argument("results", help="a results directory (results/<name>)")
    pl.set_defaults(func=_plot)
    sh = sub.add_parser("show", help="print a summary table of a results directory")
    sh.add_argument("results", help="a results directory (results/<name>)")
    sh.set_defaults(func=_show)
    d = sub.add_parser("demo", help="round trip and timing of the spherical Fourier transforms")
    d.add_argument("--bandwidths", type=_positive, nargs="+", default=[16, 64, 128], help="bandwidths to time")
    d.add_argument("--batch", type=_positive, default=16, help="signals per transform call")
    d.add_argument("--threads", type=_positive, default=2, help="torch threads")
    d.set_defaults(func=_demo)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted: what finished is kept on disk; the same command resumes", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, RunnerError, TooLarge) as e:
        if args.debug:
            raise
        lines = getattr(e, "problems", None) or str(e).splitlines() or [type(e).__name__]
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        print("(run with --debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
