# `make demo` and `make test` work on a fresh machine: each sets up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
NEEDLE_DATA ?= $(abspath ../shared/data)
export NEEDLE_DATA

.PHONY: demo test test-fast test-reference bench lint clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.demo: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[datasets,viz,progress]"
	touch $@

$(VENV)/.test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[test,datasets,viz,progress,onnx]"
	touch $@

demo: $(VENV)/.demo
	$(PY) -m needle train --model mlp_resnet --dataset digits --epochs 20 --out runs/demo

# the whole suite on the fast path, then again on the readable path (ndl.reference_mode)
test: $(VENV)/.test
	$(PY) -m mypy
	$(PY) -m pytest -n 2 needle tests
	NEEDLE_REFERENCE=1 $(PY) -m pytest -n 2 -m "not slow and not lab" needle tests

test-reference: $(VENV)/.test
	NEEDLE_REFERENCE=1 $(PY) -m pytest -n 2 -m "not slow and not lab" needle tests

test-fast: $(VENV)/.test
	$(PY) -m pytest -n 2 -m "not slow" needle tests

lint: $(VENV)/.test
	$(PY) -m mypy

bench: $(VENV)/.test
	$(PY) bench/core.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache
