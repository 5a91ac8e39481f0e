# monodle_plugin: the two commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
ifdef VIRTUAL_ENV
PYTHON ?= python
else
PYTHON ?= $(CURDIR)/.venv/bin/python
endif
PYTEST_ARGS ?=

.PHONY: env demo test test-fast lint check-data clean

# Optional extras installed by `make env` only when asked: EXTRAS="backbones deploy" make env
# (requirements/extras/*.txt). The test suite needs these three, so `make test` asks for them.
EXTRAS ?=
TEST_EXTRAS := backbones deploy da3

env:  ## create/refresh the environment (idempotent; mmcv wheel cached in ~/.cache/monodle_plugin)
	@EXTRAS="$(EXTRAS)" bash tools/env/setup_env.sh

# make demo's tools check the environment themselves (one line naming `make env` as the fix)
demo: export ENV_SELF_CHECK := 0
demo: env  ## the main job on the embedded kitti_mini frames: train, evaluate (AP40), demo PNG
	@PYTHON=$(PYTHON) bash tools/run_demo.sh

test: EXTRAS += $(TEST_EXTRAS)
test: env  ## the whole test suite (CPU), with the extras the tests use
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTHON) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast:  ## tests without the slow ones, no environment refresh
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -n 2 --dist loadfile -m "not slow" $(PYTEST_ARGS)

lint:
	$(PYTHON) -m ruff check monodle_plugin monodle_kitti tools tests configs setup.py

check-data:  ## decode and check a KITTI folder: make check-data DATA_ROOT=data/KITTI [DEPTH_DIR=DA3_depth_results]
	$(PYTHON) tools/misc/check_kitti_layout.py $(or $(DATA_ROOT),data/KITTI) $(if $(DEPTH_DIR),--depth-dir $(DEPTH_DIR))

clean:
	rm -rf work_dirs .pytest_cache
