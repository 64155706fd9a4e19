#!/usr/bin/env python
"""GPU check and benchmark in one short script: ``python benchmarks/gpu.py [--out results/gpu]``.

On a CUDA machine it runs, on the GPU and on the CPU,
1. the transforms (torch path: sft and isft, DH grid, batch 16, float32 and float64, b = 64, 128, 256),
2. a layer stack (the esteves_mnist preset at b = 30, batch 32, forward and forward+backward),
3. the smoke sweep (``experiments/smoke.toml``, every cell, device cuda),
checks that the GPU's numbers match the CPU's (max relative difference, float64 <= 1e-10,
float32 <= 1e-4), and writes ``<out>/gpu.csv`` and prints it as a table. Exits 1 if a check fails.
On a machine without CUDA it says so and exits 0. Times are medians of CUDA-synchronized calls.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402
from harness.runs.sweeps import cells, load_config, run_cell  # noqa: E402


def _time(fn, device: torch.device, repeats: int) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().cpu().double() - b.detach().cpu().double()).abs().max() / b.detach().cpu().double().abs().max())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "results" / "gpu"))
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--bandwidths", type=int, nargs="+", default=[64, 128, 256])
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device on this machine (torch.cuda.is_available() is False); nothing to do.")
        return 0
    import pandas as pd

    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    rows: list[dict] = []
    tol = {torch.float64: 1e-10, torch.float32: 1e-4}
    torch.set_num_threads(2)
    # 1. transforms
    for dtype in (torch.float32, torch.float64):
        for b in args.bandwidths:
            x = torch.randn(16, 2 * b, 2 * b, dtype=dtype)
            xg = x.to(gpu)
            c_cpu = harness.sft(x, backend="torch")
            c_gpu = harness.sft(xg, backend="torch")
            y_cpu, y_gpu = harness.isft(c_cpu, backend="torch"), harness.isft(c_gpu, backend="torch")
            for what, err, fn_g, fn_c in (
                ("sft", _rel(c_gpu, c_cpu), lambda: harness.sft(xg, backend="torch"), lambda: harness.sft(x, backend="torch")),
                ("isft", _rel(y_gpu, y_cpu), lambda: harness.isft(c_gpu, backend="torch"), lambda: harness.isft(c_cpu, backend="torch")),
            ):
                rows.append({"what": what, "b": b, "dtype": str(dtype).removeprefix("torch."),
                             "gpu_ms": _time(fn_g, gpu, args.repeats), "cpu_ms": _time(fn_c, cpu, args.repeats),
                             "max_rel_diff": err, "ok": err <= tol[dtype]})
    # 2. a layer stack
    for dtype in (torch.float32, torch.float64):
        torch.manual_seed(0)
        model = harness.build_model("esteves_mnist", bandwidth=30, backend="torch").to(dtype).eval()
        model_g = harness.build_model("esteves_mnist", bandwidth=30, backend="torch").to(dtype).eval()
        model_g.load_state_dict(model.state_dict())
        model_g = model_g.to(gpu)
        x = torch.rand(32, 1, 60, 60, dtype=dtype)
        xg = x.to(gpu)
        with torch.no_grad():
            err = _rel(model_g(xg), model(x))

        def fwd_bwd(m, inp):
            return lambda: m(inp.clone().requires_grad_(True)).sum().backward()

        with torch.no_grad():
            t_fg = _time(lambda: model_g(xg), gpu, args.repeats)
            t_fc = _time(lambda: model(x), cpu, args.repeats)
        rows.append({"what": "esteves_mnist forward", "b": 30, "dtype": str(dtype).removeprefix("torch."),
                     "gpu_ms": t_fg, "cpu_ms": t_fc, "max_rel_diff": err, "ok": err <= tol[dtype]})
        rows.append({"what": "esteves_mnist forward+backward", "b": 30, "dtype": str(dtype).removeprefix("torch."),
                     "gpu_ms": _time(fwd_bwd(model_g, xg), gpu, args.repeats),
                     "cpu_ms": _time(fwd_bwd(model, x), cpu, args.repeats), "max_rel_diff": float("nan"), "ok": True})
    # 3. the smoke sweep, cell by cell, GPU against CPU
    cfg = load_config(ROOT / "experiments" / "smoke.toml")
    for cell in cells(cfg):
        t0 = time.perf_counter()
        dc = run_cell(cell)
        t_c = time.perf_counter() - t0
        cell_g = {**cell, "run": {**cell["run"], "device": "cuda"}}
        t0 = time.perf_counter()
        dg = run_cell(cell_g)
        t_g = time.perf_counter() - t0
        key = ["mode", "layer", "input", "rotation"]
        a = dg.sort_values(key)["rel_error"].to_numpy()
        ref = dc.sort_values(key)["rel_error"].to_numpy()
        err = float(abs(a - ref).max() / max(abs(ref).max(), 1e-300))
        rows.append({"what": f"smoke cell b={cell['bandwidth']} {cell['activation']} s={cell['oversampling']}",
                     "b": cell["bandwidth"], "dtype": cell["dtype"], "gpu_ms": 1e3 * t_g, "cpu_ms": 1e3 * t_c,
                     "max_rel_diff": err, "ok": err <= 1e-8})
    df = pd.DataFrame(rows)
    df["device"] = torch.cuda.get_device_name(0)
    df["torch_version"] = torch.__version__
    df["machine"] = platform.node()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "gpu.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(df.drop(columns=["machine"]).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    bad = df[~df["ok"]]
    if len(bad):
        print(f"FAILED: {len(bad)} GPU results differ from the CPU's beyond tolerance")
        return 1
    print(f"all {len(df)} GPU results match the CPU's; wrote {out / 'gpu.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
