"""The diversity artifact of a classification task: one row per data source with every measure,
built from the sources' texts and their embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from llmsynth_core.config import AnalysisConfig
from llmsynth_core.diversity import (
    Matrix,
    before_gates_source,
    embedding_diversity,
    lexical_diversity,
    similarity_to_real,
)
from llmsynth_core.taskspec import TaskSpec

COLUMNS = ["text", "label"]


def generation_sources(
    generations: Mapping[str, pd.DataFrame],
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Each synthetic set's accepted rows, and its rows before the gates (every non-empty reply),
    as `text` and `label`, in the order of the set names."""
    accepted: dict[str, pd.DataFrame] = {}
    before_gates: dict[str, pd.DataFrame] = {}
    for name, rows in sorted(generations.items()):
        accepted[name] = rows.loc[rows["accepted"], COLUMNS]
        replied = rows["text"].fillna("").str.strip() != ""
        before_gates[before_gates_source(name)] = rows.loc[replied, COLUMNS]
    return accepted, before_gates


def diversity_frame(
    spec: TaskSpec,
    sources: Mapping[str, Sequence[str]],
    embeddings: Mapping[str, Matrix],
    analysis: AnalysisConfig,
) -> tuple[pd.DataFrame, list[str]]:
    """One row per source of at least 2 texts (similarity to real for all but "real"), and the
    sources left out for having fewer."""
    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    for source, texts in sources.items():
        if len(texts) < 2:
            skipped.append(source)
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
        rows.append(
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
    return pd.DataFrame(rows), skipped
