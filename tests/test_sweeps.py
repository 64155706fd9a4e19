import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import harness

import harness.plots
from harness.results import load_results
from harness.sweeps import cells, load_config, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.toml"
KEY = ["cell_id", "mode", "layer", "input", "rotation"]
VOLATILE = ["forward_ms", "timestamp"]


def _numbers(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=VOLATILE).sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    df = run_sweep(SMOKE, out=out, workers=2, progress=False)
    return out, df


def test_smoke_sweep_is_complete_tidy_and_resumable(smoke):
    out, df = smoke
    n_cells = len(cells(load_config(SMOKE)))
    assert df["cell_id"].nunique() == n_cells == 8
    assert not df.duplicated(KEY).any()
    for col in ("git_commit", "git_dirty", "harness_version", "torch_version", "python_version", "device",
                "dtype", "seed", "config_hash", "timestamp", "rel_error", "forward_ms"):
        assert col in df.columns and df[col].notna().all(), col
    pw = df["layer_type"] == "Pointwise"  # aliasing is a property of the nonlinearities only
    assert df.loc[pw, ["aliasing_error", "out_of_band"]].notna().all().all()
    assert df.loc[~pw, "aliasing_error"].isna().all()
    assert (out / "config.toml").is_file() and (out / "config.json").is_file()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.parquet")}
    again = run_sweep(SMOKE, out=out, progress=False)  # nothing left to do: nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.parquet")} == mtimes
    pd.testing.assert_frame_equal(_numbers(again), _numbers(df))


def test_same_config_same_numbers(smoke, tmp_path):
    _, df = smoke
    cfg = load_config(SMOKE)
    cfg["axes"]["bandwidth"] = [6]
    cfg["axes"]["activation"] = ["relu"]
    rerun = run_sweep(cfg, out=tmp_path, workers=1, progress=False)
    mine = df[df["cell_id"].isin(rerun["cell_id"])]
    assert len(mine) == len(rerun) > 0
    # the cells are the same; only the config they were part of differs
    pd.testing.assert_frame_equal(_numbers(rerun).drop(columns="config_hash"), _numbers(mine).drop(columns="config_hash"))


