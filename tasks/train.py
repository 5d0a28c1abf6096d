"""Prefect task: fine-tune one classifier on one data source and seed, evaluate it on the real
test split, and store predictions, metrics, training curves and the model."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.errors import DataError
from llmsynth_core.hashing import stable_hash
from llmsynth_core.metrics import ClassificationMetrics, classification_metrics
from llmsynth_core.schemas import CURVES, METRICS, PREDICTIONS
from llmsynth_core.taskspec import TaskSpec
from llmsynth_core.training import EpochLog, LabelledTexts, TrainedClassifier, train_classifier
from llmsynth_core.training_data import (
    carve_validation,
    check_training_set,
    leaked,
    mixture_rows,
    real_rows,
    synthetic_rows,
)
from tasks.artifacts import ArtifactRef, ArtifactStore, join_uri, read_artifact
from tasks.encoders import resolve_encoder
from tasks.progress import reporter
from tasks.retry import transport_failures_only
from tasks.snapshot import DataSnapshot
from tasks.splits import read_snapshot

MODEL_CARD = "README.md"


def accepted_rows(spec: TaskSpec, source: str, generations: list[ArtifactRef]) -> pd.DataFrame:
    """The accepted synthetic rows of a mode's generation artifacts."""
    frames = [read_artifact(ref) for ref in generations]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty or not rows["accepted"].any():
        raise DataError(
            f"{spec.id}/{source}: no accepted synthetic rows to train on; see the rejects "
            "(reject_reason) in the generation artifacts and loosen generation settings"
        )
    return rows.loc[rows["accepted"], ["text", "label"]].reset_index(drop=True)


def training_set(
    spec: TaskSpec,
    config: ExperimentConfig,
    source: str,
    generations: list[ArtifactRef],
    snapshot: DataSnapshot,
    seed: int,
    counts: dict[str, int] | None = None,
) -> pd.DataFrame:
    """What one model trains on: real rows, a mode's accepted rows or a mixture, at `counts`
    rows per label (a mixture: its synthetic part); None: per_label real rows, all accepted."""
    labels = spec.label_names
    if source == "real":
        train = read_snapshot(snapshot.train)
        return real_rows(train, counts or dict.fromkeys(labels, config.generation.per_label), seed)
    mixture = config.mixture(source)
    if mixture is None:
        return synthetic_rows(accepted_rows(spec, source, generations), counts, seed)
    synthetic = accepted_rows(spec, mixture.mode, generations)
    train = read_snapshot(snapshot.train)
    return mixture_rows(train, synthetic, mixture, labels, seed, counts)


def metrics_key(
    spec: TaskSpec,
    config: ExperimentConfig,
    model_name: str,
    source: str,
    generations: list[ArtifactRef],
    seed: int,
    snapshot: DataSnapshot,
    replicate: int = 0,
    counts: dict[str, int] | None = None,
) -> str:
    """Content address of one training run: everything that changes its model and metrics.

    The test snapshot's sha256 always; the train snapshot's for every source but zero-shot
    rows alone (real and mixed rows come from it, few-shot prompts showed it). The size policy
    acts only through `counts`, and real data is keyed by its counts, not by generation
    artifacts: a new generator that fills its quotas reuses the real models.
    """
    training = config.training.model_dump(
        mode="json", exclude={"seeds", "mixtures", "save_models", "size_matching"}
    )
    mixture = config.mixture(source)
    zero_shot_only = mixture is None and source == "zero_shot"
    return stable_hash(
        {
            "task": spec.model_dump(mode="json"),
            "training": training,
            "evaluation": config.evaluation.model_dump(mode="json"),
            "per_label": config.generation.per_label,
            "model": model_name,
            "source": source,
            "mixture": mixture.model_dump(mode="json") if mixture else None,
            "seed": seed,
            "inputs": [] if source == "real" else sorted(ref.sha256 for ref in generations),
            "counts": counts,
            # The rows name their synthetic set; the columns make a run stored before that
            # column existed train again rather than fail its schema check.
            "replicate": replicate,
            "columns": [METRICS.names, PREDICTIONS.names, CURVES.names],
            "train_snapshot": None if zero_shot_only else snapshot.train.sha256,
            "test_snapshot": snapshot.test.sha256,
        }
    )


