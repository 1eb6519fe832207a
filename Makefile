# One-command entry points. `make run` runs the main job, `make test` the tests.
# Every target first makes sure .venv exists and matches requirements*.txt; when it
# does, that check is a file-date comparison and costs nothing.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The project's start-up hook (pac_site.py), read by every interpreter of the
# venv: repository on sys.path, stack import order fixed in every process.
PTH := $(VENV)/lib/python3.10/site-packages/pac.pth
# Preloaded by a cluster run's nodes so their servers listen on the cluster
# address only (launchers/bind_address.c, launchers/binding.py).
BIND_LIB := $(VENV)/lib/pac_bind.so
RUN_DIR ?= runs/main
# More flags of launchers.main_job, e.g. RUN_ARGS="--offline_steps=500".
RUN_ARGS ?=
PYTEST_ARGS ?=

# Python 3.10 is required: Launchpad 0.5.2 has wheels for cp37-cp310 only.
# Each candidate is run before it is chosen: pyenv's `python3.10` shim, for
# one, exists on PATH but fails unless 3.10 is the selected version.
PYTHON310 ?= $(shell for p in $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*/bin/python3.10 \
  $$(command -v python3.10 2>/dev/null) /usr/bin/python3.10 /usr/local/bin/python3.10; do \
  if [ -x "$$p" ] && "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; \
  then echo "$$p"; break; fi; done)

# Headless MuJoCo (no GLFW/X11 warnings), quiet TensorFlow C++ logs, and no stray
# gym deprecation banner. Exported to every recipe.
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONWARNINGS ?= ignore::DeprecationWarning
export LAUNCHPAD_LAUNCH_LOCAL_TERMINAL ?= current_terminal

.PHONY: setup vertex-setup run test test-fast bench scaling multitask offline_suite finetune defaults_sweep data clean help

help:
	@echo "make run       main job: offline PAC then online fine-tuning (RUN_DIR=$(RUN_DIR), RUN_ARGS=...)"
	@echo "make test      all tests (pytest)"
	@echo "make test-fast tests without the 'integration' marker"
	@echo "make bench     benchmarks -> benchmarks/results/"
	@echo "make scaling   model-size x compute sweep, PAC vs BC (SCALING_ARGS=...; resumable)"
	@echo "make multitask one PAC on several tasks vs BC vs one PAC per task (MULTITASK_ARGS=...; resumable)"
	@echo "make offline_suite  PAC vs BC on every dataset of data/suite (OFFLINE_SUITE_ARGS=...; resumable)"
	@echo "make finetune  fine-tune the offline suite's medium PAC models online (FINETUNE_ARGS=...; resumable)"
	@echo "make defaults_sweep PAC setting variants on the main job's data (DEFAULTS_SWEEP_ARGS=...; resumable)"
	@echo "make setup     create/refresh $(VENV) from requirements*.txt"
	@echo "make vertex-setup  add XManager's cloud side to $(VENV) (for --lp_launch_type=vertex_ai)"

setup: $(PTH)

$(STAMP): requirements.txt requirements-nodeps.txt
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "error: no working Python 3.10 found (tried pyenv's versions/3.10*, python3.10 on PATH, /usr/bin)." >&2; \
	  echo "       Install it, e.g. 'pyenv install 3.10.13' or 'apt-get install python3.10 python3.10-venv'," >&2; \
	  echo "       or point make at it: make PYTHON310=/path/to/python3.10 ..." >&2; \
	  exit 1; fi
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
	  echo "creating $(VENV) with $(PYTHON310)"; rm -rf $(VENV); $(PYTHON310) -m venv $(VENV); fi
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

$(PTH): $(STAMP) pac_site.py $(BIND_LIB)
	@printf '%s\nimport pac_site\n' "$(CURDIR)" > $(PTH)

$(BIND_LIB): launchers/bind_address.c $(STAMP)
	gcc -shared -fPIC -O2 -Wall -Werror -o $@ $< -ldl

# Only for Vertex AI launches: XManager's cloud dependencies, resolved around
# the stack's pins (requirements-vertex.txt says why).
vertex-setup: $(PTH)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-vertex.txt

run: $(PTH)
	$(PY) -m launchers.main_job --run_dir=$(RUN_DIR) $(RUN_ARGS)

test: $(PTH)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(PTH)
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

bench: $(PTH)
	$(PY) -m benchmarks.env_throughput
	$(PY) -m benchmarks.agent_throughput
	$(PY) -m benchmarks.system_throughput

scaling: $(PTH)
	$(PY) -m benchmarks.scaling $(SCALING_ARGS)

multitask: $(PTH)
	$(PY) -m benchmarks.multitask $(MULTITASK_ARGS)

offline_suite: $(PTH)
	$(PY) -m benchmarks.offline_suite $(OFFLINE_SUITE_ARGS)

finetune: $(PTH)
	$(PY) -m benchmarks.finetune $(FINETUNE_ARGS)

defaults_sweep: $(PTH)
	$(PY) -m benchmarks.defaults_sweep $(DEFAULTS_SWEEP_ARGS)

clean:
	rm -rf runs .pytest_cache
