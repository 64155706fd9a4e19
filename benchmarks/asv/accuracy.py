"""Test accuracy of a short, fixed training run of the ``esteves_mnist`` preset on mnist5k.

Bandwidth 16, DH grid, one thread, seed 0 (model init, batch order): the first 2000 training
images (full grid: all 4000), 2 epochs (full: 3), batch 32, Adam lr 5e-3 with the cosine schedule
of ``harness.runs.train.fit``; evaluated on the first 500 test images (full: all 1000), unrotated
(NR/NR) and each rotated by its own Haar rotation (NR/R, ``rotation="per-sample"``, seed 0).
Projections are cached in a temporary directory, removed afterwards. About 10 s on one core.
"""

from __future__ import annotations

import shutil
import tempfile

from . import FULL, require

BANDWIDTH = 16
N_TRAIN, N_TEST, EPOCHS = (4000, 1000, 3) if FULL else (2000, 500, 2)
BATCH_SIZE, LR, SEED = 32, 5e-3, 0


class Accuracy:
    timeout = 1200

    def setup_cache(self):
        try:
            harness = require("harness", "build_model")
            data = require(("harness.runs.data", "harness.data"), "projected_dataset")
            train = require(("harness.runs.train", "harness.train"), "fit", "evaluate_accuracy")
        except NotImplementedError as e:
            return {"missing": str(e)}  # not None: asv passes no cache argument for a None cache
        import torch

        cache_dir = tempfile.mkdtemp(prefix="harness-asv-")
        try:
            def load(split, rotation):
                x, y = data.projected_dataset("mnist5k", split, bandwidth=BANDWIDTH, rotation=rotation,
                                              seed=SEED, cache_dir=cache_dir)
                n = N_TRAIN if split == "train" else N_TEST
                return x[:n], y[:n]

            xtr, ytr = load("train", "none")
            with torch.random.fork_rng():
                torch.manual_seed(SEED)
                model = harness.build_model("esteves_mnist", bandwidth=BANDWIDTH)
            train.fit(model, xtr, ytr, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, seed=SEED, progress=False)
            return {"NR/NR": train.evaluate_accuracy(model, *load("test", "none")),
                    "NR/R": train.evaluate_accuracy(model, *load("test", "per-sample"))}
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)

    def setup(self, cache):
        if "missing" in cache:
            raise NotImplementedError(cache["missing"])

    def track_nr_nr(self, cache):
        return cache["NR/NR"]

    track_nr_nr.unit = "accuracy (higher is better)"

    def track_nr_r(self, cache):
        return cache["NR/R"]

    track_nr_r.unit = "accuracy (higher is better)"
