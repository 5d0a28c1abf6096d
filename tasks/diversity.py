"""Prefect task: diversity of each data source of a task, and similarity of synthetic to real."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import AnalysisConfig, ExperimentConfig
from llmsynth_core.diversity import (
    before_gates_source,
    comparable_samples,
    embedding_diversity,
    lexical_diversity,
    similarity_to_real,
)
from llmsynth_core.embedding import embed_texts
from llmsynth_core.hashing import stable_hash
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, ArtifactStore, read_artifact
from tasks.encoders import resolve_encoder
from tasks.snapshot import DataSnapshot
from tasks.splits import read_snapshot


def diversity_key(
    spec: TaskSpec, train_sha256: str, analysis: AnalysisConfig, sources: dict[str, list[str]]
) -> str:
    """Content address of a task's diversity rows: the texts measured and how."""
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
    accepted: dict[str, pd.DataFrame] = {}
    before_gates: dict[str, pd.DataFrame] = {}
    for mode, refs in sorted(generations.items()):
        rows = pd.concat([read_artifact(ref) for ref in refs], ignore_index=True)
        accepted[mode] = rows.loc[rows["accepted"], ["text", "label"]]
        replied = rows["text"].fillna("").str.strip() != ""
        before_gates[before_gates_source(mode)] = rows.loc[replied, ["text", "label"]]
    sources = comparable_samples(
        read_snapshot(snapshot.train),
        accepted,
        analysis.diversity_max_texts,
        analysis.seed,
        before_gates,
    )
    key = diversity_key(spec, snapshot.train.sha256, analysis, sources)
    store = ArtifactStore(store_root)
    found = store.existing("diversity", key)
    if found is not None:
        return found
    model_dir = resolve_encoder(analysis.embedding_model)
    embeddings = {
        source: embed_texts(model_dir, texts, batch_size=config.runtime.inference_batch_size)
        for source, texts in sources.items()
    }
    rows_out = []
    for source, texts in sources.items():
        if len(texts) < 2:
            get_run_logger().warning("%s/%s: fewer than 2 texts, no diversity", spec.id, source)
            continue
        emb = embedding_diversity(embeddings[source], metric=analysis.distance)
        lex = lexical_diversity(texts)
        similarity = (
            None
            if source == "real"
            else similarity_to_real(
                embeddings["real"], embeddings[source], analysis.similarity_top_k
            )
        )
        rows_out.append(
            {
                "task": spec.id,
                "subjectivity": spec.subjectivity,
                "source": source,
                "n": len(texts),
                "remote_clique": emb.remote_clique,
                "chamfer": emb.chamfer,
                "distinct_1": lex.distinct_1,
                "distinct_2": lex.distinct_2,
                "distinct_3": lex.distinct_3,
                "type_token_ratio": lex.type_token_ratio,
                "similarity_to_real": similarity,
            }
        )
    manifest = {
        "stage": "diversity",
        "task": spec.id,
        "analysis": analysis.model_dump(mode="json"),
        "encoder": analysis.embedding_model,
        "sizes": {source: len(texts) for source, texts in sources.items()},
    }
    return store.write("diversity", key, pd.DataFrame(rows_out), "diversity", manifest)
