# The two entry points of the README. Each one creates .venv and installs on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# escnn 1.0.11 pins numpy < 2: its own venv (make escnn-venv)
ESCNN_VENV  := .venv-escnn
ESCNN_BIN   := $(ESCNN_VENV)/bin
ESCNN_STAMP := $(ESCNN_VENV)/.installed

.PHONY: docs sweep test bench peers fashion accuracy cohen2018 cohen-accuracy frontier gpu asv-show asv-history asv-compare third-party trained clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,dask,data]'
	$(BIN)/pip install -q --no-deps -c constraints.txt torch-harmonics==0.9.3
	touch $(STAMP)

## main job: the default sweep (resumes if interrupted; keeps the committed cells unless FRESH=1),
## then its figures and summary
sweep: $(STAMP)
	$(BIN)/python -m harness sweep experiments/default.toml $(if $(FRESH),--fresh,)
	$(BIN)/python -m harness plot results/default
	$(BIN)/python -m harness show results/default

## the test suite (benchmarks are skipped; see `make bench`)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## the results book's tables regenerated from results/ (docs/tables.py), then the site: guides, results
## book and the API reference from the docstrings (Sphinx + myst, warnings are errors) -> docs/_build/html/index.html
docs: $(STAMP)
	$(BIN)/python docs/tables.py
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

## pytest-benchmark micro-benchmarks, saved and compared with the previous saved run
bench: $(STAMP)
	$(BIN)/python -m pytest -q -o addopts="" --benchmark-only --benchmark-autosave --benchmark-compare || \
	$(BIN)/python -m pytest -q -o addopts="" --benchmark-only --benchmark-autosave

## Cohen et al. (2018) section 5.1 reproduced: results/cohen2018 and its figure (resumable; ~35 min on 2 cores)
cohen2018: $(STAMP)
	$(BIN)/python -m harness sweep experiments/cohen2018.toml
	$(BIN)/python -m harness plot results/cohen2018

## Cohen's layers beside Esteves' on spherical MNIST (mnist5k; per-sample and s2cnn's shared rotations)
## and on Fashion-MNIST: the frontier's subset and the full split, 1 epoch (installs dataset-fashion-mnist)
cohen-accuracy: $(STAMP)
	test -d /usr/share/datasets/fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist)
	for c in cohen_accuracy cohen_accuracy_shared accuracy_shared cohen_fashion fashion_1epoch cohen_fashion_full; do \
	  $(BIN)/python -m harness train experiments/$$c.toml || exit 1; done

## the nonlinearity frontier: isolated errors, training on a Fashion-MNIST subset and the full split, step times, figures
frontier: $(STAMP)
	test -d /usr/share/datasets/fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist)
	$(BIN)/python -m harness sweep experiments/frontier.toml
	$(BIN)/python -m harness train experiments/frontier_train.toml
	$(BIN)/python -m harness train experiments/frontier_full.toml
	$(BIN)/python benchmarks/train_step.py --nonlinearity relu_s1 relu_s2 poly2 poly4 quadratic norm gated --repeats 3 \
	  --out results/frontier_train/step_time.csv
	$(BIN)/python -m harness plot results/frontier_train
	$(BIN)/python -m harness train experiments/frontier_fashion.toml
	$(BIN)/python -m harness plot results/frontier_fashion

## side-by-side timing against torch-harmonics and ducc0 (installs the peers extra)
peers: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,peers]'
	$(BIN)/python benchmarks/peers_sht.py --table-memory-512
	$(BIN)/python benchmarks/peers_rotation.py
	$(BIN)/python benchmarks/peers_figure.py

## GPU check + timings (transforms, a layer stack, the smoke sweep vs the CPU); says so and exits 0 without CUDA
gpu: $(STAMP)
	$(BIN)/python benchmarks/gpu.py

