"""Benchmark: the study's generation path against a bare asyncio loop, both on the embedded
llama.cpp servers, on a fixed slice (AG News, both modes, the `study` preset's prompts).

The servers are started once, before timing. The path is the `generate` flow as `llmsynth run
--preset study` runs it (label chunks in `runtime.parallel_chunks` lanes, one server each,
request cache, gates, artifacts). The bare loop then sends the very same requests (rebuilt from
the path's rows, and checked hash by hash) with an `AsyncOpenAI` client per server, one lane per
server taking the next chunk when free, each chunk's requests in order. With the same seeds
and prompts llama.cpp writes the same replies, so both paths ask the servers for the same work.
Run
`.venv/bin/python -m bench.llama_throughput` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TASK = "ag_news"
RATIO_TARGET = 0.95
PORT = 8785


def experiment(per_label: int, servers: int | None) -> Any:
    """The study preset on one task, at the slice's size, with `servers` chunks at once (None:
    the preset's runtime.parallel_chunks)."""
    from llmsynth_core.config import load_experiment, preset_path

    study = load_experiment(preset_path("study"))
    generation = study.generation.model_copy(update={"per_label": per_label})
    chunks = servers or study.runtime.parallel_chunks
    runtime = study.runtime.model_copy(update={"parallel_chunks": chunks, "embedded_port": PORT})
    return study.model_copy(update={"tasks": [TASK], "generation": generation, "runtime": runtime})


@contextmanager
def servers(config: Any) -> Iterator[list[str]]:
    """The embedded servers, started before any timing and shared by both paths."""
    from tasks.llm_server import embedded_endpoints

    count = config.runtime.parallel_chunks
    with embedded_endpoints(config.llm.embedded_model, PORT, count) as urls:
        yield urls


def run_path(config: Any, data_dir: Path, output_dir: Path) -> tuple[float, list[pd.DataFrame]]:
    """Wall time of one cold `generate` flow run, and its chunks' rows in the order sent."""
    from flows.generate import generate

    started = time.perf_counter()
    generate(config, str(data_dir), str(output_dir))
    elapsed = time.perf_counter() - started
    frames = [
        pd.read_parquet(path)
        for path in (output_dir / "artifacts" / "generations").glob("*/data.parquet")
    ]
    return elapsed, frames


