"""Benchmark: llmsynth's generation flow against a bare asyncio loop on the `openai` client.

Both send the same distinct few-shot requests (rendered by `plan_request`) at the same total
concurrency to the same loopback fake server (fixed latency, replies that pass every quality
gate), in one run. The Prefect server is started once before timing; the timed flow run covers
the flow, every task run, the request cache, limiter, budget ledger, gates and artifact writes.
Run `.venv/bin/python -m bench.generation` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TASK = "ag_news"
LABELS = 4  # AG News: World, Sports, Business, Sci/Tech
RATIO_TARGET = 0.9
CACHED_TARGET = 0.05
T = TypeVar("T")
# CPU seconds of the last timed run of each path: (this process, its children: the fake LLM
# and Prefect servers).
CPU_S: dict[str, tuple[float, float]] = {}
_VOCAB = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ra", "si", "to") for b in range(500)]


def bench_responder(kind: str, body: dict[str, Any]) -> Any:
    """Twenty pseudo-random words keyed on the whole request: distinct, never near duplicates."""
    from tests.fakes.openai_server import Reply

    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    rng = random.Random(digest)
    words = [rng.choice(_VOCAB) for _ in range(20)]
    return Reply(text="News: " + " ".join(words) + ".", prompt_tokens=200, completion_tokens=24)


def serve(latency_s: float) -> None:
    """Child process: run the fake server and print its base URL."""
    from tests.fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer(bench_responder, latency_s=latency_s) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def start_server(latency_s: float) -> tuple[subprocess.Popen[str], str]:
    repo = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.generation", "--serve", "--latency-ms", str(latency_s * 1e3)],
        cwd=repo,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def experiment(base_url: str, requests: int, concurrency: int, chunks: int) -> Any:
    from llmsynth_core.config import ExperimentConfig

    return ExperimentConfig.model_validate(
        {
            "name": "bench-generation",
            "tasks": [TASK],
            "llm": {"endpoint": base_url, "model": "fake-model", "max_tokens": 64},
            "generation": {"modes": ["few_shot"], "per_label": requests // LABELS},
            "runtime": {"concurrency": concurrency // chunks, "parallel_chunks": chunks},
        }
    )


def planned_requests(config: Any, data_dir: Path) -> list[Any]:
    """The requests the flow will send: the same renderer, pools and indices."""
    from llmsynth_core.data import load_split
    from llmsynth_core.prompts import Example, PromptContext, plan_request
    from llmsynth_core.registry import load_registry, select_tasks

    (spec,) = select_tasks(load_registry(), [TASK])
    train = load_split(spec, data_dir, "train")
    requests = []
    for label in spec.label_names:
        pool = train[train["label"] == label]
        examples = [
            Example(id=str(i), text=t) for i, t in zip(pool["id"], pool["text"], strict=True)
        ]
        ctx = PromptContext(spec, config.llm, config.generation, "few_shot", label, examples)
        requests += [plan_request(ctx, i, []).request for i in range(config.generation.per_label)]
    return requests


async def send_chat(client: Any, request: Any) -> str:
    """One chat request through the bare SDK, as a baseline sends it; the reply's text."""
    reply = await client.chat.completions.create(
        model=request.model,
        messages=[{"role": m.role, "content": m.content} for m in request.messages],
        temperature=request.temperature,
        top_p=request.top_p,
        max_tokens=request.max_tokens,
        seed=request.seed,
    )
    return reply.choices[0].message.content or ""


async def raw_loop(base_url: str, requests: list[Any], concurrency: int) -> int:
    """The baseline: one event loop, one AsyncOpenAI client, a semaphore."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    limit = asyncio.Semaphore(concurrency)

    async def one(request: Any) -> str:
        async with limit:
            return await send_chat(client, request)

    texts = await asyncio.gather(*(one(r) for r in requests))
    await client.close()
    return len(texts)


def children_cpu_s() -> float:
    """CPU seconds used so far by this process's children: the fake LLM and Prefect servers."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def timed(path: str, run: Callable[[], T]) -> tuple[float, T]:
    """Wall time of `run()` and its result; the CPU it cost goes to CPU_S[path]. The CPU
    readings are taken outside the timed window, so both paths pay the same for them."""
    cpu, servers = time.process_time(), children_cpu_s()
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    CPU_S[path] = (time.process_time() - cpu, children_cpu_s() - servers)
    return elapsed, result


