"""Prefect task: an LLM annotator panel estimates agreement on a task's test instances."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.annotation import (
    ANNOTATION_PROMPT_VERSION,
    annotation_request,
    estimated_agreement,
    parse_label,
)
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.hashing import stable_hash
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, ArtifactStore, local_state_dir
from tasks.budget import BudgetLedger, ledger_for
from tasks.requester import open_requester
from tasks.retry import transport_failures_only
from tasks.snapshot import DataSnapshot
from tasks.splits import read_snapshot


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
    """k labelling calls for each of the first `annotator_max_instances` test instances."""
    analysis = config.analysis
    test = read_snapshot(snapshot.test).head(analysis.annotator_max_instances)
    texts = test["text"].astype(str).tolist()
    key = stable_hash(
        {
            "task": spec.model_dump(mode="json"),
            "test_snapshot": snapshot.test.sha256,
            "llm": config.llm.reply_dict(),
            "k": analysis.annotator_panel,
            "texts": stable_hash(texts),
            "prompt": ANNOTATION_PROMPT_VERSION,
        }
    )
    store = ArtifactStore(store_root)
    found = store.existing("annotations", key)
    if found is not None:
        return found
    ledger = ledger_for(store_root, config.runtime.max_cost_usd)
    replies = asyncio.run(
        _annotate(spec, config, texts, local_state_dir(store_root), base_url, ledger)
    )
    labels = spec.label_names
    rows: list[dict[str, Any]] = []
    unparsable = 0
    for row, (row_id, raw) in enumerate(zip(test["row_id"], replies, strict=True)):
        parsed = [parse_label(reply, labels) for reply in raw]
        unparsable += sum(label is None for label in parsed)
        rows.append(
            {
                "task": spec.id,
                "row": row,
                "row_id": row_id,
                "annotations": parsed,
                "raw": raw,
                "agreement_estimate": estimated_agreement(parsed),
                "model": config.llm.model,
            }
        )
    frame = pd.DataFrame(rows)
    manifest = {
        "stage": "annotation",
        "task": spec.id,
        "k": analysis.annotator_panel,
        "instances": len(frame),
        "unparsable": unparsable,
        "note": "agreement_estimate comes from an LLM panel; it is not human agreement",
    }
    return store.write("annotations", key, frame, "annotations", manifest)


async def _annotate(
    spec: TaskSpec,
    config: ExperimentConfig,
    texts: list[str],
    store_root: Path,
    base_url: str,
    ledger: BudgetLedger,
) -> list[list[str]]:
    k = config.analysis.annotator_panel
    limit = asyncio.Semaphore(config.runtime.concurrency * config.runtime.parallel_chunks)
    async with open_requester(config, store_root, base_url, ledger) as requester:

        async def one(instance: int, annotator: int) -> str:
            request = annotation_request(spec, config.llm, texts[instance], instance, annotator)
            async with limit:
                return (await requester(request)).text

        flat = await asyncio.gather(*(one(i, j) for i in range(len(texts)) for j in range(k)))
    return [list(flat[i * k : (i + 1) * k]) for i in range(len(texts))]
