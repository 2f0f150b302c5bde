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

.PHONY: help install store demo bench-all bench-standard test lint bench-speed bench-scale realism mutation clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(STAMP)  ## create .venv and install the package with test extras

DEMO_WORLD := $(DEMO_DIR)/world
DEMO_STORE := $(DEMO_DIR)/demo.zarr
LEADERBOARD := $(DEMO_DIR)/leaderboard.json
# methods benchmarked by `make demo` (one per family, plus the paper's method); `make bench-all` runs every one
DEMO_METHODS ?= bicubic downscale-gbrt edsr fusion-edsr deeplightsr
# seeds of `make demo`: 0 (one row per method, ~6 min), or e.g. DEMO_SEEDS=0,1,2 (one merged row
# per method, mean ± sd over the seeds; the README's demo table)
DEMO_SEEDS ?= 0
BENCH = $(CLI) bench --store $(DEMO_STORE) --leaderboard $(LEADERBOARD) --thumbnails $(DEMO_DIR)/thumbnails

$(DEMO_WORLD)/world.json: | $(STAMP)
	$(CLI) synth $(DEMO_WORLD) --preset demo --overwrite

$(DEMO_DIR)/.store-built: $(DEMO_WORLD)/world.json
	$(CLI) build --preset demo --world $(DEMO_WORLD) --out $(DEMO_STORE) --workers 2 --overwrite
	$(CLI) validate $(DEMO_STORE)
	touch $@

store: $(DEMO_DIR)/.store-built  ## synthesise the demo world and build the demo store

demo: $(STAMP) $(DEMO_DIR)/.store-built  ## synthesise the demo world, build the store, benchmark, print the leaderboard
	@mkdir -p $(DEMO_DIR)/results
	$(CLI) leaderboard --file $(LEADERBOARD) add benchmarks/reported/deeplight_paper.yaml
	for m in $(DEMO_METHODS); do \
	  if [ "$(DEMO_SEEDS)" = "0" ]; then \
	    $(BENCH) --method $$m --out $(DEMO_DIR)/results/$$m.json || exit 1; \
	  else \
	    $(BENCH) --method $$m --seeds $(DEMO_SEEDS) --out "$(DEMO_DIR)/results/$${m}_{seed}.json" || exit 1; \
	  fi; \
	done
	$(CLI) leaderboard --file $(LEADERBOARD) show
	$(CLI) leaderboard --file $(LEADERBOARD) render --out $(DEMO_DIR)/site

bench-all: $(STAMP) $(DEMO_DIR)/.store-built  ## benchmark every registered method on the demo store
	@mkdir -p $(DEMO_DIR)/results
	for m in $$($(CLI) methods --names); do \
	  $(BENCH) --method $$m --out $(DEMO_DIR)/results/$$m.json || exit 1; \
	done
	$(CLI) leaderboard --file $(LEADERBOARD) show
	$(CLI) leaderboard --file $(LEADERBOARD) render --out $(DEMO_DIR)/site

# the multi-world benchmark (deeplightmd/builder/multiworld_presets/): `standard` (train/val from
# standard worlds 0-7, test + 6 regions from standard worlds 8-9) and `generalization` (same
# training worlds, test from shifted worlds 0-1). Learned methods are trained once on `standard`;
# their checkpoints are evaluated on `generalization` (same train split, so the same statistics).
BENCH_STD_DIR ?= out/bench-standard
BENCH_STD_METHODS ?= bicubic,downscale-gbrt,edsr,fusion-edsr,djf,deeplightsr
BENCH_STD_SEEDS ?= 0,1,2
BENCH_STD_TRACKS ?= standard,generalization,real
BENCH_STD_DEVICE ?= auto

bench-standard: $(STAMP)  ## build standard + generalization + real-viirs, 6 methods x seeds 0-2, summary (out/bench-standard; resumable)
	$(PY) -m benchmarks.standard_suite --out $(BENCH_STD_DIR) --methods $(BENCH_STD_METHODS) \
	  --seeds $(BENCH_STD_SEEDS) --tracks $(BENCH_STD_TRACKS) --device $(BENCH_STD_DEVICE)
	$(CLI) leaderboard --file $(BENCH_STD_DIR)/leaderboard.json render --out $(BENCH_STD_DIR)/site

test: $(STAMP)  ## run the test suite
	$(PY) -m pytest -q $(PYTEST_ARGS)

