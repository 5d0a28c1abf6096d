# llmsynth: `make demo` runs the main job, `make test` runs the checks and tests, `make test-fast`
# the unit tests that need no data, real encoder, Prefect or stack (under a minute).
# All set up .venv first (idempotent: re-installs only when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; a GPU host sets e.g. TORCH_SPEC="torch==2.13.0" with its CUDA index.
TORCH_SPEC ?= torch==2.13.0
# llama.cpp is built by deployments/llama_build.py for what /proc/cpuinfo lists: the portable AVX2
# build where the CPU has AVX2 (it served SmolLM2 faster than the AVX-512 build on an AVX-512
# EPYC), a plain one where not; LLAMA_BUILD=avx512 takes AVX-512 where present. Never
# -march=native or AMX: a native build on a CPU with AMX segfaults in a VM without AMX state.
# Wheels are kept per flag set in LLAMA_WHEELS, so pip's cache never hands back another build.
LLAMA_SPEC ?= llama-cpp-python[server]==0.3.36
LLAMA_BUILD ?= auto
LLAMA_WHEELS ?= $(HOME)/.cache/llmsynth/llama-wheels
# Absolute, so that deployment workers running elsewhere find it too.
LLMSYNTH_DATA_DIR ?= $(abspath ../shared/datasets)
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

.PHONY: setup demo test test-fast lint check-imports system-deps pytest clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python deployments/llama_build.py --spec "$(LLAMA_SPEC)" --build $(LLAMA_BUILD) --wheels "$(LLAMA_WHEELS)"
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

# Debian's chromium, chromium-driver (browser tests) and postgresql (stack tests), listed in
# tests/system_deps.py: apt-installed when missing and make runs as root; otherwise one line says
# so and those tests skip (LLMSYNTH_REQUIRE_STACK=1, as in CI, makes them fail instead).
system-deps: setup
	$(BIN)/python -m tests.system_deps --install

pytest: setup
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

test: lint check-imports system-deps pytest

test-fast: setup
	$(BIN)/python -m pytest -q $(FAST_ARGS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) llmsynth-output .pytest_cache .mypy_cache .ruff_cache
