# The README's two commands: `make run` and `make test`. Everything else is a helper of those two.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# offline and quiet: no telemetry from DVC, Prefect or Great Expectations
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PATH := $(BIN):$(PATH)

.PHONY: run test install data bench bench-gpu clean-venv

run: $(STAMP) data
	$(BIN)/python -m flows.pipeline
	@echo "report: reports/report.html (and reports/report.md); metrics: reports/metrics.json"

# lint first (ruff, configured in pyproject.toml): a violation fails the run before the tests start
test: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

# torch first, pinned, so that pip takes the CPU build on this machine's disk instead of a CUDA build;
# then every other package at the exact versions that were tested (requirements.lock).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# the embedded default dataset, generated deterministically from params.yaml (versioned by data.dvc)
data: $(STAMP)
	$(BIN)/gnnrec data synthetic

# CPU benchmarks against the PyG reference loop and RecBole (installed on first use into .bench-venv/):
# about 90 minutes on 2 cores (RecBole converging three times per dataset, 57 min, is the longest part; the scale
# benchmark up to 10^6 edges about 10); e.g. BENCH_ARGS="--only train_step,eval --repeats 5" or BENCH_ARGS=--quick;
# the big scale sizes: BENCH_ARGS="--only scale,samplers --scale-max-edges 1e8 --sampler-edges 1e6,1e7"
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# on a CUDA machine; needs only torch + PyG (python -m benchmarks.gpu works without this Makefile's venv)
bench-gpu:
	python -m benchmarks.gpu $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
