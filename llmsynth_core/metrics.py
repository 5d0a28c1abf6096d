"""Classification metrics on integer label ids, in plain numpy.

Conventions match scikit-learn with ``labels=range(n_classes)`` and ``zero_division=0``:
every class of the task counts, a precision, recall or F1 whose denominator is zero is 0,
so a class that is neither present nor predicted contributes an F1 of 0 to the macro mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

LabelIds = Sequence[int] | npt.NDArray[np.integer[Any]]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ClassificationMetrics:
    """Accuracy, macro-F1 and per-class scores; per-class tuples are indexed by label id."""

    accuracy: float
    macro_f1: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]
    n_examples: int

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return asdict(self)


def _as_ids(y_true: LabelIds, y_pred: LabelIds, n_classes: int) -> tuple[IntArray, IntArray]:
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {true.size} and {pred.size}"
        )
    if true.size == 0:
        raise ValueError("cannot compute metrics on zero examples; pass at least one")
    for name, ids in (("y_true", true), ("y_pred", pred)):
        bad = ids[(ids < 0) | (ids >= n_classes)]
        if bad.size:
            raise ValueError(
                f"{name} holds label ids outside [0, {n_classes}): {sorted(set(bad.tolist()))}"
            )
    return true, pred


def _safe_divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def confusion_matrix(y_true: LabelIds, y_pred: LabelIds, n_classes: int) -> IntArray:
    """Counts with rows = true label id and columns = predicted label id."""
    true, pred = _as_ids(y_true, y_pred, n_classes)
    flat = np.bincount(true * n_classes + pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def accuracy(y_true: LabelIds, y_pred: LabelIds) -> float:
    """Share of examples whose predicted id equals the true id."""
    true = np.asarray(y_true).reshape(-1)
    pred = np.asarray(y_pred).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {true.size} and {pred.size}"
        )
    if true.size == 0:
        raise ValueError("cannot compute metrics on zero examples; pass at least one")
    return float(np.mean(true == pred))


def precision_recall_f1(
    y_true: LabelIds, y_pred: LabelIds, n_classes: int
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Per-class precision, recall, F1 and support (true count), each of length n_classes."""
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, actual)
    # 2tp / (2tp + fp + fn) equals 2PR / (P + R) wherever both are defined, and is 0 otherwise.
    f1 = _safe_divide(2.0 * tp, predicted + actual)
    return precision, recall, f1, actual.astype(np.int64)


def macro_f1(y_true: LabelIds, y_pred: LabelIds, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over all n_classes label ids."""
    _, _, f1, _ = precision_recall_f1(y_true, y_pred, n_classes)
    return float(f1.mean())


def classification_metrics(
    y_true: LabelIds, y_pred: LabelIds, n_classes: int
) -> ClassificationMetrics:
    """All metrics of one evaluation in one immutable record."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    precision, recall, f1, support = precision_recall_f1(y_true, y_pred, n_classes)
    n = int(cm.sum())
    return ClassificationMetrics(
        accuracy=float(np.trace(cm) / n),
        macro_f1=float(f1.mean()),
        precision=tuple(float(v) for v in precision),
        recall=tuple(float(v) for v in recall),
        f1=tuple(float(v) for v in f1),
        support=tuple(int(v) for v in support),
        confusion=tuple(tuple(int(v) for v in row) for row in cm),
        n_examples=n,
    )
