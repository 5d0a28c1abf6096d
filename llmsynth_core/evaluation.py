"""What one training run writes: its predictions on the real test split, its training curve,
its metrics row, its manifest and its model card, built from the class probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from llmsynth_core.metrics import ClassificationMetrics, classification_metrics
from llmsynth_core.training import EpochLog
from llmsynth_core.training_data import TrainingSplits
from llmsynth_core.training_job import TrainingJob


def curve_point(log: EpochLog) -> dict[str, Any]:
    """One epoch of a training curve (the curves schema less the run's ids)."""
    return {
        "epoch": log.epoch,
        "train_loss": log.train_loss,
        "validation_macro_f1": log.validation_macro_f1,
        "test_macro_f1": log.monitor_macro_f1,
        "seconds": log.seconds,
    }


def describe_epoch(log: EpochLog, epochs: int) -> str:
    validation = "-" if log.validation_macro_f1 is None else f"{log.validation_macro_f1:.3f}"
    test = "-" if log.monitor_macro_f1 is None else f"{log.monitor_macro_f1:.3f}"
    return (
        f"epoch {log.epoch}/{epochs}: loss {log.train_loss:.4f}, validation macro-F1 "
        f"{validation}, test macro-F1 {test} ({log.seconds:.1f}s)"
    )


@dataclass(frozen=True)
class Evaluation:
    """A trained run scored on the test split of its `splits`; `proba` is one row of class
    probabilities per test text, in the test split's order."""

    job: TrainingJob
    splits: TrainingSplits
    proba: npt.NDArray[np.floating[Any]]
    curve: Sequence[dict[str, Any]]
    best_epoch: int | None
    epochs_run: int
    train_seconds: float

    @cached_property
    def pred(self) -> npt.NDArray[np.int64]:
        pred: npt.NDArray[np.int64] = self.proba.argmax(axis=1).astype(np.int64)
        return pred

    @cached_property
    def truth(self) -> npt.NDArray[np.int64]:
        return self.splits.test["label_id"].to_numpy()

    @cached_property
    def metrics(self) -> ClassificationMetrics:
        return classification_metrics(self.truth, self.pred, len(self.job.task.labels))

    @property
    def ids(self) -> dict[str, Any]:
        """The columns that name the run in every frame it writes."""
        job = self.job
        return {
            "task": job.task.id,
            "model": job.encoder,
            "source": job.source.name,
            "seed": job.seed,
            "replicate": job.source.replicate,
        }

    def predictions(self) -> pd.DataFrame:
        test, pred, names = self.splits.test, self.pred, self.job.task.label_names
        return pd.DataFrame(
            {
                **self.ids,
                "row": range(len(test)),
                "row_id": test["row_id"],
                "label": test["label"],
                "label_id": self.truth,
                "pred_id": pred,
                "pred": [names[i] for i in pred],
                "correct": pred == self.truth,
                "probs": [row.astype(float).tolist() for row in self.proba],
                "agreement": test["agreement"],
            }
        )

    def curves(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.curve)).assign(**self.ids)

    def metrics_row(self) -> pd.DataFrame:
        metrics, splits, task = self.metrics, self.splits, self.job.task
        return pd.DataFrame(
            [
                {
                    **self.ids,
                    "subjectivity": task.subjectivity,
                    "n_train": len(splits.train),
                    "n_validation": len(splits.validation),
                    "n_test": len(splits.test),
                    "train_counts": [
                        int((splits.data["label"] == name).sum()) for name in task.label_names
                    ],
                    "macro_f1": metrics.macro_f1,
                    "accuracy": metrics.accuracy,
                    "best_epoch": self.best_epoch,
                    "epochs_run": self.epochs_run,
                    "label_names": task.label_names,
                    "precision": list(metrics.precision),
                    "recall": list(metrics.recall),
                    "f1": list(metrics.f1),
                    "support": list(metrics.support),
                    "confusion": [list(row) for row in metrics.confusion],
                    "leaked_test_texts": splits.leaked,
                    "train_seconds": self.train_seconds,
                }
            ]
        )

    def manifest(self) -> dict[str, Any]:
        return {
            "stage": "training",
            **self.ids,
            "config_hash": self.job.provenance.config_hash,
            "metrics": self.metrics.as_dict(),
            "best_epoch": self.best_epoch,
            "leaked_test_texts": self.splits.leaked,
        }

    def summary(self) -> str:
        """One line for the log: the scores and where training stopped."""
        metrics = self.metrics
        return (
            f"{self.job.where}: macro-F1 {metrics.macro_f1:.3f}, accuracy "
            f"{metrics.accuracy:.3f} (best epoch {self.best_epoch} of {self.epochs_run})"
        )

    def model_card(self) -> str:
        """README.md of the saved model: its data, its scores, and how to load it."""
        job, metrics, ids = self.job, self.metrics, self.ids
        task, provenance, source = job.task, job.provenance, ids["source"]
        per_class = "\n".join(
            f"| {name} | {p:.3f} | {r:.3f} | {f:.3f} | {n} |"
            for name, p, r, f, n in zip(
                task.label_names,
                metrics.precision,
                metrics.recall,
                metrics.f1,
                metrics.support,
                strict=True,
            )
        )
        return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [llmsynth, {task.id}, {source}]
---

# {task.name}: {ids["model"]} fine-tuned on {source} data

Trained by llmsynth (experiment `{provenance.experiment}`, config hash `{provenance.config_hash}`),
seed {ids["seed"]}, best epoch {self.best_epoch}. Data source: **{source}** \
({job.source.origin(provenance.generator)}).

Evaluated on the real test split ({metrics.n_examples} texts): Macro-F1 **{metrics.macro_f1:.4f}**,
accuracy **{metrics.accuracy:.4f}**.

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class}

```python
from transformers import pipeline
classify = pipeline("text-classification", model="path/to/this/directory")
```
"""