def _quiet_transformers() -> None:
    """A fresh classifier head is expected here; its load report and bars are just noise."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _labelled(frame: pd.DataFrame, label_ids: dict[str, int]) -> LabelledTexts:
    return LabelledTexts(frame["text"].tolist(), frame["label"].map(label_ids).tolist())


@task(
    name="train-evaluate",
    task_run_name="train {spec.id}/{source}/{model_name}/seed{seed}/replicate{replicate}",
    retries=1,
    retry_condition_fn=transport_failures_only,
    cache_policy=NO_CACHE,  # the content-addressed store below is the cache
)
def train_evaluate_task(
    spec: TaskSpec,
    config: ExperimentConfig,
    model_name: str,
    source: str,
    generations: list[ArtifactRef],
    snapshot: DataSnapshot,
    store_root: str,
    seed: int | None = None,
    replicate: int = 0,
    counts: dict[str, int] | None = None,
) -> ArtifactRef:
    """Train, predict the real test split, and write predictions, curves and a metrics row;
    `counts`: rows per label to train on (see `training_set`)."""
    seed = config.training.seeds[0] if seed is None else seed
    store = ArtifactStore(store_root)
    key = metrics_key(
        spec, config, model_name, source, generations, seed, snapshot, replicate, counts
    )
    found = store.existing("metrics", key)
    progress_id = f"{spec.id} train {source} seed {seed}"
    if found is not None:
        reporter.finish(progress_id, config.training.epochs)
        return found
    logger = get_run_logger()
    where = f"{spec.id}/{source}/seed {seed}"
    data = training_set(spec, config, source, generations, snapshot, seed, counts)
    check_training_set(data, spec.label_names, where)
    test = read_snapshot(snapshot.test)
    overlap = leaked(data["text"], test["text"])
    if overlap:
        logger.warning(
            "%s: %d of %d test texts also occur in the training data (leakage); the test "
            "score is optimistic. Deduplicate the splits to remove it.",
            where,
            overlap,
            len(test),
        )
    training = config.training
    train, validation = carve_validation(
        data, training.validation_fraction, seed, training.min_validation_per_label
    )
    if training.validation_fraction > 0 and validation.empty:
        logger.info(
            "%s: no validation split (fewer than %d rows per label at validation_fraction "
            "%.2f), so no early stopping; raise training.validation_fraction or "
            "generation.per_label to get one",
            where,
            training.min_validation_per_label,
            training.validation_fraction,
        )
    model_dir = resolve_encoder(model_name)  # fails before training if not available offline
    _quiet_transformers()
    label_ids = {name: i for i, name in enumerate(spec.label_names)}
    reporter.add(progress_id, config.training.epochs)
    curve: list[dict[str, Any]] = []

    def on_epoch(log: EpochLog) -> None:
        reporter.update(progress_id, log.epoch)
        curve.append(
            {
                "epoch": log.epoch,
                "train_loss": log.train_loss,
                "validation_macro_f1": log.validation_macro_f1,
                "test_macro_f1": log.monitor_macro_f1,
                "seconds": log.seconds,
            }
        )
        logger.info(
            "%s epoch %d/%d: loss %.4f, validation macro-F1 %s, test macro-F1 %.3f (%.1fs)",
            where,
            log.epoch,
            config.training.epochs,
            log.train_loss,
            "-" if log.validation_macro_f1 is None else f"{log.validation_macro_f1:.3f}",
            log.monitor_macro_f1 or 0.0,
            log.seconds,
        )

    started = time.perf_counter()
    classifier = train_classifier(
        train["text"].tolist(),
        train["label"].map(label_ids).tolist(),
        len(spec.labels),
        model_dir,
        config.training,
        on_epoch=on_epoch,
        label_names=spec.label_names,
        seed=seed,
        validation=_labelled(validation, label_ids) if len(validation) else None,
        monitor=_labelled(test, label_ids),
    )
    seconds = time.perf_counter() - started
    proba = classifier.predict_proba(
        test["text"].tolist(), batch_size=config.runtime.inference_batch_size
    )
    pred = proba.argmax(axis=1)
    truth = test["label_id"].to_numpy()
    metrics = classification_metrics(truth, pred, len(spec.labels))
    ids: dict[str, Any] = {
        "task": spec.id,
        "model": model_name,
        "source": source,
        "seed": seed,
        "replicate": replicate,
    }
    manifest = {
        "stage": "training",
        **ids,
        "config_hash": config.semantic_hash(),
        "metrics": metrics.as_dict(),
        "best_epoch": classifier.best_epoch,
        "leaked_test_texts": overlap,
    }
    predictions = pd.DataFrame(
        {
            **ids,
            "row": range(len(test)),
            "row_id": test["row_id"],
            "label": test["label"],
            "label_id": truth,
            "pred_id": pred,
            "pred": [spec.label_names[i] for i in pred],
            "correct": pred == truth,
            "probs": [row.astype(float).tolist() for row in proba],
            "agreement": test["agreement"],
        }
    )
    store.write("predictions", key, predictions, "predictions", manifest)
    store.write("curves", key, pd.DataFrame(curve).assign(**ids), "curves", manifest)
    if config.training.save_models:
        _save_model(store, key, classifier, spec, config, ids, metrics)
    summary = pd.DataFrame(
        [
            {
                **ids,
                "subjectivity": spec.subjectivity,
                "n_train": len(train),
                "n_validation": len(validation),
                "n_test": len(test),
                "train_counts": [int((data["label"] == name).sum()) for name in spec.label_names],
                "macro_f1": metrics.macro_f1,
                "accuracy": metrics.accuracy,
                "best_epoch": classifier.best_epoch,
                "epochs_run": classifier.epochs_run,
                "label_names": spec.label_names,
                "precision": list(metrics.precision),
                "recall": list(metrics.recall),
                "f1": list(metrics.f1),
                "support": list(metrics.support),
                "confusion": [list(row) for row in metrics.confusion],
                "leaked_test_texts": overlap,
                "train_seconds": seconds,
            }
        ]
    )
    logger.info(
        "%s: macro-F1 %.3f, accuracy %.3f (best epoch %s of %d)",
        where,
        metrics.macro_f1,
        metrics.accuracy,
        classifier.best_epoch,
        classifier.epochs_run,
    )
    return store.write("metrics", key, summary, "metrics", manifest)


def _save_model(
    store: ArtifactStore,
    key: str,
    classifier: TrainedClassifier,
    spec: TaskSpec,
    config: ExperimentConfig,
    ids: dict[str, Any],
    metrics: ClassificationMetrics,
) -> None:
    """The fine-tuned model in Hugging Face format, with a card naming its data and scores; the
    card is written last, so its presence marks a complete model directory."""
    target = store.location("models", key)
    if store.fs.exists(join_uri(target, MODEL_CARD)):
        return
    card = model_card(spec, config, ids, metrics, classifier.best_epoch)
    if store.is_local:
        classifier.save(target, card)  # writes the card last
        return
    with tempfile.TemporaryDirectory(prefix="llmsynth-model-") as local:
        classifier.save(local, card)
        for path in sorted(Path(local).iterdir(), key=lambda p: p.name == MODEL_CARD):
            store.fs.put_file(str(path), join_uri(target, path.name))


def model_card(
    spec: TaskSpec,
    config: ExperimentConfig,
    ids: dict[str, Any],
    metrics: ClassificationMetrics,
    best_epoch: int | None,
) -> str:
    per_class = "\n".join(
        f"| {name} | {p:.3f} | {r:.3f} | {f:.3f} | {n} |"
        for name, p, r, f, n in zip(
            spec.label_names,
            metrics.precision,
            metrics.recall,
            metrics.f1,
            metrics.support,
            strict=True,
        )
    )
    origin = (
        "a stratified sample of the real training split"
        if ids["source"] == "real"
        else f"LLM-generated rows from {config.llm.model}"
    )
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [llmsynth, {spec.id}, {ids["source"]}]
---

# {spec.name}: {ids["model"]} fine-tuned on {ids["source"]} data

Trained by llmsynth (experiment `{config.name}`, config hash `{config.semantic_hash()}`),
seed {ids["seed"]}, best epoch {best_epoch}. Data source: **{ids["source"]}** ({origin}).

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
