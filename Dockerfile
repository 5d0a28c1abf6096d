# The llmsynth worker image: Prefect workers (cpu-pool, gpu-pool) and the embedded llama.cpp
# server. GPU hosts: build with --build-arg TORCH_SPEC="torch==2.13.0" --build-arg
# TORCH_INDEX=https://download.pytorch.org/whl/cu128 (the default is the CPU build).
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"

# build-essential and cmake: llama-cpp-python compiles llama.cpp; git: manifests record the
# revision; procps: the workers' healthcheck.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git procps \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    LLMSYNTH_CACHE_DIR=/cache \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

WORKDIR /opt/llmsynth
RUN pip install --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"
# Portable llama.cpp (x86-64 + AVX2, as `make setup LLAMA_BUILD=avx2` builds it), not the
# Makefile's per-CPU probe: an image runs on hosts other than the one that built it, and a
# native build on an AMX CPU crashes in VMs without AMX state.
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    pip install "llama-cpp-python[server]==0.3.36"
COPY pyproject.toml README.md ./
COPY llmsynth_core ./llmsynth_core
COPY tasks ./tasks
COPY flows ./flows
COPY deployments ./deployments
RUN pip install -e ".[s3,postgres]"

# s3: artifacts on MinIO or S3; postgres: the shared state database (LLMSYNTH_STATE_DB).
# Workers run the flows of this installed package (prefect.yaml: module entrypoints, no pull).
CMD ["prefect", "worker", "start", "--pool", "cpu-pool"]
