"""The training loop end to end on a tiny random BERT and a toy task, in seconds: the mechanics
(seeding, steps, early stopping, input order, saving) that the slower tests under the
`training` marker check on the real encoder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmsynth_core.config import TrainingConfig
from llmsynth_core.training import EpochLog, LabelledTexts, TrainedClassifier, train_classifier

NAMES = ["fruit", "stone"]
_FRUIT = ["apple", "banana", "cherry", "mango", "pear", "plum", "grape", "melon"]
_STONE = ["granite", "basalt", "marble", "slate", "quartz", "flint", "shale", "chalk"]


def _toy(n: int, offset: int = 0) -> LabelledTexts:
    """n short texts, alternating labels, each word list drawn from its label's vocabulary."""
    texts, labels = [], []
    for i in range(offset, offset + n):
        words = _FRUIT if i % 2 == 0 else _STONE
        texts.append(" ".join(words[(i + j) % len(words)] for j in range(3 + i % 4)))
        labels.append(i % 2)
    return LabelledTexts(texts, labels)


TRAIN, HELD_OUT = _toy(32), _toy(16, offset=100)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """A model this small gains nothing from a second thread, and on a busy machine loses
    seconds a step to it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit(
    model_dir: str, config: TrainingConfig, **kwargs: Any
) -> tuple[TrainedClassifier, list[EpochLog]]:
    logs: list[EpochLog] = []
    clf = train_classifier(
        TRAIN.texts,
        TRAIN.labels,
        2,
        model_dir,
        config,
        on_epoch=logs.append,
        label_names=NAMES,
        device="cpu",
        **kwargs,
    )
    return clf, logs


def test_same_seed_same_model_and_max_steps_stops_mid_epoch(tiny_encoder_dir: str) -> None:
    # 32 rows / batch 8 = 4 steps an epoch; max_steps=5 stops one step into epoch 2.
    config = TrainingConfig(
        epochs=3, batch_size=8, learning_rate=1e-3, max_length=16, seeds=[7], max_steps=5
    )
    first, first_logs = _fit(tiny_encoder_dir, config)
    second, second_logs = _fit(tiny_encoder_dir, config)
    other, _ = _fit(tiny_encoder_dir, config.model_copy(update={"seeds": [8]}))
    proba = first.predict_proba(HELD_OUT.texts)
    assert np.array_equal(proba, second.predict_proba(HELD_OUT.texts))
    assert [log.train_loss for log in first_logs] == [log.train_loss for log in second_logs]
    assert not np.array_equal(proba, other.predict_proba(HELD_OUT.texts))
    assert [log.steps for log in first_logs] == [4, 1]


def test_loss_falls_on_a_separable_toy_task(tiny_encoder_dir: str) -> None:
    config = TrainingConfig(epochs=6, batch_size=8, learning_rate=2e-3, max_length=16, seeds=[1])
    _, logs = _fit(tiny_encoder_dir, config)
    assert [log.epoch for log in logs] == [1, 2, 3, 4, 5, 6]
    assert logs[-1].train_loss < logs[0].train_loss


def test_predict_proba_is_a_distribution_in_input_order(tiny_encoder_dir: str) -> None:
    config = TrainingConfig(epochs=1, batch_size=8, max_length=16, seeds=[1])
    clf, _ = _fit(tiny_encoder_dir, config)
    proba = clf.predict_proba(HELD_OUT.texts, batch_size=5)
    assert proba.shape == (16, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    reversed_proba = clf.predict_proba(HELD_OUT.texts[::-1], batch_size=7)
    np.testing.assert_allclose(reversed_proba[::-1], proba, atol=1e-5)
    assert clf.predict_proba([]).shape == (0, 2)


def test_early_stopping_keeps_the_best_validation_epoch(tiny_encoder_dir: str) -> None:
    config = TrainingConfig(
        epochs=6, batch_size=8, learning_rate=5e-3, max_length=16, early_stopping_patience=1
    )
    validation, monitor = _toy(8, offset=200), _toy(8, offset=300)
    clf, logs = _fit(tiny_encoder_dir, config, validation=validation, monitor=monitor)
    scores = [log.validation_macro_f1 for log in logs]
    assert all(score is not None for score in scores)
    assert all(log.monitor_macro_f1 is not None for log in logs)
    best = max(range(len(scores)), key=lambda i: (scores[i], -i)) + 1
    assert (clf.best_epoch, clf.epochs_run) == (best, len(logs))
    if len(logs) < config.epochs:  # stopped early: exactly `patience` epochs after the best
        assert len(logs) == best + 1
    assert clf.macro_f1(validation) == pytest.approx(scores[best - 1])


def test_without_validation_all_epochs_run(tiny_encoder_dir: str) -> None:
    config = TrainingConfig(epochs=2, batch_size=16, max_length=16, early_stopping_patience=1)
    clf, logs = _fit(tiny_encoder_dir, config)
    assert [log.validation_macro_f1 for log in logs] == [None, None]
    assert (clf.best_epoch, clf.epochs_run) == (2, 2)


def test_saved_model_loads_in_a_pipeline_and_agrees(tiny_encoder_dir: str, tmp_path: Path) -> None:
    from transformers import pipeline

    config = TrainingConfig(epochs=1, batch_size=8, max_length=16, seeds=[1])
    clf, _ = _fit(tiny_encoder_dir, config)
    target = tmp_path / "model"
    clf.save(str(target), model_card="# toy\n")
    assert (target / "README.md").read_text(encoding="utf-8") == "# toy\n"
    saved = json.loads((target / "config.json").read_text(encoding="utf-8"))
    assert saved["id2label"] == {"0": "fruit", "1": "stone"}
    classify = pipeline("text-classification", model=str(target), device="cpu")
    got = [out["label"] for out in classify(list(HELD_OUT.texts))]
    assert got == [NAMES[i] for i in clf.predict(HELD_OUT.texts, max_length=128)]
