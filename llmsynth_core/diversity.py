"""Diversity of a set of texts (after "Directed Diversity", Cox et al. 2021) and similarity to real.

Embedding measures run in row blocks, so 30,000 texts never need their 30,000 x 30,000 distance
matrix at once: a block of `chunk_rows` rows is `chunk_rows x n` floats (2,048 x 30,000 float32
is 245 MB).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from llmsynth_core.parsing import normalise
from llmsynth_core.sampling import largest_matching_size, sample_like, stratified_subsample

Matrix = npt.NDArray[np.float32]
Metric = Literal["cosine", "euclidean"]
DEFAULT_CHUNK_ROWS = 2048


@dataclass(frozen=True)
class EmbeddingDiversity:
    remote_clique: float  # mean over instances of the mean distance to all other instances
    chamfer: float  # mean over instances of the distance to the nearest other instance
    n: int


def _unit(embeddings: Matrix) -> Matrix:
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit: Matrix = (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def _distance_blocks(
    embeddings: Matrix, metric: Metric, chunk_rows: int
) -> Iterator[tuple[int, Matrix]]:
    """(first row, distances of rows [first, first + chunk) to every row)."""
    points = _unit(embeddings) if metric == "cosine" else embeddings.astype(np.float32)
    squared = (points**2).sum(axis=1)
    for start in range(0, len(points), chunk_rows):
        block = points[start : start + chunk_rows]
        dots = block @ points.T
        if metric == "cosine":
            distances = 1.0 - dots
        else:
            gram = squared[start : start + len(block), None] + squared[None, :] - 2.0 * dots
            distances = np.sqrt(np.maximum(gram, 0.0))
        yield start, distances.astype(np.float32)


def embedding_diversity(
    embeddings: Matrix, metric: Metric = "cosine", chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> EmbeddingDiversity:
    """Remote-Clique and Chamfer scores; higher means more diverse."""
    n = len(embeddings)
    if n < 2:
        raise ValueError(f"diversity needs at least 2 texts; got {n}")
    mean_sum = 0.0
    nearest_sum = 0.0
    for start, distances in _distance_blocks(embeddings, metric, chunk_rows):
        rows = np.arange(len(distances))
        distances[rows, start + rows] = 0.0  # self-distance, exactly (rounding leaves ~1e-7)
        mean_sum += float(distances.sum(axis=1, dtype=np.float64).sum()) / (n - 1)
        distances[rows, start + rows] = np.inf
        nearest_sum += float(distances.min(axis=1).sum(dtype=np.float64))
    return EmbeddingDiversity(remote_clique=mean_sum / n, chamfer=nearest_sum / n, n=n)


def similarity_to_real(
    real: Matrix, synthetic: Matrix, top_k: int = 5, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> float:
    """For each real instance, the mean cosine similarity of its top-k synthetic neighbours;
    averaged over the real instances."""
    if len(real) == 0 or len(synthetic) == 0:
        raise ValueError("similarity needs at least one real and one synthetic text")
    k = min(top_k, len(synthetic))
    real_unit, synthetic_unit = _unit(real), _unit(synthetic)
    total = 0.0
    for start in range(0, len(real_unit), chunk_rows):
        sims = real_unit[start : start + chunk_rows] @ synthetic_unit.T
        top = np.partition(sims, len(synthetic) - k, axis=1)[:, len(synthetic) - k :]
        total += float(top.mean(axis=1).sum(dtype=np.float64))
    return total / len(real_unit)


@dataclass(frozen=True)
class LexicalDiversity:
    distinct_1: float
    distinct_2: float
    distinct_3: float
    type_token_ratio: float
    tokens: int


def lexical_diversity(texts: Sequence[str]) -> LexicalDiversity:
    """Distinct-n (unique n-grams / all n-grams, over the whole set) and the mean per-text
    type-token ratio (unique words / words, within each text)."""
    token_lists = [normalise(text).split() for text in texts]
    grams: dict[int, Counter[tuple[str, ...]]] = {1: Counter(), 2: Counter(), 3: Counter()}
    for tokens in token_lists:
        for n, counter in grams.items():
            counter.update(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))

    def distinct(n: int) -> float:
        total = sum(grams[n].values())
        return len(grams[n]) / total if total else 0.0

    ratios = [len(set(tokens)) / len(tokens) for tokens in token_lists if tokens]
    return LexicalDiversity(
        distinct_1=distinct(1),
        distinct_2=distinct(2),
        distinct_3=distinct(3),
        type_token_ratio=float(np.mean(ratios)) if ratios else 0.0,
        tokens=sum(grams[1].values()),
    )


def before_gates_source(mode: str) -> str:
    """The source name of a mode's replies before the quality gates (all non-empty ones)."""
    return f"{mode} (before gates)"


def comparable_samples(
    real: pd.DataFrame,
    synthetic: Mapping[str, pd.DataFrame],
    max_texts: int,
    seed: int,
    before_gates: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, list[str]]:
    """Texts per source (real, each synthetic set, each set before the gates), all of one size:
    the smallest set, at most `max_texts`. Diversity grows with the number of texts, so sets of
    different sizes are not comparable; and the real sample follows the label distribution of
    the synthetic sets pooled, so a label mix cannot pass for diversity either.

    Frames hold `text` and `label`; a set of fewer than 2 texts (no diversity) is passed
    through whole and does not shrink the others.
    """
    others = {**synthetic, **(before_gates or {})}
    sizes = [len(frame) for frame in others.values() if len(frame) >= 2]
    n = min([max_texts, *sizes])
    pooled = pd.concat([frame["label"] for frame in synthetic.values()], ignore_index=True)
    if pooled.empty:
        real_sample = stratified_subsample(real, n, seed)
    else:
        weights = {str(label): int(count) for label, count in pooled.value_counts().items()}
        available = {
            str(label): int(count) for label, count in real["label"].value_counts().items()
        }
        n = min(n, largest_matching_size(available, weights))
        real_sample = sample_like(real, weights, n, seed)
    samples = {"real": real_sample["text"].astype(str).tolist()}
    for source, frame in others.items():
        chosen = frame if len(frame) < 2 else frame.sample(n=n, random_state=seed)
        samples[source] = chosen["text"].astype(str).tolist()
    return samples
