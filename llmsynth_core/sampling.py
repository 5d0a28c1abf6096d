"""Seeded sampling: stratified subsamples and per-request random draws."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TypeVar

import pandas as pd

from llmsynth_core.hashing import stable_hash

T = TypeVar("T")


def request_rng(*key: object) -> random.Random:
    """A generator seeded from a key, so draw i of a label is the same on every run."""
    return random.Random(int(stable_hash(list(key), length=16), 16))


def sample_per_label(
    frame: pd.DataFrame, counts: Mapping[str, int], seed: int, label_column: str = "label"
) -> pd.DataFrame:
    """Up to counts[label] rows of each label, drawn without replacement with a fixed seed."""
    parts = []
    for label, count in counts.items():
        pool = frame[frame[label_column] == label]
        parts.append(pool.sample(n=min(count, len(pool)), random_state=seed))
    return pd.concat(parts).reset_index(drop=True) if parts else frame.iloc[:0]


def cap_per_label(
    frame: pd.DataFrame, counts: Mapping[str, int], seed: int, label_column: str = "label"
) -> pd.DataFrame:
    """At most counts[label] rows of each label (a seeded choice), in the frame's own order; a
    label at or under its count, or without one, keeps every row, so no cap changes nothing."""
    frame = frame.reset_index(drop=True)
    dropped: list[int] = []
    for label, count in counts.items():
        pool = frame[frame[label_column] == label]
        if len(pool) > count:
            kept = pool.sample(n=count, random_state=seed).index
            dropped.extend(pool.index.difference(kept))
    return frame.drop(index=dropped).reset_index(drop=True)


def stratified_subsample(
    frame: pd.DataFrame, n: int, seed: int, label_column: str = "label"
) -> pd.DataFrame:
    """About n rows keeping label proportions (largest remainder, at least one per label)."""
    if n >= len(frame):
        return frame.reset_index(drop=True)
    shares = frame[label_column].value_counts(normalize=True) * n
    counts = {str(label): max(1, int(share)) for label, share in shares.items()}
    # A label lifted to one row has had more than its share: no remainder seat for it.
    remainders = sorted(
        ((label, share) for label, share in shares.items() if int(share) >= 1),
        key=lambda item: item[1] - int(item[1]),
        reverse=True,
    )
    for label, _ in remainders:
        if sum(counts.values()) >= n:
            break
        counts[str(label)] += 1
    return sample_per_label(frame, counts, seed, label_column)


def draw(rng: random.Random, items: Sequence[T], k: int) -> list[T]:
    """k distinct items (fewer if the pool is smaller). A list or tuple is sampled in place:
    copying a label's pool (30,000 examples in AG News) for every request cost more than the
    draw; the same items in the same order draw the same sample."""
    pool = items if isinstance(items, list | tuple) else list(items)
    return rng.sample(pool, min(k, len(pool)))


def proportional_counts(weights: Mapping[str, int], n: int) -> dict[str, int]:
    """n rows split over labels in proportion to integer weights (largest remainder; ties go
    to the heavier label); labels of weight 0 get none."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"weights must have a positive sum; got {dict(weights)}")
    split = {label: divmod(n * weight, total) for label, weight in weights.items()}
    counts = {label: quotient for label, (quotient, _) in split.items()}
    by_remainder = sorted(weights, key=lambda label: (-split[label][1], -weights[label]))
    for label in by_remainder[: n - sum(counts.values())]:
        counts[label] += 1
    return counts


def largest_matching_size(available: Mapping[str, int], weights: Mapping[str, int]) -> int:
    """The largest n whose `proportional_counts(weights, n)` fits in the rows available per
    label."""
    total = sum(weights.values())
    # A label's count is at least floor(n * weight / total), so n < (rows + 1) * total / weight;
    # remainder seats may still overfill a label, hence the walk down.
    n = min(
        (
            -(-(available.get(label, 0) + 1) * total // weight) - 1
            for label, weight in weights.items()
            if weight
        ),
        default=0,
    )
    while n > 0 and any(
        count > available.get(label, 0) for label, count in proportional_counts(weights, n).items()
    ):
        n -= 1
    return n


def sample_like(
    frame: pd.DataFrame,
    weights: Mapping[str, int],
    n: int,
    seed: int,
    label_column: str = "label",
) -> pd.DataFrame:
    """n rows of frame whose labels follow the proportions of `weights` (for example another
    set's label counts); fewer where a label runs short (see `largest_matching_size`)."""
    return sample_per_label(frame, proportional_counts(weights, n), seed, label_column)