def timed_raw(base_url: str, requests: list[Any], concurrency: int) -> float:
    elapsed, sent = timed("raw", lambda: asyncio.run(raw_loop(base_url, requests, concurrency)))
    assert sent == len(requests)
    return elapsed


def timed_flow(config: Any, data_dir: Path, output_dir: Path) -> tuple[float, int]:
    """Wall time of one `generate` flow run, and how many requests its rows record."""
    from flows.generate import generate
    from llmsynth_core.run_layout import RunLayout
    from tasks.run_dir import RunDir

    elapsed, location = timed("flow", lambda: generate(config, str(data_dir), str(output_dir)))
    run = RunDir(location)
    rows = sum(len(run.read_frame(f)) for f in (RunLayout.SYNTHETIC, RunLayout.REJECTS))
    return elapsed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32, help="Total requests in flight.")
    parser.add_argument(
        "--chunks", type=int, default=4, help="Label chunks run at once (4 labels)."
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("LLMSYNTH_DATA_DIR", DATASETS))
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency_ms / 1e3)
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.testing.utilities import prefect_test_harness

    server, base_url = start_server(args.latency_ms / 1e3)
    try:
        with prefect_test_harness(server_startup_timeout=120), tempfile.TemporaryDirectory() as tmp:
            config = experiment(base_url, args.requests, args.concurrency, args.chunks)
            requests = planned_requests(config, args.data_dir)
            print(
                f"{len(requests):,} distinct requests ({TASK}, few-shot, {args.chunks} labels), "
                f"concurrency {args.concurrency}, server latency {args.latency_ms:g} ms"
            )
            # Warm-up, untimed: imports, connection pools, the Prefect client, the data cache.
            warm = experiment(base_url, 4 * args.chunks, args.concurrency, args.chunks)
            timed_flow(warm, args.data_dir, Path(tmp) / "warm")
            timed_raw(base_url, planned_requests(warm, args.data_dir), args.concurrency)

            raw_first = timed_raw(base_url, requests, args.concurrency)
            flow_s, flow_rows = timed_flow(config, args.data_dir, Path(tmp) / "run")
            flow_cpu, flow_servers_cpu = CPU_S["flow"]
            raw_second = timed_raw(base_url, requests, args.concurrency)
            cached_s, cached_rows = timed_flow(config, args.data_dir, Path(tmp) / "run")
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    raw_s = (raw_first + raw_second) / 2
    raw_rps = len(requests) / raw_s
    flow_rps = flow_rows / flow_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"raw asyncio+openai: {raw_first:.2f} s and {raw_second:.2f} s -> {raw_rps:,.0f} requests/s"
    )
    print(
        f"llmsynth generate flow: {flow_s:.2f} s for {flow_rows:,} requests -> "
        f"{flow_rps:,.0f} requests/s"
    )
    print(
        f"cached rerun: {cached_s:.2f} s ({cached_rows:,} rows) = {cached_s / flow_s:.3f} of the "
        f"first run (target <= {CACHED_TARGET})"
    )
    raw_cpu, raw_servers_cpu = CPU_S["raw"]
    print(
        f"CPU of this process per request: raw {raw_cpu / len(requests) * 1e3:.2f} ms, "
        f"flow {flow_cpu / flow_rows * 1e3:.2f} ms; of the servers (fake LLM + Prefect): "
        f"raw {raw_servers_cpu / len(requests) * 1e3:.2f} ms, "
        f"flow {flow_servers_cpu / flow_rows * 1e3:.2f} ms"
    )
    print(f"peak RSS of this process: {peak_mb:,.0f} MiB")
    print(f"generation pipeline/raw throughput ratio: {flow_rps / raw_rps:.2f}")


if __name__ == "__main__":
    main()
