from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmsynth_core.diversity import (
    before_gates_source,
    comparable_samples,
    embedding_diversity,
    lexical_diversity,
    similarity_to_real,
)


def test_identical_texts_have_zero_diversity() -> None:
    same = np.tile(np.array([[0.3, -1.2, 2.0]], dtype=np.float32), (50, 1))
    result = embedding_diversity(same)
    assert result.remote_clique == pytest.approx(0.0, abs=1e-6)
    assert result.chamfer == pytest.approx(0.0, abs=1e-6)


def test_orthogonal_embeddings_have_cosine_distance_one() -> None:
    orthogonal = np.eye(16, dtype=np.float32) * 3.0
    result = embedding_diversity(orthogonal)
    assert result.remote_clique == pytest.approx(1.0)
    assert result.chamfer == pytest.approx(1.0)


def test_known_euclidean_values_and_chunking_does_not_change_them() -> None:
    points = np.array([[0, 0], [3, 4], [6, 8]], dtype=np.float32)
    # Distances: 5, 10, 5. Remote-Clique: mean of (7.5, 5, 7.5); Chamfer: mean of (5, 5, 5).
    whole = embedding_diversity(points, metric="euclidean")
    chunked = embedding_diversity(points, metric="euclidean", chunk_rows=1)
    assert whole.remote_clique == pytest.approx(20 / 3)
    assert whole.chamfer == pytest.approx(5.0)
    assert chunked == whole


def test_spread_out_sets_score_higher_than_clustered_ones() -> None:
    rng = np.random.default_rng(0)
    centre = rng.normal(size=(1, 32))
    clustered = (centre + 0.05 * rng.normal(size=(300, 32))).astype(np.float32)
    spread = rng.normal(size=(300, 32)).astype(np.float32)
    low, high = embedding_diversity(clustered), embedding_diversity(spread)
    assert high.remote_clique > low.remote_clique
    assert high.chamfer > low.chamfer
    assert embedding_diversity(spread, chunk_rows=7).remote_clique == pytest.approx(
        high.remote_clique, rel=1e-5
    )


def test_similarity_to_real_top_k() -> None:
    real = np.array([[1, 0], [0, 1]], dtype=np.float32)
    synthetic = np.array([[1, 0], [1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    # Real [1,0]: sims 1, 1, 0, -1 -> top-2 mean 1. Real [0,1]: 0, 0, 1, 0 -> top-2 mean 0.5.
    assert similarity_to_real(real, synthetic, top_k=2) == pytest.approx(0.75)
    assert similarity_to_real(real, synthetic, top_k=2, chunk_rows=1) == pytest.approx(0.75)
    # k larger than the synthetic set uses all of it.
    assert similarity_to_real(real, synthetic, top_k=10) == pytest.approx((0.25 + 0.25) / 2)


def test_lexical_diversity_known_values() -> None:
    result = lexical_diversity(["the cat sat", "the cat ran"])
    assert result.distinct_1 == pytest.approx(4 / 6)
    assert result.distinct_2 == pytest.approx(3 / 4)
    assert result.distinct_3 == pytest.approx(2 / 2)
    assert result.type_token_ratio == pytest.approx(1.0)
    assert lexical_diversity(["spam spam spam spam"]).type_token_ratio == pytest.approx(0.25)


def test_too_few_texts_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        embedding_diversity(np.ones((1, 4), dtype=np.float32))


def _texts(prefix: str, labels: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{prefix} {label} {i}", label) for label, k in labels.items() for i in range(k)]
    return pd.DataFrame(rows, columns=["text", "label"])


def test_comparable_samples_measure_every_source_on_the_smallest_set() -> None:
    real = _texts("real", {"pos": 900, "neg": 100})  # 90% positive
    zero_shot = _texts("zero", {"pos": 6, "neg": 6})
    few_shot = _texts("few", {"pos": 4, "neg": 4})  # the smallest set: 8 texts
    before = {
        before_gates_source("zero_shot"): _texts("zero-all", {"pos": 20, "neg": 11}),
        before_gates_source("few_shot"): _texts("few-all", {"pos": 15, "neg": 9}),
    }
    samples = comparable_samples(
        real, {"zero_shot": zero_shot, "few_shot": few_shot}, 3000, seed=0, before_gates=before
    )
    assert list(samples) == [
        "real",
        "zero_shot",
        "few_shot",
        "zero_shot (before gates)",
        "few_shot (before gates)",
    ]
    assert {source: len(texts) for source, texts in samples.items()} == dict.fromkeys(samples, 8)
    # The real sample follows the synthetic labels (balanced), not its own 90/10 split.
    real_labels = [text.split()[1] for text in samples["real"]]
    assert real_labels.count("pos") == real_labels.count("neg") == 4
    assert set(samples["few_shot"]) == set(few_shot["text"])
    assert set(samples["zero_shot (before gates)"]) <= set(
        before["zero_shot (before gates)"]["text"]
    )
    again = comparable_samples(
        real, {"zero_shot": zero_shot, "few_shot": few_shot}, 3000, seed=0, before_gates=before
    )
    assert again == samples


def test_comparable_samples_cap_and_real_shortfall() -> None:
    real = _texts("real", {"pos": 900, "neg": 3})
    synthetic = {"zero_shot": _texts("zero", {"pos": 50, "neg": 50})}
    # max_texts caps everything ...
    capped = comparable_samples(_texts("real", {"pos": 900, "neg": 900}), synthetic, 10, 0)
    assert {len(texts) for texts in capped.values()} == {10}
    # ... and so does a label the real data has too few of: 3 negatives allow 7 texts at 1:1
    # (4 positive, 3 negative).
    short = comparable_samples(real, synthetic, 3000, 0)
    assert {len(texts) for texts in short.values()} == {7}


def test_comparable_samples_pass_tiny_sets_through() -> None:
    real = _texts("real", {"pos": 50, "neg": 50})
    synthetic = {"zero_shot": _texts("zero", {"pos": 1}), "few_shot": _texts("few", {"pos": 5})}
    samples = comparable_samples(real, synthetic, 3000, 0)
    assert len(samples["zero_shot"]) == 1  # too few for diversity; does not shrink the rest
    assert len(samples["few_shot"]) == len(samples["real"]) == 5
