"""Seeded sampling: largest-remainder stratification, per-label quotas, per-request draws."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from llmsynth_core.sampling import (
    cap_per_label,
    draw,
    largest_matching_size,
    proportional_counts,
    request_rng,
    sample_like,
    sample_per_label,
    stratified_subsample,
)


def _frame(counts: dict[str, int]) -> pd.DataFrame:
    labels = [label for label, count in counts.items() for _ in range(count)]
    return pd.DataFrame({"id": range(len(labels)), "label": labels})


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(label): int(count) for label, count in frame["label"].value_counts().items()}


@pytest.mark.parametrize(
    ("population", "n", "expected"),
    [
        # Exact shares.
        ({"A": 60, "B": 30, "C": 10}, 10, {"A": 6, "B": 3, "C": 1}),
        # Shares 5.5 / 3.6 / 0.9: floors 5 / 3 / 0; C is lifted to its minimum of one, which
        # is more than its share, so the last seat goes to the largest remaining fraction, B.
        ({"A": 55, "B": 36, "C": 9}, 10, {"A": 5, "B": 4, "C": 1}),
        # Shares 3.5 / 3.3 / 3.2: floors 3 / 3 / 3, one seat left -> A.
        ({"A": 35, "B": 33, "C": 32}, 10, {"A": 4, "B": 3, "C": 3}),
        # Shares 9.8 / 0.1 / 0.1: at least one per label, so "about n" (11) rather than 10.
        ({"A": 98, "B": 1, "C": 1}, 10, {"A": 9, "B": 1, "C": 1}),
        # Shares 12.5 / 5 / 2.5 of n = 20: floors 12 / 5 / 2, one seat left -> the .5s tie,
        # and the more frequent label wins the tie.
        ({"A": 50, "B": 20, "C": 10}, 20, {"A": 13, "B": 5, "C": 2}),
    ],
)
def test_stratified_subsample_uses_largest_remainder(
    population: dict[str, int], n: int, expected: dict[str, int]
) -> None:
    sample = stratified_subsample(_frame(population), n, seed=0)
    assert _counts(sample) == expected


def test_stratified_subsample_is_seeded() -> None:
    frame = _frame({"A": 55, "B": 36, "C": 9})
    first = stratified_subsample(frame, 10, seed=1)["id"].tolist()
    assert stratified_subsample(frame, 10, seed=1)["id"].tolist() == first
    assert stratified_subsample(frame, 10, seed=2)["id"].tolist() != first
    assert len(set(first)) == 10  # without replacement


def test_stratified_subsample_keeps_small_frames_whole() -> None:
    frame = _frame({"A": 3, "B": 2})
    assert stratified_subsample(frame, 5, seed=0)["id"].tolist() == [0, 1, 2, 3, 4]
    assert len(stratified_subsample(frame, 50, seed=0)) == 5


def test_stratified_subsample_on_real_data(sample_dir: Path) -> None:
    test = pd.read_parquet(sample_dir / "ag_news" / "test.parquet")  # 125 per label
    sample = stratified_subsample(test, 100, seed=42)
    assert _counts(sample) == {"World": 25, "Sports": 25, "Business": 25, "Sci/Tech": 25}
    assert set(sample["id"]) <= set(test["id"])


def test_sample_per_label_counts() -> None:
    frame = _frame({"A": 10, "B": 4, "C": 7})
    sample = sample_per_label(frame, {"A": 3, "B": 100}, seed=0)
    assert _counts(sample) == {"A": 3, "B": 4}  # B capped at what exists; C not asked for
    assert sample["id"].is_unique
    again = sample_per_label(frame, {"A": 3, "B": 100}, seed=0)
    assert again["id"].tolist() == sample["id"].tolist()
    assert sample_per_label(frame, {}, seed=0).empty


def test_sample_per_label_other_column() -> None:
    frame = pd.DataFrame({"topic": ["x", "y", "x", "y", "x"], "id": range(5)})
    sample = sample_per_label(frame, {"x": 2}, seed=3, label_column="topic")
    assert sample["topic"].tolist() == ["x", "x"]
    assert set(sample["id"]) <= {0, 2, 4}


def test_draw_and_request_rng() -> None:
    items = list("abcdefgh")
    first = draw(request_rng(0, "ag_news", "1", "few_shot", "World", 5), items, 3)
    again = draw(request_rng(0, "ag_news", "1", "few_shot", "World", 5), items, 3)
    other = [
        draw(request_rng(0, "ag_news", "1", "few_shot", "World", i), items, 3) for i in range(6)
    ]
    assert first == again
    assert len(set(first)) == 3 and set(first) <= set(items)
    assert len({tuple(d) for d in other}) > 1
    assert sorted(draw(random.Random(0), items[:2], 5)) == ["a", "b"]


@pytest.mark.parametrize(
    ("weights", "n", "expected"),
    [
        ({"A": 2, "B": 1, "C": 1}, 8, {"A": 4, "B": 2, "C": 2}),
        # Shares 3.33 / 3.33 / 3.33 of 10: one seat left, the tie goes to the first label.
        ({"A": 1, "B": 1, "C": 1}, 10, {"A": 4, "B": 3, "C": 3}),
        # Shares 5.5 / 3.6 / 0.9: floors 5 / 3 / 0, two seats left -> C (.9), then B (.6).
        ({"A": 55, "B": 36, "C": 9}, 10, {"A": 5, "B": 4, "C": 1}),
        ({"A": 5, "B": 0}, 3, {"A": 3, "B": 0}),
    ],
)
def test_proportional_counts(weights: dict[str, int], n: int, expected: dict[str, int]) -> None:
    assert proportional_counts(weights, n) == expected
    assert sum(proportional_counts(weights, n).values()) == n


def test_largest_matching_size_is_limited_by_the_scarcest_label() -> None:
    # Target 1:1 with 30 rows of B: 61 splits 31 / 30 (the odd seat goes to A); 62 needs 31 B.
    assert largest_matching_size({"A": 500, "B": 30}, {"A": 12, "B": 12}) == 61
    # Target 2:1:1 with 7 rows of A: n = 15 splits 7.5 / 3.75 / 3.75 into 7 / 4 / 4 (the
    # remainder seats go to B and C), so it fits; 16 needs 8 of A.
    assert largest_matching_size({"A": 7, "B": 99, "C": 99}, {"A": 2, "B": 1, "C": 1}) == 15
    # No rows of B: only n = 1 (its odd seat going to A) fits.
    assert largest_matching_size({"A": 5}, {"A": 1, "B": 1}) == 1


def test_sample_like_follows_another_sets_labels() -> None:
    real = _frame({"A": 900, "B": 90, "C": 10})  # 90% A
    synthetic_labels = {"A": 24, "B": 24, "C": 24}  # balanced
    sample = sample_like(real, synthetic_labels, 30, seed=0)
    assert _counts(sample) == {"A": 10, "B": 10, "C": 10}
    assert sample["id"].is_unique
    assert sample_like(real, synthetic_labels, 30, seed=0)["id"].tolist() == sample["id"].tolist()


def test_cap_per_label_keeps_order_and_is_seeded() -> None:
    frame = _frame({"A": 6, "B": 2, "C": 3})
    capped = cap_per_label(frame, {"A": 3, "B": 5}, seed=1)
    assert _counts(capped) == {"A": 3, "B": 2, "C": 3}  # B under its cap, C without one
    assert capped["id"].is_monotonic_increasing  # the frame's own order
    assert capped.equals(cap_per_label(frame, {"A": 3, "B": 5}, seed=1))
    assert not capped.equals(cap_per_label(frame, {"A": 3, "B": 5}, seed=2))
    assert cap_per_label(frame, {"A": 6, "B": 2, "C": 3}, seed=1).equals(frame)