def chunk_requests(config: Any, data_dir: Path, frames: Sequence[pd.DataFrame]) -> list[list[Any]]:
    """Each chunk's requests, in the flow's chunk order, rebuilt from its rows by the same
    planner and checked against the hashes the rows recorded."""
    from llmsynth_core.prompts import PromptContext, Turn, last_user_message, plan_request
    from llmsynth_core.registry import experiment_specs
    from tasks.artifacts import artifact_root
    from tasks.generate import label_examples
    from tasks.snapshot import snapshot_task

    (spec,) = experiment_specs(config)
    with tempfile.TemporaryDirectory() as store:
        snapshot = snapshot_task.fn(spec, config, str(data_dir), artifact_root(store))
        by_chunk = {(f["mode"].iloc[0], f["label"].iloc[0]): f for f in frames}
        chunks = []
        for mode in config.generation.modes:
            for label in spec.label_names:
                rows = by_chunk[(mode, label)].sort_values("request_index")
                examples = label_examples(snapshot, label) if mode == "few_shot" else []
                ctx = PromptContext(spec, config.llm, config.generation, mode, label, examples)
                requests: list[Any] = []
                for row in rows.itertuples(index=False):
                    first = row.request_index - row.turn
                    history = [
                        Turn(user=last_user_message(requests[i]), assistant=text.strip())
                        for i, text in zip(
                            range(first, row.request_index),
                            rows["raw_text"].iloc[first : row.request_index],
                            strict=True,
                        )
                    ]
                    request = plan_request(ctx, row.request_index, history).request
                    assert request.request_hash() == row.request_hash, "rebuilt a different request"
                    requests.append(request)
                chunks.append(requests)
    return chunks


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this process ("flow"), the llama.cpp servers ("llama") and
    the other children (Prefect's server): what the path spends is taken from llama.cpp."""
    import psutil

    used = {"flow": time.process_time(), "llama": 0.0, "prefect": 0.0}
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            kind = "llama" if "llama_cpp.server" in " ".join(child.cmdline()) else "prefect"
            used[kind] += times.user + times.system
    return used


def cpu_since(before: dict[str, float]) -> str:
    after = cpu_seconds()
    return ", ".join(f"{kind} {after[kind] - before[kind]:.1f}" for kind in before)


async def raw_loop(urls: list[str], chunks: list[list[Any]], lanes: int) -> int:
    """The baseline: `lanes` loops, lane i on server i, each taking the next chunk when free
    and sending its requests in order."""
    import openai

    from bench.generation import send_chat

    clients = [openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0) for url in urls]
    pending = iter(chunks)

    async def lane(client: Any) -> int:
        sent = 0
        for requests in pending:
            for request in requests:
                await send_chat(client, request)
                sent += 1
        return sent

    done = await asyncio.gather(*(lane(clients[i % len(clients)]) for i in range(lanes)))
    for client in clients:
        await client.close()
    return sum(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-label", type=int, default=25, help="4 labels x 2 modes x this.")
    parser.add_argument(
        "--servers", type=int, default=None, help="Default: the study's parallel_chunks."
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="Timed runs of each path, alternating."
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("LLMSYNTH_DATA_DIR", DATASETS))
    )
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.testing.utilities import prefect_test_harness

    config = experiment(args.per_label, args.servers)
    import llama_cpp

    build = llama_cpp.llama_print_system_info().decode().strip()
    with prefect_test_harness(server_startup_timeout=120), servers(config) as urls:
        print(f"llama-cpp-python {llama_cpp.__version__}: {build}")
        print(
            f"{len(urls)} server(s), {os.cpu_count()} cores; {TASK}, both modes, "
            f"{args.per_label} accepted per label"
        )
        warm = experiment(2, config.runtime.parallel_chunks)
        with tempfile.TemporaryDirectory() as tmp:
            run_path(warm, args.data_dir, Path(tmp))  # untimed: imports, Prefect, the pool
        path_s, raw_s, requests = [], [], 0
        for repeat in range(args.repeats):
            before = cpu_seconds()
            with tempfile.TemporaryDirectory() as tmp:
                elapsed, frames = run_path(config, args.data_dir, Path(tmp))
            path_cpu = cpu_since(before)
            path_s.append(elapsed)
            chunks = chunk_requests(config, args.data_dir, frames)
            requests = sum(len(c) for c in chunks)
            before = cpu_seconds()
            started = time.perf_counter()
            sent = asyncio.run(raw_loop(urls, chunks, config.runtime.parallel_chunks))
            raw_s.append(time.perf_counter() - started)
            raw_cpu = cpu_since(before)
            assert sent == requests
            print(
                f"run {repeat + 1}: {requests} requests; study path {elapsed:.1f} s "
                f"({requests / elapsed:.2f}/s), raw llama.cpp {raw_s[-1]:.1f} s "
                f"({requests / raw_s[-1]:.2f}/s)\n  CPU s: study path {path_cpu}; raw {raw_cpu}",
                flush=True,
            )
    # The runs alternate, so drift in the machine's load hits both paths; the ratio compares
    # the best run of each (the one least disturbed by other work), the median is printed too.
    median = statistics.median(raw_s) / statistics.median(path_s)
    path, raw = min(path_s), min(raw_s)
    print(f"best requests/s: study path {requests / path:.2f}, raw {requests / raw:.2f}")
    print(f"median ratio over {args.repeats} runs each: {median:.2f}")
    print(f"study generation/raw llama.cpp throughput ratio: {raw / path:.2f}")


if __name__ == "__main__":
    main()
