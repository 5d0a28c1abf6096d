"""Prefect task: fine-tune one classifier for a training job, evaluate it on the real test
split, and store predictions, metrics, training curves and the model."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import EvaluationConfig, RuntimeConfig, TrainingConfig
from llmsynth_core.evaluation import Evaluation, curve_point, describe_epoch
from llmsynth_core.training import EpochLog, TrainedClassifier, train_classifier
from llmsynth_core.training_data import TrainingSplits, labelled, split_for_training
from llmsynth_core.training_job import TrainingJob
from tasks.artifacts import ArtifactRef, ArtifactStore, join_uri, read_artifact
from tasks.encoders import resolve_encoder
from tasks.progress import reporter
from tasks.retry import transport_failures_only
from tasks.splits import read_snapshot

MODEL_CARD = "README.md"


@task(
    name="train-evaluate",
    task_run_name="train {job.name}",
    retries=1,
    retry_condition_fn=transport_failures_only,
    cache_policy=NO_CACHE,  # the content-addressed store below is the cache
)
def train_evaluate_task(
    job: TrainingJob,
    training: TrainingConfig,
    evaluation: EvaluationConfig,
    runtime: RuntimeConfig,
    store_root: str,
) -> ArtifactRef:
    """Train, predict the real test split, and write predictions, curves and a metrics row
    (and the model, with training.save_models); a finished job is read back, not retrained."""
    store = ArtifactStore(store_root)
    key = job.key(training, evaluation)
    progress = f"{job.task.id} train {job.source.name} seed {job.seed}"

    def build() -> tuple[pd.DataFrame, dict[str, Any]]:
        classifier, scored = _fit(job, training, runtime, _splits(job, training), progress)
        manifest = scored.manifest()
        store.write("predictions", key, scored.predictions(), "predictions", manifest)
        store.write("curves", key, scored.curves(), "curves", manifest)
        if training.save_models:
            _save_model(store, key, classifier, scored.model_card())
        get_run_logger().info("%s", scored.summary())
        return scored.metrics_row(), manifest

    ref = store.get_or_build("metrics", key, "metrics", build)
    reporter.finish(progress, training.epochs)
    return ref


def _splits(job: TrainingJob, training: TrainingConfig) -> TrainingSplits:
    """The job's rows from the store, checked and carved; what the checks found is logged."""
    data = job.training_rows(
        lambda: read_snapshot(job.snapshot.train),
        lambda: [read_artifact(ref) for ref in job.generations],
    )
    test = read_snapshot(job.snapshot.test)
    splits = split_for_training(data, test, job.task.label_names, training, job.seed, job.where)
    logger = get_run_logger()
    for message in splits.warnings:
        logger.warning("%s", message)
    for message in splits.notes:
        logger.info("%s", message)
    return splits


def _fit(
    job: TrainingJob,
    training: TrainingConfig,
    runtime: RuntimeConfig,
    splits: TrainingSplits,
    progress: str,
) -> tuple[TrainedClassifier, Evaluation]:
    """Fine-tune on the splits (logging and reporting each epoch), then score the test split."""
    model_dir = resolve_encoder(job.encoder)  # fails before training if not available offline
    _quiet_transformers()
    logger, names = get_run_logger(), job.task.label_names
    curve: list[dict[str, Any]] = []
    reporter.add(progress, training.epochs)

    def on_epoch(log: EpochLog) -> None:
        reporter.update(progress, log.epoch)
        curve.append(curve_point(log))
        logger.info("%s %s", job.where, describe_epoch(log, training.epochs))

    train = labelled(splits.train, names)
    started = time.perf_counter()
    classifier = train_classifier(
        train.texts,
        train.labels,
        len(names),
        model_dir,
        training,
        on_epoch=on_epoch,
        label_names=names,
        seed=job.seed,
        validation=labelled(splits.validation, names) if len(splits.validation) else None,
        monitor=labelled(splits.test, names) if job.source.traces_test else None,
    )
    seconds = time.perf_counter() - started
    texts = splits.test["text"].tolist()
    proba = classifier.predict_proba(texts, batch_size=runtime.inference_batch_size)
    scored = Evaluation(
        job, splits, proba, curve, classifier.best_epoch, classifier.epochs_run, seconds
    )
    return classifier, scored


def _quiet_transformers() -> None:
    """A fresh classifier head is expected here; its load report and bars are just noise."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _save_model(store: ArtifactStore, key: str, classifier: TrainedClassifier, card: str) -> None:
    """The fine-tuned model in Hugging Face format, with a card naming its data and scores; the
    card is written last, so its presence marks a complete model directory."""
    target = store.location("models", key)
    if store.fs.exists(join_uri(target, MODEL_CARD)):
        return
    if store.is_local:
        classifier.save(target, card)  # writes the card last
        return
    with tempfile.TemporaryDirectory(prefix="llmsynth-model-") as local:
        classifier.save(local, card)
        for path in sorted(Path(local).iterdir(), key=lambda p: p.name == MODEL_CARD):
            store.fs.put_file(str(path), join_uri(target, path.name))
