"""Prefect task: generate one label's synthetic examples and write them as an artifact."""

from __future__ import annotations

import asyncio

from prefect import task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import ExperimentConfig, Mode
from llmsynth_core.generation import (
    RowSink,
    batch_sender,
    generate_label_in_waves,
    live_sender,
)
from llmsynth_core.hashing import stable_hash
from llmsynth_core.manifests import generation_manifest
from llmsynth_core.parsing import GATES_VERSION
from llmsynth_core.prompts import COMPLETION_LAYOUT_VERSION, Example, PromptContext
from llmsynth_core.schemas import GENERATIONS
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, ArtifactStore, local_state_dir, read_parquet
from tasks.batch_client import BatchClient
from tasks.batch_requester import BatchProgress, BatchRequester
from tasks.batch_store import BatchStore
from tasks.budget import BudgetLedger, charge_reuse, run_ledger
from tasks.parquet_batches import ParquetBatchWriter
from tasks.progress import ProgressArtifact, reporter
from tasks.requester import open_requester
from tasks.retry import transport_failures_only
from tasks.snapshot import DataSnapshot
from tasks.splits import read_snapshot
from tasks.state_db import state_db_url, state_engine


def generation_key(
    spec: TaskSpec, config: ExperimentConfig, mode: Mode, label: str, train_sha256: str = ""
) -> str:
    """Content address of one label's generations: every semantic input, nothing runtime.

    Prices only fill `cost_usd` and are left out; the artifact's columns are in, so an artifact
    of an older schema is regenerated (from the request cache, at no cost) rather than misread.
    Few-shot prompts show real rows, so their key holds the train snapshot's sha256; zero-shot
    prompts do not, and their generations outlive any change to the data.
    """
    inputs = {
        "task": spec.model_dump(mode="json"),
        "llm": config.llm.reply_dict(),
        # How many sets a run makes does not change what one set holds; replicate r
        # differs by its llm.seed (`ExperimentConfig.for_replicate`).
        "generation": config.generation.model_dump(mode="json", exclude={"replicates"}),
        "mode": mode,
        "label": label,
        "columns": GENERATIONS.names,
        "gates": GATES_VERSION,
    }
    if config.llm.prompt_style == "completion":
        # Added, not always present, so that chat-style keys stay as they were.
        inputs["completion_layout"] = COMPLETION_LAYOUT_VERSION
    if mode == "few_shot":
        if not train_sha256:
            raise ValueError("a few-shot generation key needs the train snapshot's sha256")
        inputs["train_snapshot"] = train_sha256
    return stable_hash(inputs)


@task(
    name="generate-label",
    task_run_name="generate {spec.id}/{mode}/{label}",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transport_failures_only,
    cache_policy=NO_CACHE,  # the content-addressed store below is the chunk-level cache
)
async def generate_label_task(
    spec: TaskSpec,
    config: ExperimentConfig,
    mode: Mode,
    label: str,
    snapshot: DataSnapshot,
    store_root: str,
    base_url: str,
) -> ArtifactRef:
    """One label's rows, as an artifact; async so that a wave of chunks shares one event loop
    (chunks in threads of their own fought over the GIL and halved throughput on two cores).
    Blocking steps run in a worker thread; rows go to Parquet in batches as they are judged."""
    store = ArtifactStore(store_root)
    key = generation_key(spec, config, mode, label, snapshot.train.sha256)
    ledger = run_ledger(store_root, config.runtime, "generations", key)
    progress_id, per_label = f"{spec.id} {mode} {label}", config.generation.per_label
    found = charge_reuse(store, ledger, "generations", key)
    if found is not None:
        reporter.finish(progress_id, per_label)
        return found
    examples = (
        await asyncio.to_thread(label_examples, snapshot, label) if mode == "few_shot" else []
    )
    ctx = PromptContext(spec, config.llm, config.generation, mode, label, examples)
    reporter.add(progress_id, per_label)
    progress = ProgressArtifact(f"generate-{spec.id}-{mode}-{label}", progress_id)
    with store.staged("generations", key) as staged:
        with ParquetBatchWriter(staged, GENERATIONS, "generations", compression="zstd") as out:
            await _generate(ctx, config, store, base_url, ledger, progress, key, out.add)
        # The manifest's totals, from the columns they need (as exact as from the whole frame).
        totals = await asyncio.to_thread(
            read_parquet, str(staged), "generations", _MANIFEST_COLUMNS
        )
        await progress.finish(int(totals["accepted"].sum()), per_label)
        manifest = generation_manifest(spec, config, mode, label, totals)
        return await asyncio.to_thread(
            store.publish_file, "generations", key, staged, "generations", manifest
        )


_MANIFEST_COLUMNS = ["accepted", "reject_reason", "cost_usd", "prompt_tokens", "completion_tokens"]


def label_examples(snapshot: DataSnapshot, label: str) -> list[Example]:
    """The label's real training pool, which few-shot prompts draw their examples from."""
    train = read_snapshot(snapshot.train)
    pool = train[train["label"] == label]
    return [Example(id=i, text=t) for i, t in zip(pool["row_id"], pool["text"], strict=True)]


async def _generate(
    ctx: PromptContext,
    config: ExperimentConfig,
    store: ArtifactStore,
    base_url: str,
    ledger: BudgetLedger,
    progress: ProgressArtifact,
    chunk_key: str,
    on_row: RowSink,
) -> None:
    state_dir = local_state_dir(store.root)
    async with open_requester(config, state_dir, base_url, ledger) as requester:
        batches: BatchRequester | None = None
        if config.runtime.batch:
            key = f"batches-{ctx.spec.id}-{ctx.mode}-{ctx.label}"
            batches = BatchRequester(
                requester,
                BatchClient(requester.client),
                BatchStore(state_engine(state_db_url(config.runtime.state_db, state_dir))),
                ledger,
                config.llm,
                config.runtime,
                chunk_key,
                BatchProgress(key, progress.name),
            )

        def on_progress(accepted: int, target: int) -> None:
            stats = requester.stats
            detail = (
                f"{stats.sent} sent ({stats.requests_per_s:.1f}/s), {stats.cached} cached, "
                f"{stats.tokens:,} tok, ${stats.cost_usd:.4f}"
            )
            if batches is not None:
                detail = f"{batches.summary()}; {detail}"
            reporter.update(progress.name, accepted, detail)
            progress.update(accepted, target)

        kind = "embedded" if config.llm.is_embedded else "openai-compatible"
        if batches is None:
            send = live_sender(requester, config.runtime.concurrency)
            await generate_label_in_waves(ctx, send, kind, on_progress, on_row)
            return
        try:
            await generate_label_in_waves(ctx, batch_sender(batches), kind, on_progress, on_row)
        finally:
            await batches.aclose()
