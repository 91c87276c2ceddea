# Hive: the demo and the tests, each one command on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PATHS  := operator tests e2e bench conftest.py

.PHONY: demo test venv testbin lint crds unit integration clean down

demo: venv testbin        ## control plane up, CRDs, operator, a sample team, kubectl get
	$(BIN)/hive demo

test: venv testbin lint   ## every gate, then every test
	$(BIN)/pytest

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

testbin:                  ## build or install kube-apiserver, etcd, kubectl, helm, kwok, runsc, redis
	bash hack/testbin.sh

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
	rm -rf $(VENV) .testbin .mypy_cache .ruff_cache .pytest_cache
