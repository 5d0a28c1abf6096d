"""Known-answer tests for the numpy metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmsynth_core.metrics import (
    ClassificationMetrics,
    accuracy,
    classification_metrics,
    confusion_matrix,
    macro_f1,
    precision_recall_f1,
)

# Hand-computed 3-class example:
#   class 0: tp=2, predicted 2, present 3 -> P=1,   R=2/3, F1=0.8
#   class 1: tp=1, predicted 2, present 2 -> P=1/2, R=1/2, F1=0.5
#   class 2: tp=1, predicted 2, present 1 -> P=1/2, R=1,   F1=2/3
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


def test_perfect_predictions_score_one() -> None:
    y = [0, 1, 2, 3, 2, 1, 0]
    m = classification_metrics(y, y, 4)
    assert m.accuracy == 1.0
    assert m.macro_f1 == 1.0
    assert m.f1 == (1.0, 1.0, 1.0, 1.0)
    assert m.confusion == ((2, 0, 0, 0), (0, 2, 0, 0), (0, 0, 2, 0), (0, 0, 0, 1))


def test_hand_computed_three_class_example() -> None:
    precision, recall, f1, support = precision_recall_f1(Y_TRUE, Y_PRED, 3)
    np.testing.assert_allclose(precision, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(recall, [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(f1, [0.8, 0.5, 2 / 3])
    assert support.tolist() == [3, 2, 1]
    assert math.isclose(macro_f1(Y_TRUE, Y_PRED, 3), (0.8 + 0.5 + 2 / 3) / 3)
    assert math.isclose(accuracy(Y_TRUE, Y_PRED), 4 / 6)


def test_confusion_matrix_rows_are_true_columns_are_predicted() -> None:
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert cm.dtype == np.int64


def test_class_absent_from_both_counts_as_zero_in_macro_f1() -> None:
    # Label id 3 is in the task's label set but neither present nor predicted: F1 0, as in
    # sklearn's f1_score(labels=range(4), average="macro", zero_division=0).
    m = classification_metrics(Y_TRUE, Y_PRED, 4)
    assert m.f1[3] == 0.0
    assert m.precision[3] == 0.0
    assert m.recall[3] == 0.0
    assert math.isclose(m.macro_f1, (0.8 + 0.5 + 2 / 3) / 4)
    assert m.confusion[3] == (0, 0, 0, 0)


def test_predicted_but_absent_class_has_zero_precision_and_recall() -> None:
    m = classification_metrics([0, 0, 1], [0, 2, 1], 3)
    assert m.precision[2] == 0.0
    assert m.recall[2] == 0.0
    assert m.f1[2] == 0.0
    assert m.support == (2, 1, 0)
    assert math.isclose(m.macro_f1, (2 / 3 + 1.0 + 0.0) / 3)


def test_metrics_record_is_frozen_and_serialisable() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, 3)
    assert isinstance(m, ClassificationMetrics)
    with pytest.raises(AttributeError):
        m.accuracy = 0.0  # type: ignore[misc]
    d = m.as_dict()
    assert d["n_examples"] == 6
    assert d["confusion"] == ((2, 1, 0), (0, 1, 1), (0, 0, 1))


def test_numpy_inputs_are_accepted() -> None:
    m = classification_metrics(np.array(Y_TRUE), np.array(Y_PRED, dtype=np.int32), 3)
    assert math.isclose(m.accuracy, 4 / 6)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n_classes", "message"),
    [
        ([0, 1], [0], 2, "same length"),
        ([], [], 2, "zero examples"),
        ([0, 3], [0, 1], 3, r"y_true holds label ids outside \[0, 3\): \[3\]"),
        ([0, 1], [0, -1], 2, r"y_pred holds label ids outside"),
        ([0], [0], 0, "n_classes must be >= 1"),
    ],
)
def test_invalid_inputs_raise(
    y_true: list[int], y_pred: list[int], n_classes: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, y_pred, n_classes)


def test_agrees_with_sklearn_on_random_labels() -> None:
    from sklearn import metrics as sklearn_metrics

    rng = np.random.default_rng(0)
    # Five classes, id 4 never used, so the zero_division convention is exercised.
    y_true = rng.integers(0, 4, size=300)
    y_pred = rng.integers(0, 4, size=300)
    ours = classification_metrics(y_true, y_pred, 5)
    labels = list(range(5))
    theirs = sklearn_metrics.f1_score(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    assert math.isclose(ours.macro_f1, theirs, abs_tol=1e-12)
    assert math.isclose(ours.accuracy, sklearn_metrics.accuracy_score(y_true, y_pred))
    assert (
        np.array(ours.confusion).tolist()
        == sklearn_metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    )
