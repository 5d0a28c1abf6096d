"""Confidence intervals over seeds and test instances: a two-level (hierarchical) bootstrap.

Each draw resamples the seeds and, shared by every seed in the draw, the test instances, so
the interval covers both training randomness and the finite test set; with one seed it is the
ordinary test-set bootstrap. `paired_gap` does the same for the real-minus-synthetic gap, with
one draw of test instances and seeds shared by both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from llmsynth_core.metrics import FloatArray, IntArray


@dataclass(frozen=True)
class Interval:
    """Mean over seeds, their standard deviation (0 for one seed), and a bootstrap interval."""

    mean: float
    std: float
    low: float
    high: float


def _scores(confusions: FloatArray, n_classes: int) -> tuple[FloatArray, FloatArray]:
    """Macro-F1 and accuracy of a stack of flattened confusion matrices (…, C*C)."""
    cm = confusions.reshape(*confusions.shape[:-1], n_classes, n_classes)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    denominator = cm.sum(axis=-2) + cm.sum(axis=-1)
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    total = cm.sum(axis=(-2, -1))
    accuracy = np.divide(tp.sum(axis=-1), total, out=np.zeros_like(total), where=total > 0)
    return f1.mean(axis=-1), accuracy


def resample_weights(rng: np.random.Generator, n: int, draws: int) -> FloatArray:
    """Bootstrap resamples of n test instances as instance counts, one row per draw."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=draws).astype(np.float64)


def seed_draws(rng: np.random.Generator, n_seeds: int, draws: int) -> IntArray:
    """Seed indices per column, (1 + draws, seeds): column 0 takes every seed once (the
    whole-test-set estimate), columns 1.. draw the seeds with replacement."""
    drawn: IntArray = np.vstack(
        [np.arange(n_seeds)[None, :], rng.integers(0, n_seeds, (draws, n_seeds))]
    )
    return drawn


def replicate_draws(
    rng: np.random.Generator, n_seeds: int, n_replicates: int, draws: int
) -> IntArray:
    """Synthetic-set indices per column and drawn seed, (1 + draws, seeds, sets): column 0
    takes every set once, columns 1.. draw each seed's sets with replacement."""
    drawn: IntArray = np.concatenate(
        [
            np.broadcast_to(np.arange(n_replicates), (1, n_seeds, n_replicates)),
            rng.integers(0, n_replicates, (draws, n_seeds, n_replicates)),
        ]
    )
    return drawn


def mean_of_draws(values: FloatArray, seeds: IntArray, replicates: IntArray) -> FloatArray:
    """Per column, the mean of `values` (seeds, sets, 1 + draws) over that column's drawn seeds
    and, for each, its drawn sets (`seed_draws`, `replicate_draws`)."""
    columns = np.arange(values.shape[-1])
    means: FloatArray = values[seeds[:, :, None], replicates, columns[:, None, None]].mean(
        axis=(1, 2)
    )
    return means


def macro_f1_draws(
    truth: IntArray, predictions: IntArray, n_classes: int, weights: FloatArray
) -> FloatArray:
    """Macro-F1 of one prediction vector on the whole test set (entry 0) and on each resample
    of `resample_weights` (entries 1..), from confusion counts weighted by the resample."""
    n = truth.size
    indicator = sparse.csr_matrix(
        (np.ones(n), (np.arange(n), truth * n_classes + predictions)),
        shape=(n, n_classes * n_classes),
    )
    counts = np.asarray((sparse.csr_matrix(weights) @ indicator).todense())
    full = np.asarray(indicator.sum(axis=0)).ravel()[None, :]
    return _scores(np.vstack([full, counts]), n_classes)[0]