## asv over every commit of main not yet in results/asv, then the HTML (.asv/html)
asv-history: $(STAMP)
	$(BIN)/python -m asv machine --yes
	$(BIN)/python -m asv run --skip-existing-commits ALL
	$(BIN)/python -m asv publish

## the committed asv results as HTML (asv publish), served locally (asv preview); nothing is rerun
asv-show: $(STAMP)
	$(BIN)/python -m asv publish
	$(BIN)/python -m asv preview

## asv regression gate: exits 1 if a benchmark of NEW is > FACTOR x slower than on BASE
BASE ?= main~1
NEW ?= HEAD
FACTOR ?= 1.5
asv-compare: $(STAMP)
	$(BIN)/python -m asv machine --yes
	$(BIN)/python -m asv continuous --factor $(FACTOR) --split $(BASE) $(NEW)

## the spherical MNIST accuracy experiment (mnist5k; ~15 minutes on 2 cores)
accuracy: $(STAMP)
	$(BIN)/python -m harness train experiments/accuracy.toml
	$(BIN)/python -m harness plot results/accuracy

## every third-party number: e3nn and torch-harmonics modules measured with exact rotations on the installed
## releases (e3nn 0.6.0, torch-harmonics 0.9.3 wheel), the DISCO constant-input test, then escnn 1.0.11 in its
## own venv (results/third_party, versions in every row; ~10 minutes, more on escnn's first Thomson grids)
third-party: $(STAMP) $(ESCNN_STAMP)
	$(BIN)/python experiments/third_party.py
	$(ESCNN_BIN)/python experiments/third_party_escnn.py

## per-layer errors of the preset at initialisation vs the accuracy experiment's checkpoints
trained: $(STAMP)
	$(BIN)/python experiments/trained_vs_untrained.py

## full Fashion-MNIST from Debian's package (root), then the long run
fashion: $(STAMP)
	test -d /usr/share/datasets/fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist)
	$(BIN)/python -m harness train experiments/fashion.toml
	$(BIN)/python -m harness plot results/fashion

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks

# ---- escnn: its own venv, because escnn 1.0.11 pins numpy < 2 (variables at the top) ----------
.PHONY: escnn-venv test-escnn third-party-escnn

$(ESCNN_STAMP): pyproject.toml constraints-escnn.txt
	command -v gfortran >/dev/null || (apt-get update && apt-get install -y gfortran)
	$(PY) -m venv $(ESCNN_VENV)
	$(ESCNN_BIN)/pip install -q --upgrade pip
	$(ESCNN_BIN)/pip install -q -c constraints-escnn.txt escnn==1.0.11 pytest -e .
	$(ESCNN_BIN)/python -c "import escnn, numpy, torch, pyarrow, scipy, ducc0, matplotlib, harness; print('escnn', escnn.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__, 'pyarrow', pyarrow.__version__)"
	touch $(ESCNN_STAMP)

## escnn 1.0.11 in its own environment (.venv-escnn; installs gfortran for py3nj if missing)
escnn-venv: $(ESCNN_STAMP)

## the escnn tests (tests/test_escnn.py; skipped in the main venv) run in .venv-escnn
test-escnn: $(ESCNN_STAMP)
	$(ESCNN_BIN)/python -m pytest -q -o addopts="-ra" tests/test_escnn.py

## escnn's FourierPointwise / QuotientFourierPointwise against harness SO3Pointwise / Pointwise
## (results/third_party/escnn and its figure; ~3 min, plus ~5 min on a new venv for escnn's Thomson grids)
third-party-escnn: $(ESCNN_STAMP)
	$(ESCNN_BIN)/python experiments/third_party_escnn.py

## the suite against the newest torch, e3nn and torch-harmonics on the index, in .venv-latest (CI keeps the
## pins); prints and writes the versions and pytest's summary to results/test_latest/summary.txt. ARGS="..." go to pytest
.PHONY: test-latest
test-latest:
	$(PY) .ci/test_latest.py --venv .venv-latest --out results/test_latest -- $(ARGS)
