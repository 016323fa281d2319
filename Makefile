# Each target creates its own virtual environment and installs what it needs.
# TORCH pins torch's CPU build first, so that the project's open range (torch>=2.3) never pulls a
# multi-GB CUDA build on a CPU machine; on a GPU machine use e.g. `make TORCH=torch demo`.
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
DEMO := demo

.PHONY: install test lint demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The whole default test suite: lint, types, then pytest (slow and GPU tests are opt-in: -m slow;
# pytest prints the 15 slowest tests, see addopts in pyproject.toml).
test: lint
	$(BIN)/pytest

# The main job on the embedded corpus: generate it, preprocess, train a small Pre-LN model
# without warm-up, translate the test set and print BLEU.
demo: install
	$(BIN)/nmt-toy-corpus --out $(DEMO)/raw --train 20000 --valid 500 --test 500 --seed 1
	$(BIN)/nmt-preprocess --source-lang de --target-lang en \
	    --trainpref $(DEMO)/raw/train --validpref $(DEMO)/raw/valid --testpref $(DEMO)/raw/test \
	    --destdir $(DEMO)/data-bin --joined-dictionary --spm-vocab-size 1000 --workers 2 --overwrite
	$(BIN)/nmt-train +arch=preln_tiny data=toy schedule=constant optim.lr=2e-3 \
	    max_epoch=4 checkpoint.save_dir=$(DEMO)/checkpoints checkpoint.resume=false progress_bar=false
	$(BIN)/nmt-generate $(DEMO)/data-bin --path $(DEMO)/checkpoints/checkpoint_best.pt \
	    --beam 4 --batch-size 128 --quiet

bench: install
	$(BIN)/python benchmarks/bench_preprocess.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_decode.py

clean:
	rm -rf $(DEMO) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
