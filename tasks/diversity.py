"""Prefect task: diversity of each data source of a classification task, and similarity of
synthetic to real."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import AnalysisConfig, ExperimentConfig
from llmsynth_core.diversity import comparable_samples
from llmsynth_core.diversity_table import diversity_frame, generation_sources
from llmsynth_core.embedding import embed_texts
from llmsynth_core.hashing import stable_hash
from llmsynth_core.manifests import diversity_manifest
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, ArtifactStore, read_artifact
from tasks.encoders import resolve_encoder
from tasks.snapshot import DataSnapshot
from tasks.splits import read_snapshot


def diversity_key(
    spec: TaskSpec, train_sha256: str, analysis: AnalysisConfig, sources: dict[str, list[str]]
) -> str:
    """Content address of a classification task's diversity rows: the texts measured and how."""
    return stable_hash(
        {
            "task": spec.id,
            "train_snapshot": train_sha256,
            "analysis": analysis.model_dump(mode="json"),
            "texts": {source: stable_hash(texts) for source, texts in sources.items()},
        }
    )


@task(name="diversity", task_run_name="diversity {spec.id}", cache_policy=NO_CACHE)
def diversity_task(
    spec: TaskSpec,
    config: ExperimentConfig,
    generations: dict[str, list[ArtifactRef]],
    snapshot: DataSnapshot,
    store_root: str,
) -> ArtifactRef:
    """One row per source (real, each synthetic mode, each mode before the gates) with every
    diversity measure, all on the same number of texts."""
    analysis = config.analysis
    frames = {
        mode: pd.concat([read_artifact(ref) for ref in refs], ignore_index=True)
        for mode, refs in generations.items()
    }
    accepted, before_gates = generation_sources(frames)
    real = read_snapshot(snapshot.train)
    seed, max_texts = analysis.seed, analysis.diversity_max_texts
    sources = comparable_samples(real, accepted, max_texts, seed, before_gates)

    def build() -> tuple[pd.DataFrame, dict[str, object]]:
        model_dir = resolve_encoder(analysis.embedding_model)
        batch_size = config.runtime.inference_batch_size
        embeddings = {
            source: embed_texts(model_dir, texts, batch_size=batch_size)
            for source, texts in sources.items()
        }
        frame, skipped = diversity_frame(spec, sources, embeddings, analysis)
        for source in skipped:
            get_run_logger().warning("%s/%s: fewer than 2 texts, no diversity", spec.id, source)
        return frame, diversity_manifest(spec, analysis, sources)

    key = diversity_key(spec, snapshot.train.sha256, analysis, sources)
    return ArtifactStore(store_root).get_or_build("diversity", key, "diversity", build)
