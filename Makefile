# `make demo` runs the main job on built-in defaults; `make test` runs the test suite.
# Both create .venv and install the package (editable, with [dev]) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.custval-installed
export MLFLOW_DISABLE_TELEMETRY := true
# MLflow's model server starts uvicorn through a shell: the venv's bin must be on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test lint bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/custval train clv --config pipelines/clv.yaml
	$(BIN)/custval train churn --config pipelines/churn.yaml
	$(BIN)/custval train propensity --config pipelines/propensity.yaml
	$(BIN)/custval train uplift --config pipelines/uplift_winback.yaml
	$(BIN)/custval score --config pipelines/score.yaml --out outputs/scores.parquet

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_clv.py

clean:
	rm -rf $(VENV) mlflow.db mlartifacts outputs