# --build-presets: the demo and large builds against their bound and the 2-process speed-up
# (issue 15; adds ~6 CPU-minutes, and the large world's generation the first time)
BENCH_SPEED_ARGS ?= --quick --build-presets demo,large
bench-speed: $(STAMP)  ## speed/memory suite: build (+ demo/large vs bound), loader, inference, regional, RSS (JSON + Markdown in out/speed)
	$(PY) -m benchmarks.speed.run_all $(BENCH_SPEED_ARGS) --out-dir out/speed

# paper scale rehearsed on a local dask cluster (docs/scale.md): the paper's 256²/2048² layout
# (64 clips, sharded) and the paper's exact 18,032 / 2,254 / 2,254 counts (2²/16² clips), each
# built through `--scheduler tcp://` on BENCH_SCALE_WORKERS worker processes and validated;
# reports in out/scale/<preset>/report.{json,md}. Not part of `make test`.
BENCH_SCALE_DIR ?= out/scale
BENCH_SCALE_WORKERS ?= 2
BENCH_SCALE_MEMORY ?= 4GiB
BENCH_SCALE_ARGS ?=
bench-scale: $(STAMP)  ## paper-layout rehearsal (64 clips of 2048²) + the paper's counts, on a local dask cluster (out/scale; tens of minutes)
	for preset in paper-rehearsal paper-counts; do \
	  $(PY) -m benchmarks.scale.rehearsal --preset $$preset --out $(BENCH_SCALE_DIR)/$$preset \
	    --workers $(BENCH_SCALE_WORKERS) --memory-limit $(BENCH_SCALE_MEMORY) $(BENCH_SCALE_ARGS) \
	    || exit 1; \
	done

# realism report: `standard` family worlds 0..9 against every real VIIRS VNL v2 Shanghai year
REAL_DIR ?= ../shared/data/real/shanghai_ntl_500m
REALISM_WORLDS ?= 0 1 2 3 4 5 6 7 8 9
REALISM_DIR ?= out/realism
realism: $(STAMP)  ## synthesise standard worlds and compare them with real VIIRS (python -m deeplightmd.synth.realism)
	for k in $(REALISM_WORLDS); do \
	  test -f $(REALISM_DIR)/standard$$k/world.json || \
	  $(CLI) synth $(REALISM_DIR)/standard$$k --family standard --index $$k -q --overwrite || exit 1; \
	done
	$(PY) -m deeplightmd.synth.realism $(addprefix $(REALISM_DIR)/standard,$(REALISM_WORLDS)) \
	  $(addprefix --real ,$(wildcard $(REAL_DIR)/viirs_vnl_v2_annual/NTL_Shanghai_NPP-VIIRS_2013_2022_*.tif)) \
	  --impervious $(REAL_DIR)/urban_extent_mgup/real_sh.tif --json $(REALISM_DIR)/realism.json

lint: $(STAMP)  ## ruff (installs the dev extra on first use)
	test -x $(VENV)/bin/ruff || $(PY) -m pip install -q -e ".[dev]"
	$(VENV)/bin/ruff check deeplightmd benchmarks baselines deeplightsr tests

# modules mutated by `make mutation` ([tool.mutmut] in pyproject.toml); MUTATION_JOBS workers
MUTATION_MODULES ?= deeplightmd.builder.splits deeplightmd.builder.windows deeplightmd.builder.grid \
	deeplightmd.builder.manifest deeplightmd.normalize benchmarks.metrics.pixel \
	benchmarks.metrics.regional benchmarks.metrics.consistency benchmarks.metrics.stats \
	benchmarks.leaderboard.board benchmarks.leaderboard.compare
MUTATION_JOBS ?= 2
mutation: $(STAMP)  ## mutation score per core module (mutmut, about 30 min on 2 cores; not part of make test)
	test -x $(VENV)/bin/mutmut || $(PY) -m pip install -q -e ".[mutation]"
	@# mutmut keeps which tests call which function in mutmut-stats.json; a test added since
	@# would not be run against the mutants it kills, so the map is rebuilt every time
	rm -f mutants/mutmut-stats.json
	@start=$$(date +%s); rc=0; \
	for m in $(MUTATION_MODULES); do \
	  nice $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) "$$m.*" || rc=1; \
	done; \
	echo; echo "mutation: per-module scores (equivalents excluded)"; \
	$(PY) tests/mutation/report.py || rc=1; \
	echo "mutation: wall time $$(( ($$(date +%s) - start) / 60 )) min"; \
	exit $$rc

clean:  ## remove the demo outputs (keeps .venv)
	rm -rf $(DEMO_DIR)
