# soundwatch: set-up and everyday targets. Each target creates .venv if it is missing.
# torch is pinned to the local CPU build (constraints.txt) so an install never pulls CUDA packages.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.soundwatch-installed
# the base install alone (no extras): what `make demo` needs (soundwatch.demo imports no
# extra: no Ray, Playwright, ONNX or service packages)
BASE   := $(VENV)/.soundwatch-base
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-base demo test test-fast lint bench clean

install: $(STAMP)

install-base: $(BASE)

# --no-compile: pip byte-compiles every file of every wheel (torch's thousands included):
# 80 s of CPU of a 2-minute install; Python compiles the modules it imports on first use.
$(BASE): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --no-compile torch==2.13.0
	$(PY) -m pip install -q --no-compile -e .
	touch $(BASE)

$(STAMP): $(BASE)
	$(PY) -m pip install -q --no-compile -e '.[dev]'
	touch $(STAMP)

demo: install-base
	$(VENV)/bin/soundwatch demo

test: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q -p no:cacheprovider

test-fast: install
	$(VENV)/bin/pytest -q -x -m "not slow"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

bench: install
	$(PY) benchmarks/run.py
	$(PY) benchmarks/embeddings.py
	$(PY) benchmarks/serve.py
	$(PY) benchmarks/export.py
	$(PY) benchmarks/scale.py
	$(PY) benchmarks/default_cost.py
	$(PY) benchmarks/robustness.py --default-check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