def test_sigkill_then_rerun_completes_without_duplicates(tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "harness", "sweep", str(SMOKE), "--out", str(out), "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "cells").glob("*.parquet"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker processes, mid-run
    proc.wait()
    partial = len(list((out / "cells").glob("*.parquet")))
    assert 2 <= partial < 8, partial
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    df = load_results(out)
    assert df["cell_id"].nunique() == 8 and not df.duplicated(KEY).any()
    assert not list((out / "cells").glob(".*"))  # no temporary leftovers


def test_dask_cluster_gives_the_same_numbers(smoke, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, df = smoke
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            dk = run_sweep(SMOKE, executor=client.get_executor(), out=tmp_path, progress=False)
    finally:
        cluster.close()
    pd.testing.assert_frame_equal(_numbers(dk), _numbers(df))


def test_a_corrupt_cell_file_is_recomputed(smoke, tmp_path):
    out, df = smoke
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    victim = sorted((copy / "cells").glob("*.parquet"))[0]
    victim.write_bytes(b"not parquet")
    again = run_sweep(SMOKE, out=copy, workers=1, progress=False)
    pd.testing.assert_frame_equal(_numbers(again), _numbers(df))


class TestConfigValidation:
    def test_errors_name_the_key_and_the_valid_values(self, tmp_path):
        base = {"name": "t", "axes": {"bandwidth": [8]}}
        with pytest.raises(ValueError, match=r"axes: unknown key\(s\) \['bandwith'\]; valid keys are \['activation', 'alpha', 'bandwidth'"):
            load_config({"name": "t", "axes": {"bandwith": [8]}})
        with pytest.raises(ValueError, match=r"axes.activation: expected one of \['abs', 'elu'.*got 'relu6'"):
            load_config({**base, "axes": {"activation": ["relu", "relu6"]}})
        with pytest.raises(ValueError, match=r"axes.oversampling: expected a number >= 1.0, got 0.5"):
            load_config({**base, "axes": {"oversampling": [0.5]}})
        with pytest.raises(ValueError, match=r"run.modes: expected a non-empty list of \['cumulative', 'isolated'\]"):
            load_config({**base, "run": {"modes": ["both"]}})
        with pytest.raises(ValueError, match=r"config: unknown key\(s\) \['axis'\]"):
            load_config({"name": "t", "axis": {}})
        with pytest.raises(ValueError, match=r"model.filter_params: 9 exceeds the bandwidth 8"):
            load_config({**base, "model": {"filter_params": 9}})
        bad = tmp_path / "bad.toml"
        bad.write_text("name = [")
        with pytest.raises(ValueError, match="is not valid TOML"):
            load_config(bad)
        with pytest.raises(FileNotFoundError, match="config: no such file"):
            load_config(tmp_path / "missing.toml")

    def test_cells_are_the_product_of_the_axes(self):
        cfg = load_config({"name": "t", "axes": {"bandwidth": [8, 16], "activation": ["relu", "tanh", "abs"]}})
        cs = cells(cfg)
        assert len(cs) == 6 and len({c["cell_id"] for c in cs}) == 6


def test_cli_plot_and_show(smoke):
    out, _ = smoke
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "harness", "plot", str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    figs = sorted((out / "figures").glob("*.png"))
    assert [f.stem for f in figs] == sorted(set(harness.plots.FIGURES) - {"lie_vs_error"})  # smoke: no Lie derivative
    assert all(f.stat().st_size > 5000 for f in figs)
    s = subprocess.run([sys.executable, "-m", "harness", "show", str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert s.returncode == 0 and "relu" in s.stdout and "median relative equivariance error" in s.stdout


MYMODELS = """
import torch
import harness


def make(bandwidth, width):
    return torch.nn.Sequential(harness.SphericalConv(1, width, bandwidth), torch.nn.ReLU(),
                               harness.SphericalConv(width, 1, bandwidth))
"""


def test_a_sweep_over_a_users_model_as_the_docs_show(tmp_path):
    toml = re.search(r"```toml\n(.*?)```", (ROOT / "docs" / "measuring.md").read_text(), flags=re.S).group(1)
    (tmp_path / "my.toml").write_text(toml)
    (tmp_path / "mymodels.py").write_text(MYMODELS)
    df = run_sweep(tmp_path / "my.toml", out=tmp_path / "out", workers=1, progress=False)
    assert df["cell_id"].nunique() == 4 and set(df["width"]) == {4, 8} and set(df["bandwidth"]) == {8, 16}
    worst = df.groupby(["mode", "layer"])["rel_error"].max()
    assert worst["isolated", "0"] <= 1e-12 and worst["isolated", "2"] <= 1e-12 and worst["isolated", "1"] > 1e-2
    assert df.loc[df["layer"] == "1", "aliasing_error"].notna().all()  # nn.ReLU is read as a nonlinearity
    bad = {"name": "bad", "axes": {"bandwidth": [8], "depth_": [2]},
           "model": {"factory": str(tmp_path / "mymodels.py") + ":make", "input": {"field": "S2Grid", "kind": "dh"}}}
    with pytest.raises(ValueError, match=r"model.factory: .*mymodels.py:make takes no argument \['depth_'\]: an axis nobody reads"):
        load_config(bad)
    with pytest.raises(ValueError, match=r"model.input: a factory model needs its input field"):
        load_config({"name": "bad", "axes": {"bandwidth": [8], "width": [2]},
                     "model": {"factory": str(tmp_path / "mymodels.py") + ":make"}})


def tanh_net(bandwidth):
    return torch.nn.Sequential(harness.SphericalConv(1, 2, bandwidth), torch.nn.Tanh())


def test_run_sweep_takes_a_factory_callable(tmp_path):
    import concurrent.futures as cf

    cfg = {"name": "fn", "axes": {"bandwidth": [6]}, "run": {"n_inputs": 2, "n_rotations": 2, "modes": ["cumulative"]},
           "model": {"input": {"field": "S2Grid", "kind": "dh"}, "in_channels": 1}}
    with cf.ThreadPoolExecutor(1) as ex:
        df = run_sweep(cfg, executor=ex, out=tmp_path, progress=False, model_factory=tanh_net)
    assert list(df["layer"].unique()) == ["0", "1"] and df.loc[df["layer"] == "1", "rel_error"].min() > 1e-3
