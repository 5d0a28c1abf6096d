"""Confidence intervals over seeds and test instances: a two-level (hierarchical) bootstrap.

Each draw resamples the seeds and, shared by every seed in the draw, the test instances, so
the interval covers both training randomness and the finite test set; with one seed it is the
ordinary test-set bootstrap.
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
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=draws).astype(np.float64)
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
