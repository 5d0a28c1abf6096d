# llmsynth: `make demo` runs the main job, `make test` runs the checks and tests, `make test-fast`
# the unit tests that need no data, real encoder, Prefect or stack (under a minute).
# All set up .venv first (idempotent: re-installs only when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; a GPU host sets e.g. TORCH_SPEC="torch==2.13.0" with its CUDA index.
TORCH_SPEC ?= torch==2.13.0
# llama.cpp built for a portable x86-64 with AVX2 (no -march=native): a native build on a CPU
# with AMX segfaults in a VM that does not grant AMX state (seen with llama-cpp-python 0.3.36).
LLAMA_SPEC ?= llama-cpp-python[server]==0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLMSYNTH_DATA_DIR ?= ../shared/datasets
PRESET ?= quick
PYTEST_ARGS ?=
# The fast tier: no real data, real encoder, Prefect flow or stack. tests/flows and tests/slow
# hold only such tests; not collecting them saves importing the flows.
FAST_ARGS := -m "not (data or training or flow or stack or slow)" --ignore=tests/flows --ignore=tests/slow
export LLMSYNTH_DATA_DIR
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup demo test test-fast lint check-imports pytest clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet "$(LLAMA_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup
	$(BIN)/llmsynth run --preset $(PRESET)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy llmsynth_core tasks flows

check-imports: setup
	$(BIN)/lint-imports

pytest: setup
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

test: lint check-imports pytest

test-fast: setup
	$(BIN)/python -m pytest -q $(FAST_ARGS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) llmsynth-output .pytest_cache .mypy_cache .ruff_cache
