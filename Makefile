# deeplight — the two commands: `make demo` and `make test` (both set up .venv on first use).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/deeplightmd
# A CPU build of torch is enough here; a GPU user installs their own torch into .venv first.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.deeplight-installed
DEMO_DIR ?= demo
PYTEST_ARGS ?= -n 2

.PHONY: help install demo test lint bench-speed clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(STAMP)  ## create .venv and install the package with test extras

demo: $(STAMP)  ## synthesise the demo world, build the store, benchmark, print the leaderboard
	$(CLI) synth $(DEMO_DIR)/world --preset demo --overwrite

test: $(STAMP)  ## run the test suite
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint:  ## ruff, when installed
	$(VENV)/bin/ruff check deeplightmd benchmarks baselines deeplightsr tests

clean:  ## remove the demo outputs (keeps .venv)
	rm -rf $(DEMO_DIR)
