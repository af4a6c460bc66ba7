# Two entry points on a fresh machine: `make repro` (the default pipeline) and `make test`.
# Both are idempotent: the venv is built once per change of requirements.txt/pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FMNIST_SYSTEM := /usr/share/datasets/fashion-mnist
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test lint data dvc-init clean-checkpoints

setup: $(STAMP) data dvc-init

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# Fashion-MNIST from Debian's package when apt is there and no copy is found; otherwise the
# prepare stage looks in data/raw/ and then downloads (and says what it looked for if it fails).
data:
	@if [ ! -d $(FMNIST_SYSTEM) ] && [ ! -d data/raw/fashion-mnist ] \
	    && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
	  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
	  || echo "note: could not apt-get install dataset-fashion-mnist (not root?)"; \
	fi

dvc-init:
	@test -d .dvc || { if git rev-parse --git-dir >/dev/null 2>&1; then dvc init -q; \
	  else dvc init -q --no-scm; fi; dvc config core.analytics false; }

# every params section checked in a second first: each stage validates only the sections it reads
repro: setup
	python -m robustprune.config params.yaml
	dvc repro

test: setup
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# Resume checkpoints of interrupted runs (safe to delete; finished runs remove their own).
clean-checkpoints:
	rm -rf .cache/checkpoints