def seed_intervals(
    truth: Sequence[int] | IntArray,
    predictions: Sequence[Sequence[int] | IntArray],
    n_classes: int,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Macro-F1 and accuracy over seeds (one prediction vector per seed) with bootstrap CIs."""
    true = np.asarray(truth, dtype=np.int64)
    preds = [np.asarray(p, dtype=np.int64) for p in predictions]
    if not preds or true.size == 0:
        raise ValueError("need at least one seed's predictions and one test instance")
    if any(p.shape != true.shape for p in preds):
        raise ValueError("every seed's predictions must cover the same test instances as truth")
    rng = np.random.default_rng(seed)
    n, k = true.size, len(preds)
    cells = n_classes * n_classes
    # A test resample is a vector of instance counts; its confusion matrix for seed s is that
    # vector times a sparse instance -> confusion-cell indicator matrix.
    weights = resample_weights(rng, n, draws)
    indicators = [
        sparse.csr_matrix((np.ones(n), (np.arange(n), true * n_classes + p)), shape=(n, cells))
        for p in preds
    ]
    boot = np.stack([np.asarray((sparse.csr_matrix(weights) @ m).todense()) for m in indicators])
    boot_f1, boot_acc = (a.T for a in _scores(boot, n_classes))  # (draws, seeds)
    point = np.stack([np.asarray(m.sum(axis=0)).ravel() for m in indicators])
    point_f1, point_acc = _scores(point, n_classes)
    chosen = rng.integers(0, k, size=(draws, k))
    rows = np.arange(draws)[:, None]
    tail = (1.0 - level) / 2 * 100
    result = {}
    for name, point, boot in (
        ("macro_f1", point_f1, boot_f1),
        ("accuracy", point_acc, boot_acc),
    ):
        means = boot[rows, chosen].mean(axis=1)
        low, high = np.percentile(means, [tail, 100 - tail])
        std = float(point.std(ddof=1)) if k > 1 else 0.0
        result[name] = Interval(float(point.mean()), std, float(low), float(high))
    return result


def interval_columns(intervals: dict[str, Interval]) -> dict[str, Any]:
    """Flat columns: macro_f1, macro_f1_std, macro_f1_ci_low, macro_f1_ci_high, accuracy, ..."""
    out: dict[str, Any] = {}
    for name, interval in intervals.items():
        out[name] = interval.mean
        out[f"{name}_std"] = interval.std
        out[f"{name}_ci_low"] = interval.low
        out[f"{name}_ci_high"] = interval.high
    return out


@dataclass(frozen=True)
class GapInterval:
    """Real minus synthetic Macro-F1 with a paired bootstrap interval, and the same gap divided
    by the real model's margin over chance (share of its above-chance skill that is lost)."""

    real: float
    synthetic: float
    chance: float
    gap: float
    low: float
    high: float
    normalised: float
    normalised_low: float
    normalised_high: float


def chance_macro_f1(truth: Sequence[int] | IntArray, n_classes: int) -> float:
    """Expected Macro-F1 of a classifier that guesses uniformly at random: class k has recall
    1/K and precision p_k (its share of the test set), so F1_k = 2 p_k (1/K) / (p_k + 1/K);
    1/K on balanced data."""
    shares = np.bincount(np.asarray(truth, dtype=np.int64), minlength=n_classes) / len(truth)
    return float(_chance(shares[None, :], n_classes)[0])


def _chance(shares: FloatArray, n_classes: int) -> FloatArray:
    """`chance_macro_f1` of each row of class shares."""
    recall = 1.0 / n_classes
    chance: FloatArray = (2 * shares * recall / (shares + recall)).mean(axis=-1)
    return chance


def paired_gap(
    truth: Sequence[int] | IntArray,
    real: IntArray,
    synthetic: IntArray,
    n_classes: int,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> GapInterval:
    """Gap = mean real Macro-F1 (over seeds) minus mean synthetic Macro-F1 (over seeds and
    replicates), with a paired bootstrap interval.

    `real` is (seeds, instances) and `synthetic` (seeds, replicates, instances), row s of both
    trained with the same seed, all predicting the same test instances as `truth`. Each draw
    resamples the test instances and the seeds once for both sides and, per drawn seed, the
    synthetic replicates, so the interval covers the finite test set, training randomness and
    (with several replicates) generation randomness, while the difficulty the two sides share
    cancels. The normalised gap divides by real minus `chance_macro_f1`; it is NaN where real
    is not above chance.
    """
    true = np.asarray(truth, dtype=np.int64)
    real_preds = np.asarray(real, dtype=np.int64)
    synth_preds = np.asarray(synthetic, dtype=np.int64)
    if real_preds.ndim != 2 or synth_preds.ndim != 3 or true.size == 0:
        raise ValueError(
            "real must be (seeds, instances) and synthetic (seeds, replicates, instances), "
            "with at least one test instance"
        )
    if real_preds.shape[0] != synth_preds.shape[0]:
        raise ValueError(
            f"real and synthetic must have the same seeds; got {real_preds.shape[0]} real and "
            f"{synth_preds.shape[0]} synthetic; train both sources with training.seeds"
        )
    if real_preds.shape[1] != true.size or synth_preds.shape[2] != true.size:
        raise ValueError("every prediction vector must cover the same test instances as truth")
    n_seeds, n_replicates = synth_preds.shape[:2]
    rng = np.random.default_rng(seed)
    weights = resample_weights(rng, true.size, draws)

    def boot_f1(preds: IntArray) -> FloatArray:
        return macro_f1_draws(true, preds, n_classes, weights)

    real_f1 = np.stack([boot_f1(p) for p in real_preds])  # (seeds, 1 + draws)
    synth_f1 = np.stack([np.stack([boot_f1(p) for p in by_seed]) for by_seed in synth_preds])
    onehot = np.eye(n_classes)[true]
    shares = np.vstack([onehot.mean(axis=0)[None, :], weights @ onehot / true.size])
    chance = _chance(shares, n_classes)  # (1 + draws,)
    # Column 0 is the whole test set with every seed and replicate once; columns 1.. the draws.
    seeds = seed_draws(rng, n_seeds, draws)
    replicates = replicate_draws(rng, n_seeds, n_replicates, draws)
    real_mean = real_f1[seeds, np.arange(draws + 1)[:, None]].mean(axis=1)
    synth_mean = mean_of_draws(synth_f1, seeds, replicates)
    gap = real_mean - synth_mean
    margin = real_mean - chance
    normalised = np.divide(gap, margin, out=np.full_like(gap, np.nan), where=margin > 0)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(gap[1:], [tail, 100 - tail])
    if np.isnan(normalised[0]) or np.isnan(normalised[1:]).all():
        norm_low = norm_high = float("nan")
    else:
        norm_low, norm_high = np.nanpercentile(normalised[1:], [tail, 100 - tail])
    return GapInterval(
        real=float(real_mean[0]),
        synthetic=float(synth_mean[0]),
        chance=float(chance[0]),
        gap=float(gap[0]),
        low=float(low),
        high=float(high),
        normalised=float(normalised[0]),
        normalised_low=float(norm_low),
        normalised_high=float(norm_high),
    )


def gap_columns(interval: GapInterval) -> dict[str, float]:
    """Flat columns of one gap: gap_macro_f1, gap_low, gap_high, normalised_gap, ..."""
    return {
        "chance_macro_f1": interval.chance,
        "gap_macro_f1": interval.gap,
        "gap_low": interval.low,
        "gap_high": interval.high,
        "normalised_gap": interval.normalised,
        "normalised_gap_low": interval.normalised_low,
        "normalised_gap_high": interval.normalised_high,
    }
