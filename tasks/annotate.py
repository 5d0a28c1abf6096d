"""Prefect task: an LLM annotator panel estimates agreement on the test instances of a
classification task."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.annotation import (
    ANNOTATION_PROMPT_VERSION,
    PANEL_VERSION,
    annotation_request,
    annotation_sample,
    panel_frame,
    sample_columns,
)
from llmsynth_core.config import ExperimentConfig, LLMConfig
from llmsynth_core.costs import request_cost
from llmsynth_core.hashing import stable_hash
from llmsynth_core.manifests import annotation_manifest
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, ArtifactStore, local_state_dir
from tasks.budget import BudgetLedger, charge_reuse, run_ledger
from tasks.requester import open_requester
from tasks.retry import transport_failures_only
from tasks.snapshot import DataSnapshot
from tasks.splits import read_snapshot


def annotation_key(
    spec: TaskSpec, test_sha256: str, llm: LLMConfig, k: int, rows: list[int], texts: list[str]
) -> str:
    """Content address of a panel's annotations: the test rows, their texts and the panel."""
    return stable_hash(
        {
            "task": spec.model_dump(mode="json"),
            "test_snapshot": test_sha256,
            "llm": llm.reply_dict(),
            "k": k,
            "rows": rows,
            "texts": stable_hash(texts),
            "prompt": ANNOTATION_PROMPT_VERSION,
            "panel": PANEL_VERSION,
        }
    )


@task(
    name="annotate",
    task_run_name="annotate {spec.id}",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transport_failures_only,
    cache_policy=NO_CACHE,  # the content-addressed store and the request cache are the caches
)
def annotate_task(
    spec: TaskSpec,
    config: ExperimentConfig,
    snapshot: DataSnapshot,
    store_root: str,
    base_url: str,
) -> ArtifactRef:
    """k labelling calls by the panel's llm for each instance of a seeded, label-stratified
    sample of the test snapshot; charged to the flow run's budget ledger, like generation."""
    analysis, llm = config.analysis, config.panel_llm
    test = read_snapshot(snapshot.test)
    sample = annotation_sample(test, analysis.annotator_max_instances, analysis.seed)
    rows, row_ids, texts = sample_columns(sample)
    k = analysis.annotator_panel
    key = annotation_key(spec, snapshot.test.sha256, llm, k, rows, texts)
    store = ArtifactStore(store_root)
    ledger = run_ledger(store_root, config.runtime, "annotations", key)
    found = charge_reuse(store, ledger, "annotations", key)  # as generation: reuse at price
    if found is not None:
        return found
    replies = asyncio.run(
        _annotate(spec, config, rows, texts, local_state_dir(store_root), base_url, ledger)
    )
    replied = [[text for text, _ in raw] for raw in replies]
    frame, counts = panel_frame(spec.id, rows, row_ids, replied, spec.label_names, llm.model)
    cost_usd = sum(cost for raw in replies for _, cost in raw)
    manifest = annotation_manifest(spec, llm, k, counts, cost_usd)
    return store.write("annotations", key, frame, "annotations", manifest)


async def _annotate(
    spec: TaskSpec,
    config: ExperimentConfig,
    rows: list[int],
    texts: list[str],
    store_root: Path,
    base_url: str,
    ledger: BudgetLedger,
) -> list[list[tuple[str, float]]]:
    """Each instance's k replies with their costs; the seed follows the test-set row."""
    k, llm = config.analysis.annotator_panel, config.panel_llm
    limit = asyncio.Semaphore(config.runtime.concurrency * config.runtime.parallel_chunks)
    async with open_requester(config, store_root, base_url, ledger, llm) as requester:

        async def one(row: int, text: str, annotator: int) -> tuple[str, float]:
            request = annotation_request(spec, llm, text, row, annotator)
            async with limit:
                reply = await requester(request)
            return reply.text, request_cost(reply.prompt_tokens, reply.completion_tokens, llm)

        # To the end even after a failure (a budget stop): a reply in flight is paid for, and
        # finishing it puts it in the request cache for the rerun.
        outcomes = await asyncio.gather(
            *(one(row, text, j) for row, text in zip(rows, texts, strict=True) for j in range(k)),
            return_exceptions=True,
        )
    flat: list[tuple[str, float]] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        flat.append(outcome)
    return [flat[i * k : (i + 1) * k] for i in range(len(rows))]
