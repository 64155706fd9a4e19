"""Command line: ``python -m harness demo`` (more commands arrive with the sweeps)."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from . import grid, isft, sft
from .grids import GRID_KINDS
from .transforms import BACKENDS


def _demo(args: argparse.Namespace) -> int:
    """Round-trip error and time of both transform paths on every grid."""
    torch.set_num_threads(args.threads)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="round trip and timing of the spherical Fourier transforms")
    d.add_argument("--bandwidths", type=int, nargs="+", default=[16, 64, 128])
    d.add_argument("--batch", type=int, default=16)
    d.add_argument("--threads", type=int, default=2)
    d.set_defaults(func=_demo)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
