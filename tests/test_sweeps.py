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
from harness.runs.results import load_results
from harness.runs.runner import RunnerError
from harness.util.schema import ConfigError
from harness.runs.sweeps import cells, load_config, plan_sweep, run_sweep, verify_cell

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.toml"
KEY = ["cell_id", "mode", "layer", "input", "rotation"]
VOLATILE = ["forward_ms", "timestamp", "cell_seconds"]


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
    assert (df["cell_seconds"] > 0).all()
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
    rerun = run_sweep(cfg, out=tmp_path, workers=1, progress=False)  # another directory, another config
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
        with pytest.raises(ValueError, match=r"axes: unknown key\(s\) \['bandwith'\]; valid keys are \['activation', 'bandwidth', 'channels'"):
            load_config({"name": "t", "axes": {"bandwith": [8]}})
        with pytest.raises(ValueError, match=r"axes.activation\[1\]: expected one of \[.*'relu'.*\], got 'relu6'"):
            load_config({**base, "axes": {"activation": ["relu", "relu6"]}})
        with pytest.raises(ValueError, match=r"axes.oversampling\[0\]: expected a finite number >= 1, got 0.5"):
            load_config({**base, "axes": {"oversampling": [0.5]}})
        with pytest.raises(ValueError, match=r"run.modes\[0\]: expected one of \['cumulative', 'isolated'\], got 'both'"):
            load_config({**base, "run": {"modes": ["both"]}})
        with pytest.raises(ValueError, match=r"config: unknown key\(s\) \['axis'\]"):
            load_config({"name": "t", "axis": {}})
        with pytest.raises(ValueError, match=r"model.filter_params: expected at most the bandwidth 8 reaching the last conv layer"):
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
        assert len(cs) == 6 and len({c.id for c in cs}) == 6

    def test_the_old_input_spectrum_key_is_read_with_a_warning(self):
        with pytest.warns(FutureWarning, match=r"axes.alpha is renamed axes.decay \(the same meaning\)"):
            cfg = load_config({"name": "t", "axes": {"alpha": [0, 2]}})
        assert cfg["axes"]["decay"] == [0.0, 2.0]
        with pytest.raises(ConfigError, match=r"axes.alpha: renamed to 'decay'; give only axes.decay"):
            load_config({"name": "t", "axes": {"alpha": [0], "decay": [1]}})

    def test_values_are_normalized_and_repeats_refused(self):
        a = load_config({"name": "t", "axes": {"oversampling": [1, 2.0]}})
        b = load_config({"name": "t", "axes": {"oversampling": [1.0, 2]}})
        assert [c.id for c in cells(a)] == [c.id for c in cells(b)]  # 1 and 1.0 are one cell
        with pytest.raises(ConfigError, match=r"axes.oversampling: 1.0 at \[1\] repeats the value at \[0\]"):
            load_config({"name": "t", "axes": {"oversampling": [1, 1.0, 2.0]}})

    def test_every_problem_is_reported_at_once(self):
        with pytest.raises(ConfigError) as e:
            load_config({"name": "..", "axes": {"oversampling": [float("inf")], "bandwidth": [8], "channels": [0]},
                         "run": {"n_inputs": 0, "device": "tpu"}, "model": {"pool": "no"}})
        assert e.value.problems == [
            "name: expected a name of letters, digits, '_', '.', '-' (a directory name, not a path), got '..'",
            "axes.oversampling[0]: expected a finite number >= 1, got inf (float)",
            "axes.channels[0]: expected an integer >= 1, got 0 (int)",
            "run.n_inputs: expected an integer >= 1, got 0 (int)",
            "run.device: expected 'cpu', 'cuda' or 'cuda:<n>', got 'tpu'",
            "model.pool: expected true or false, got 'no'"]

    def test_a_bandwidth_too_large_for_the_machine_is_refused_before_compute(self):
        with pytest.raises(ConfigError, match=r"axes: the largest cell \(bandwidth=4096 activation=relu .*\) needs about [0-9.,]+ GiB, but only"):
            load_config({"name": "t", "axes": {"bandwidth": [4096]}})


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
    # show and plot work on it (was: KeyError 'activation'): per layer and axis, median and max
    from harness.__main__ import main

    assert main(["show", str(tmp_path / "out")]) == 0
    assert main(["plot", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "figures" / "error_per_layer.png").is_file()
    table = harness.plots.generic_summary(df, harness.plots.varying_axes(df, tmp_path / "out"))
    assert table.index.names == ["bandwidth", "width", "mode", "layer"] and list(table.columns) == ["median", "max"]
    assert table.loc[(16, 8, "isolated", "1"), "max"] == df[(df["bandwidth"] == 16) & (df["width"] == 8) & (
        df["mode"] == "isolated") & (df["layer"] == "1")]["rel_error"].max()
    # a seed axis is pooled (cohen2018's 10 seeds made `show` print 1440 truncated rows)
    two = pd.concat([df.assign(seed=0), df.assign(seed=1, rel_error=df["rel_error"] * 3)])
    pooled = harness.plots.generic_summary(two, ["bandwidth", "seed", "width"])
    assert pooled.index.names == ["bandwidth", "width", "mode", "layer"]
    assert pooled.loc[(16, 8, "isolated", "1"), "max"] == 3 * table.loc[(16, 8, "isolated", "1"), "max"]
    bad = {"name": "bad", "axes": {"bandwidth": [8], "depth_": [2]},
           "model": {"factory": str(tmp_path / "mymodels.py") + ":make", "input": {"field": "S2Grid", "kind": "dh"}}}
    with pytest.raises(ValueError, match=r"model.factory: .*mymodels.py:make takes no argument \['depth_'\]: an axis nobody reads"):
        load_config(bad)
    with pytest.raises(ValueError, match=r"model.input: required \(a field table\), missing"):
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



# --------------------------------------------------------------------------- trustworthy runs
SMALL = {"name": "small", "axes": {"bandwidth": [6, 8], "activation": ["relu"], "depth": [1], "channels": [2]},
         "run": {"n_inputs": 2, "n_rotations": 3, "modes": ["cumulative"], "timing_repeats": 1}}


def _small(**axes):
    import copy

    cfg = copy.deepcopy(SMALL)
    cfg["axes"].update(axes)
    return cfg


def test_a_directory_belongs_to_one_config(tmp_path):
    run_sweep(_small(), out=tmp_path, workers=1, progress=False)
    with pytest.raises(RunnerError, match=r"holds results of another config \(differing keys: \['config.axes.bandwidth'\]\)"):
        run_sweep(_small(bandwidth=[8, 10]), out=tmp_path, workers=1, progress=False)
    other = _small()
    other["run"]["n_rotations"] = 4
    with pytest.raises(RunnerError, match=r"differing keys: \['config.run.n_rotations'\]"):
        run_sweep(other, out=tmp_path, workers=1, progress=False)
    df = run_sweep(_small(bandwidth=[8, 10]), out=tmp_path, workers=1, progress=False, fresh=True)
    assert set(df["bandwidth"]) == {8, 10} and df["cell_id"].nunique() == 2  # the b = 6 cell is gone


def test_results_of_two_configs_are_never_pooled(tmp_path):
    a = run_sweep(_small(bandwidth=[6]), out=tmp_path / "a", workers=1, progress=False)
    b = run_sweep(_small(bandwidth=[8]), out=tmp_path / "b", workers=1, progress=False)
    import shutil

    shutil.copy(next((tmp_path / "b" / "cells").glob("*.parquet")), tmp_path / "a" / "cells")
    with pytest.raises(ValueError, match=r"holds rows of 2 configs: .*pass config_hash= to choose one"):
        load_results(tmp_path / "a")
    assert len(load_results(tmp_path / "a", config_hash=b["config_hash"].iloc[0])) == len(b)
    assert a["config_hash"].iloc[0] != b["config_hash"].iloc[0]


def test_a_directory_of_results_directories_names_them(tmp_path):
    """A script's output directory (results/third_party) holds sweeps one level down: say which."""
    (tmp_path / "runs" / "one" / "cells").mkdir(parents=True)
    pd.DataFrame({"x": [1.0]}).to_parquet(tmp_path / "runs" / "one" / "cells" / "a.parquet")
    (tmp_path / "runs" / "notes.csv").write_text("x\n1\n")
    with pytest.raises(FileNotFoundError, match=r"holds the results directories \['one'\]"):
        load_results(tmp_path / "runs")
    with pytest.raises(FileNotFoundError, match=r"cells/\*\.parquet\)$"):
        load_results(tmp_path / "empty")


def test_a_short_cell_file_is_recomputed_and_reported(tmp_path, capsys):
    df = run_sweep(_small(), out=tmp_path, workers=1, progress=False)
    victim = sorted((tmp_path / "cells").glob("*.parquet"))[0]
    pd.read_parquet(victim).head(5).to_parquet(victim)  # a valid file, 5 of its 6 rows
    again = run_sweep(_small(), out=tmp_path, workers=1)
    err = capsys.readouterr().err
    assert re.search(rf"cell {victim.stem} \(bandwidth=\d\): 1 distinct layer values, expected 3; recomputing it", err)
    pd.testing.assert_frame_equal(_numbers(again), _numbers(df))


def test_verify_refuses_unflagged_nan(tmp_path):
    df = run_sweep(_small(bandwidth=[6]), out=tmp_path, workers=1, progress=False)
    c = cells(load_config(_small(bandwidth=[6])))[0]
    assert verify_cell(c, df) is None
    bad = df.copy()
    bad.loc[0, "rel_error"] = float("nan")
    assert "with NaN in ['rel_error'] and no flag" in verify_cell(c, bad)
    bad.loc[0, "flag"] = "zero reference: relative errors undefined"
    assert verify_cell(c, bad) is None


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_do_not_outlive_their_parent(tmp_path, sig):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "harness", "sweep", str(SMOKE), "--out", str(out), "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and len(workers) < 2:
        workers = [p for p in _children(proc.pid) if "python" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
        time.sleep(0.1)
    time.sleep(1.0)  # mid-run
    assert workers, "no worker started"
    os.kill(proc.pid, sig)  # the main process alone, not its group
    proc.wait(timeout=30)
    t0 = time.time()
    while time.time() - t0 < 30 and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "a worker outlived its parent by 30 s"
    proc.stdout.read()  # the pipe closes: nobody holds it any more
    proc.stdout.close()


def test_two_sweeps_on_one_directory(tmp_path):
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "harness", "sweep", str(SMOKE), "--out", str(out), "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out / ".lock").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        with pytest.raises(RunnerError, match=rf"is in use by another run \(pid {proc.pid} on .*command: .*harness.* sweep .*smoke.toml"):
            run_sweep(SMOKE, out=out, workers=1, progress=False)
    finally:
        proc.kill()
        proc.wait()
    # temporary files: a live writer's survive a start-up scan, a dead writer's do not
    import socket

    live = out / "cells" / f".x.parquet.{socket.gethostname()}.{os.getpid()}.abcd1234.tmp"
    dead = out / "cells" / f".y.parquet.{socket.gethostname()}.{proc.pid}.abcd1234.tmp"
    live.write_text("mine")
    dead.write_text("theirs")
    run_sweep(SMOKE, out=out, workers=1, progress=False)
    assert live.exists() and not dead.exists()


def test_cli_errors_dry_run_and_progress_lines(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[axes]\noversampling = [1, 1.0]\n[run]\nn_inputs = 0\n')
    p = subprocess.run([sys.executable, "-m", "harness", "sweep", str(bad)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == [
        "error: axes.oversampling: 1.0 at [1] repeats the value at [0] (cells would be computed twice)",
        "error: run.n_inputs: expected an integer >= 1, got 0 (int)",
        "(run with --debug for the traceback)"]
    d = subprocess.run([sys.executable, "-m", "harness", "--debug", "sweep", str(bad)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert d.returncode == 1 and "Traceback" in d.stderr and "ConfigError" in d.stderr
    w = subprocess.run([sys.executable, "-m", "harness", "sweep", str(SMOKE), "--workers", "0"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert w.returncode == 2 and "--workers: expected an integer >= 1, got 0" in w.stderr
    dry = subprocess.run([sys.executable, "-m", "harness", "sweep", str(SMOKE), "--dry-run", "--out", "x"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "8 cells, 0 already in x" in dry.stdout and "the 8 to compute take about" in dry.stdout
    assert "nothing was run" in dry.stdout
    assert not (tmp_path / "x").exists() and not (tmp_path / "results").exists()
    cfg = tmp_path / "small.toml"
    cfg.write_text('name = "small"\n[axes]\nbandwidth = [6, 8]\ndepth = [1]\nchannels = [2]\n'
                   '[run]\nn_inputs = 2\nn_rotations = 2\nmodes = ["cumulative"]\ntiming_repeats = 1\n')
    run = subprocess.run([sys.executable, "-m", "harness", "sweep", str(cfg), "--workers", "1"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)  # stderr is a pipe, not a terminal
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("small: ")]
    assert len(lines) == 3 and lines[0] == "small: 2 cells, 0 already done, 2 to run", lines
    assert re.match(r"small: 1/2 cells, bandwidth=\d+ in [0-9.]+ s; elapsed \d+:\d\d, ETA \d+:\d\d", lines[1])


def test_dry_run_estimates():
    plan = plan_sweep(ROOT / "experiments" / "default.toml")
    assert len(plan) == 120 and (plan["est_seconds"] > 0).all() and (plan["est_peak_gib"] > 0.3).all()


# --------------------------------------------------------------------------- nothing lost (issue 20)
class TestNothingLost:
    def test_a_directory_the_harness_did_not_write_is_refused_untouched(self, tmp_path):
        from harness.runs.runner import ResultsDir

        (tmp_path / "config.json").write_text('{"mine": 1}')
        (tmp_path / "config.toml").write_text("x = 1\n")
        with pytest.raises(RunnerError, match=r"holds files the harness did not write \(config.json, config.toml\)"):
            with ResultsDir(tmp_path, "sweep", {"a": 1}):
                pass
        assert (tmp_path / "config.json").read_text() == '{"mine": 1}'  # was: overwritten without a word
        assert (tmp_path / "config.toml").read_text() == "x = 1\n"
        with ResultsDir(tmp_path / "new", "sweep", {"a": 1}):  # a new directory is fine
            pass

    def test_a_cell_file_holding_another_cells_rows_is_recomputed(self, tmp_path):
        from harness.runs.runner import Cell, ResultsDir

        a, b = Cell({"x": 1}, "x=1"), Cell({"x": 2}, "x=2")
        with ResultsDir(tmp_path, "sweep", {"a": 1}) as rd:
            rd.write(a.id, pd.DataFrame({"cell_id": [b.id], "v": [1.0]}))  # b's rows under a's name
            rd.write(b.id, pd.DataFrame({"cell_id": [b.id], "v": [1.0]}))
            done, notes = rd.finished([a, b], lambda c, df: None)
        assert done == {b.id}  # was: both accepted, b counted twice by load_results
        assert notes == [f"cell {a.id} (x=1): its rows belong to cell {b.id}; recomputing it"]
        assert not rd.cell_path(a.id).exists()

    def test_a_copied_training_directory_uses_its_own_checkpoints(self, tmp_path):
        from harness.runs.runner import Cell
        from harness.runs.train import verify_training_cell

        c = Cell({"settings": ["NR/NR"]}, "c")
        orig, copy = tmp_path / "orig", tmp_path / "copy"
        for d in (orig, copy):
            (d / "checkpoints").mkdir(parents=True)
        (orig / "checkpoints" / f"{c.id}-NR.pt").write_bytes(b"x")  # the copy's checkpoint was deleted
        df = pd.DataFrame({"setting": ["NR/NR"], "accuracy": [0.5], "cell_id": [c.id], "train_time_s": [1.0],
                           "checkpoint": [str(orig / "checkpoints" / f"{c.id}-NR.pt")]})  # as rows were written before
        assert verify_training_cell(c, df, orig) is None
        assert verify_training_cell(c, df, copy) == f"checkpoint {copy / 'checkpoints' / f'{c.id}-NR.pt'} missing"

    def test_dry_run_counts_channels_and_a_huge_training_bandwidth(self):
        from harness.runs.train import load_train_config

        with pytest.raises(ConfigError, match=r"axes: the largest cell .* needs about [0-9.,]+ GiB"):
            load_config({"name": "t", "axes": {"bandwidth": [8], "channels": [100_000]}, "run": {"n_inputs": 1, "n_rotations": 1}})
        with pytest.raises(ConfigError, match=r"data.bandwidth: .* needs about [0-9.,]+ GiB"):
            load_train_config({"name": "t", "data": {"bandwidth": 10_000_000}})

    def test_configs_and_factories_are_named_when_wrong(self, tmp_path):
        with pytest.raises(TypeError, match=r"config: expected a TOML file's path or a dict, got int"):
            load_config(123)
        with pytest.raises(TypeError, match=r"config: expected a TOML file's path or a dict, got int"):
            run_sweep(123)
        bad = tmp_path / "bad.toml"
        bad.write_bytes(b'name = "x"\n# caf\xe9\n')
        with pytest.raises(ValueError, match=r"config: .*bad.toml is not UTF-8 text \(invalid continuation byte at byte 16\)"):
            load_config(bad)
        cfg = {"name": "t", "axes": {"bandwidth": [4], "channels": [1]}, "run": {"n_inputs": 1, "n_rotations": 1},
               "model": {"input": {"field": "S2Grid", "kind": "dh"}, "in_channels": 1}}
        with pytest.raises(ValueError, match=r"model_factory: .* cannot be sent to the worker processes .* define it at"
                                             r" module level, or run with workers=1"):
            run_sweep(cfg, out=tmp_path / "o", model_factory=lambda bandwidth, channels: torch.nn.Identity())


def test_ctrl_c_mid_sweep_stops_promptly_with_one_line(tmp_path):
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "harness", "sweep", str(SMOKE), "--out", str(out), "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a terminal's foreground job: SIGINT at its default. When the suite itself runs as a background
    # job (`make test &`, nohup), the shell has set SIGINT to ignored, the sweep inherits that, and
    # rightly ignores Ctrl-C (it ran to the end, exit 0) -- restore the default in the child
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and len(_children(proc.pid)) < 2:
        time.sleep(0.1)
    time.sleep(1.0)  # mid-run
    t0 = time.time()
    assert proc.poll() is None, "the sweep ended before the Ctrl-C: make it longer"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    err = proc.communicate(timeout=60)[1]
    assert time.time() - t0 < 10, "Ctrl-C waited for the running cells"  # was: ~21 s
    assert proc.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        "interrupted: what finished is kept on disk; the same command resumes")


class TestCommandLine:
    def test_errors_name_the_mistake(self, tmp_path, capsys):
        from harness.__main__ import main

        f = tmp_path / "file.txt"
        f.write_text("x")
        assert main(["sweep", str(SMOKE), "--out", str(f)]) == 2
        assert f"out: {f} is a file, not a results directory" in capsys.readouterr().err  # was: FileExistsError
        assert main(["demo", "--bandwidths", "100000"]) == 2  # was: an allocation of 21,000 GiB
        assert "demo at bandwidth 100000 needs about" in capsys.readouterr().err
        bad = tmp_path / "fac.py"
        bad.write_text("def f(:\n")
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'name = "c"\n[model]\nfactory = "{bad}:f"\nin_channels = 1\n'
                       '[model.input]\nfield = "S2Grid"\nkind = "dh"\n')
        assert main(["sweep", str(cfg), "--dry-run"]) == 2
        assert f"model.factory: importing {bad}, line 1 failed: SyntaxError" in capsys.readouterr().err
        if not torch.cuda.is_available():
            with pytest.raises(ConfigError, match=r"run.device: 'cuda' asked for, but this machine has no CUDA device"):
                load_config({"name": "t", "run": {"device": "cuda"}})

    def test_plot_and_show_a_sweep_with_one_activation(self, tmp_path, capsys):
        from harness.__main__ import main

        cfg = tmp_path / "one.toml"
        cfg.write_text(SMOKE.read_text().replace('activation = ["relu", "tanh"]', 'activation = ["relu"]'))
        out = tmp_path / "one"
        assert main(["sweep", str(cfg), "--out", str(out), "--workers", "1"]) == 0
        assert main(["plot", str(out)]) == 0  # was: seaborn's ZeroDivisionError
        assert (out / "figures" / "error_along_depth.png").is_file()
        assert main(["show", str(out)]) == 0

    def test_resume_and_dry_run_say_what_is_on_disk(self, tmp_path, capsys):
        from harness.__main__ import main

        out = tmp_path / "s"
        assert main(["sweep", str(SMOKE), "--out", str(out), "--workers", "1"]) == 0
        assert capsys.readouterr().out.strip().endswith(f"8 cells, 480 rows in {out}: 8 computed, 0 reused from disk")
        assert main(["sweep", str(SMOKE), "--out", str(out), "--workers", "1"]) == 0
        assert capsys.readouterr().out.strip().endswith(": 0 computed, 8 reused from disk")  # was: no word of it
        next(iter((out / "cells").glob("*.parquet"))).unlink()
        assert main(["sweep", str(SMOKE), "--out", str(out), "--dry-run"]) == 0
        text = capsys.readouterr().out
        assert f"8 cells, 7 already in {out}" in text and "the 1 to compute" in text


def test_summary_names_the_input_spectrum_in_the_order_of_decay():
    from harness.plots import summary

    rows = [{"cell_id": f"{d}-{i}", "error_kind": "equivariance", "mode": "cumulative", "layer_index": k,
             "decay": d, "activation": "relu", "oversampling": 1.0, "bandwidth": 8, "rel_error": e * (k + 1)}
            for d, errs in ((2.0, [0.1, 0.3]), (0.0, [0.2, 0.4, 0.9])) for i, e in enumerate(errs) for k in (0, 1)]
    t = summary(pd.DataFrame(rows))
    assert list(t.index.get_level_values("spectrum")) == ["white", "(1+l)^-2"]
    # the last layer (index 1, error doubled), median over the cells of each spectrum
    assert t.loc[("white", "relu", 1.0), 8] == pytest.approx(2 * 0.4)
    assert t.loc[("(1+l)^-2", "relu", 1.0), 8] == pytest.approx(2 * 0.2)
