# `make demo` and `make test` work on a fresh machine: each sets up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
NEEDLE_DATA ?= $(abspath ../shared/data)
export NEEDLE_DATA

.PHONY: demo test test-fast test-reference bench bench-distributed lint clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.demo: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[datasets,viz,progress]"
	touch $@

$(VENV)/.test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[test,datasets,viz,progress,onnx,distributed,mkl]"
	touch $@

# one BLAS (and PyTorch) thread a process: two pytest workers or MPI ranks share the two
# cores, and on an Intel CPU the larger products run on MKL (needle/backend_ndarray/blas.py).
# On an AMD EPYC (2026-12-02) pytest workers crashed in 4 of about 12 one-thread suite runs
# (aborts in torch's conv backward, segfaults in garbage collection and building a model):
# heap corruption by PyTorch's oneDNN kernels on CPUs without AVX-512, which the oracle no
# longer calls (tests/conftest.py). A test whose worker crashes still runs again on a fresh
# worker (pytest-rerunfailures), and pytest's summary counts it as a rerun; a failed
# assertion is not rerun, and a test that crashes three times fails.
ONE_THREAD := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
RERUN_CRASHES := --reruns 2 --only-rerun crashed

# the distributed tests again as a 2-rank MPI job (the mpich wheel's mpiexec); a timeout
# ends a hang long before CI's limit
MPI_TESTS := timeout -k 10 600 $(VENV)/bin/mpiexec -n 2 $(PY) -m pytest -q -p no:cacheprovider \
	tests/distributed

demo: $(VENV)/.demo
	$(PY) -m needle train --model mlp_resnet --dataset digits --epochs 20 --out runs/demo

# the whole suite on the fast path (on MKL), then again on the readable path
# (ndl.reference_mode, which never calls MKL: numpy's OpenBLAS)
test: $(VENV)/.test
	$(PY) -m mypy
	$(ONE_THREAD) $(PY) -m pytest -n 2 $(RERUN_CRASHES) needle tests
	NEEDLE_REFERENCE=1 $(ONE_THREAD) $(PY) -m pytest -n 2 $(RERUN_CRASHES) -m "not slow and not lab" needle tests
	$(ONE_THREAD) $(MPI_TESTS)
	NEEDLE_REFERENCE=1 $(ONE_THREAD) $(MPI_TESTS) -m "not slow"

test-reference: $(VENV)/.test
	NEEDLE_REFERENCE=1 $(ONE_THREAD) $(PY) -m pytest -n 2 $(RERUN_CRASHES) -m "not slow and not lab" needle tests
	NEEDLE_REFERENCE=1 $(ONE_THREAD) $(MPI_TESTS) -m "not slow"

test-fast: $(VENV)/.test
	$(ONE_THREAD) $(PY) -m pytest -n 2 $(RERUN_CRASHES) -m "not slow" needle tests
	$(ONE_THREAD) $(MPI_TESTS) -m "not slow"

lint: $(VENV)/.test
	$(PY) -m mypy

bench: $(VENV)/.test
	$(PY) bench/core.py

bench-distributed: $(VENV)/.test
	$(PY) bench/distributed.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache
