"""Prefect task: generate one label's synthetic examples and write them as an artifact."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import PRICE_FIELDS, ExperimentConfig, Mode
from llmsynth_core.data import load_split
from llmsynth_core.generation import generate_label
from llmsynth_core.hashing import stable_hash
from llmsynth_core.llm_types import LLMRequest, LLMResponse
from llmsynth_core.prompts import Example, PromptContext
from llmsynth_core.schemas import GENERATIONS
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, ArtifactStore
from tasks.llm_client import LLMClient
from tasks.progress import reporter
from tasks.request_cache import RequestCache
from tasks.retry import transport_failures_only


def generation_key(spec: TaskSpec, config: ExperimentConfig, mode: Mode, label: str) -> str:
    """Content address of one label's generations: every semantic input, nothing runtime.

    Prices only fill `cost_usd` and are left out; the artifact's columns are in, so an artifact
    of an older schema is regenerated (from the request cache, at no cost) rather than misread.
    """
    unhashed = {"endpoint", "api_key_env", *PRICE_FIELDS}
    return stable_hash(
        {
            "task": spec.model_dump(mode="json"),
            "llm": config.llm.model_dump(mode="json", exclude=unhashed),
            "generation": config.generation.model_dump(mode="json"),
            "mode": mode,
            "label": label,
            "columns": GENERATIONS.names,
        }
    )


@task(
    name="generate-label",
    task_run_name="generate {spec.id}/{mode}/{label}",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transport_failures_only,
    cache_policy=NO_CACHE,  # the content-addressed store below is the cache
)
def generate_label_task(
    spec: TaskSpec,
    config: ExperimentConfig,
    mode: Mode,
    label: str,
    data_dir: str,
    store_root: str,
    base_url: str,
) -> ArtifactRef:
    store = ArtifactStore(Path(store_root))
    key = generation_key(spec, config, mode, label)
    found = store.existing("generations", key)
    progress_id = f"{spec.id} {mode} {label}"
    if found is not None:
        reporter.finish(progress_id, config.generation.per_label)
        return found
    examples: list[Example] = []
    if mode == "few_shot":
        train = load_split(spec, Path(data_dir), "train")
        pool = train[train["label"] == label]
        ids = pool["id"].astype(str) if "id" in pool.columns else pool.index.astype(str)
        examples = [Example(id=i, text=t) for i, t in zip(ids, pool["text"], strict=True)]
    ctx = PromptContext(spec, config.llm, config.generation, mode, label, examples)
    reporter.add(progress_id, config.generation.per_label)
    rows = asyncio.run(_generate(ctx, config, store, base_url, progress_id))
    frame = pd.DataFrame(rows)
    manifest = {
        "stage": "generation",
        "task": spec.id,
        "mode": mode,
        "label": label,
        "config": config.semantic_dict(),
        "config_hash": config.semantic_hash(),
        "prices_per_mtok": config.llm.model_dump(mode="json", include=set(PRICE_FIELDS)),
        "cost_usd": float(frame["cost_usd"].sum()),
        "accepted": int(frame["accepted"].sum()),
        "requested": len(frame),
        "drops": frame["reject_reason"].value_counts().to_dict(),
    }
    return store.write("generations", key, frame, "generations", manifest)


async def _generate(
    ctx: PromptContext, config: ExperimentConfig, store: ArtifactStore, base_url: str, pid: str
) -> list[dict[str, object]]:
    cache = RequestCache(store.root / "request-cache.sqlite")
    client = LLMClient(
        base_url=base_url,
        api_key=None if config.llm.is_embedded else os.environ.get(config.llm.api_key_env),
        api_key_env=config.llm.api_key_env,
        timeout_s=config.runtime.request_timeout_s,
    )

    async def call(request: LLMRequest) -> LLMResponse:
        request_hash = request.request_hash()
        hit = cache.get(request_hash)
        if hit is not None:
            return hit
        response = await client.complete(request)
        cache.put(request_hash, response)
        return response

    try:
        return await generate_label(
            ctx,
            call,
            concurrency=config.runtime.concurrency,
            endpoint_kind="embedded" if config.llm.is_embedded else "openai-compatible",
            on_progress=lambda accepted, _target: reporter.update(pid, accepted),
        )
    finally:
        await client.aclose()
        cache.close()
