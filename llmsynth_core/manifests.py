"""What each stage's manifest records beside its artifact: plain dicts built from the stage's
settings and the frame it wrote (the store adds the artifact ref and provenance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from llmsynth_core.agreement import panel_label
from llmsynth_core.config import (
    AnalysisConfig,
    EvaluationConfig,
    ExperimentConfig,
    LLMConfig,
    Mode,
)
from llmsynth_core.data import Split
from llmsynth_core.parsing import drop_counts
from llmsynth_core.taskspec import TaskSpec


def generation_manifest(
    spec: TaskSpec, config: ExperimentConfig, mode: Mode, label: str, frame: pd.DataFrame
) -> dict[str, Any]:
    """One label's generations: the config, what they cost, and how many rows each gate dropped."""
    return {
        "stage": "generation",
        "task": spec.id,
        "mode": mode,
        "label": label,
        "config": config.semantic_dict(),
        "config_hash": config.semantic_hash(),
        "prices_per_mtok": config.llm.prices(),
        "cost_usd": float(frame["cost_usd"].sum()),
        "tokens": int(frame["prompt_tokens"].sum() + frame["completion_tokens"].sum()),
        "accepted": int(frame["accepted"].sum()),
        "requested": len(frame),
        "drops": drop_counts(frame["reject_reason"]),
    }


def annotation_manifest(
    spec: TaskSpec, llm: LLMConfig, k: int, counts: Mapping[str, int], cost_usd: float
) -> dict[str, Any]:
    """A panel's annotations: its model and size, the counts of `panel_frame`, and the cost."""
    return {
        "stage": "annotation",
        "task": spec.id,
        "model": llm.model,
        "k": k,
        **counts,
        "cost_usd": cost_usd,
        "prices_per_mtok": llm.prices(),
        "note": f"agreement_estimate is an {panel_label(llm.model, k)}, not human agreement; "
        "instances with fewer than half of the k replies parsable are dropped "
        "(agreement_estimate null)",
    }


def diversity_manifest(
    spec: TaskSpec, analysis: AnalysisConfig, sources: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """A classification task's diversity rows: how they were measured and on how many texts."""
    return {
        "stage": "diversity",
        "task": spec.id,
        "analysis": analysis.model_dump(mode="json"),
        "encoder": analysis.embedding_model,
        "sizes": {source: len(texts) for source, texts in sources.items()},
    }


def snapshot_manifest(
    spec: TaskSpec,
    split: Split,
    source: str,
    source_sha256: str,
    source_rows: int,
    own_ids: bool,
    evaluation: EvaluationConfig | None,
) -> dict[str, Any]:
    """A split's snapshot: the source it was read from, its hash and where the row ids came from."""
    return {
        "stage": "snapshot",
        "task": spec.id,
        "split": split,
        "source": source,
        "source_sha256": source_sha256,
        "source_rows": source_rows,
        "row_ids": "the data's id column" if own_ids else "hash of text and label",
        "evaluation": evaluation.model_dump(mode="json") if evaluation else None,
    }
