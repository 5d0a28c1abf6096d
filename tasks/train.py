"""Prefect task: fine-tune one classifier on one data source and evaluate it on real test data."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.data import load_split
from llmsynth_core.errors import DataError
from llmsynth_core.hashing import stable_hash
from llmsynth_core.metrics import classification_metrics
from llmsynth_core.sampling import sample_per_label, stratified_subsample
from llmsynth_core.taskspec import TaskSpec
from llmsynth_core.training import EpochLog, train_classifier
from tasks.artifacts import ArtifactRef, ArtifactStore, read_artifact
from tasks.encoders import resolve_encoder
from tasks.progress import reporter
from tasks.retry import transport_failures_only


def training_set(
    spec: TaskSpec,
    config: ExperimentConfig,
    source: str,
    generations: list[ArtifactRef],
    data_dir: Path,
) -> pd.DataFrame:
    """The texts and labels one model trains on: accepted synthetic rows, or size-matched real."""
    if source == "real":
        train = load_split(spec, data_dir, "train")
        counts = {label: config.generation.per_label for label in spec.label_names}
        return sample_per_label(train, counts, config.training.seed)[["text", "label"]]
    frames = [read_artifact(ref) for ref in generations]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty or not rows["accepted"].any():
        raise DataError(
            f"{spec.id}/{source}: no accepted synthetic rows to train on; see the rejects "
            "(reject_reason) in the generation artifacts and loosen generation settings"
        )
    return rows.loc[rows["accepted"], ["text", "label"]].reset_index(drop=True)


def test_set(spec: TaskSpec, config: ExperimentConfig, data_dir: Path) -> pd.DataFrame:
    test = load_split(spec, data_dir, "test")
    limit = config.evaluation.max_test_examples
    return stratified_subsample(test, limit, config.evaluation.seed) if limit else test


def _quiet_transformers() -> None:
    """A fresh classifier head is expected here; its load report and bars are just noise."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def metrics_key(
    spec: TaskSpec,
    config: ExperimentConfig,
    model_name: str,
    source: str,
    generations: list[ArtifactRef],
) -> str:
    """Content address of one trained model's predictions and metrics; real data has no inputs."""
    return stable_hash(
        {
            "task": spec.model_dump(mode="json"),
            "training": config.training.model_dump(mode="json"),
            "evaluation": config.evaluation.model_dump(mode="json"),
            "per_label": config.generation.per_label,
            "model": model_name,
            "source": source,
            "inputs": sorted(ref.sha256 for ref in generations),
        }
    )


@task(
    name="train-evaluate",
    task_run_name="train {spec.id}/{source}/{model_name}",
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
    data_dir: str,
    store_root: str,
) -> ArtifactRef:
    """Train, predict the real test split, and write predictions and a one-row metrics table."""
    store = ArtifactStore(store_root)
    key = metrics_key(spec, config, model_name, source, generations)
    found = store.existing("metrics", key)
    progress_id = f"{spec.id} train {source}"
    if found is not None:
        reporter.finish(progress_id, config.training.epochs)
        return found
    logger = get_run_logger()
    _quiet_transformers()
    train = training_set(spec, config, source, generations, Path(data_dir))
    test = test_set(spec, config, Path(data_dir))
    label_ids = {name: i for i, name in enumerate(spec.label_names)}
    reporter.add(progress_id, config.training.epochs)

    def on_epoch(log: EpochLog) -> None:
        reporter.update(progress_id, log.epoch)
        logger.info(
            "%s/%s epoch %d: loss %.4f (%d steps, %.1fs)",
            spec.id,
            source,
            log.epoch,
            log.train_loss,
            log.steps,
            log.seconds,
        )

    started = time.perf_counter()
    classifier = train_classifier(
        train["text"].tolist(),
        train["label"].map(label_ids).tolist(),
        len(spec.labels),
        resolve_encoder(model_name),
        config.training,
        on_epoch=on_epoch,
        label_names=spec.label_names,
    )
    seconds = time.perf_counter() - started
    proba = classifier.predict_proba(
        test["text"].tolist(), batch_size=config.runtime.inference_batch_size
    )
    pred = proba.argmax(axis=1)
    truth = test["label_id"].to_numpy()
    metrics = classification_metrics(truth, pred, len(spec.labels))
    predictions = pd.DataFrame(
        {
            "task": spec.id,
            "model": model_name,
            "source": source,
            "row": range(len(test)),
            "label": test["label"],
            "label_id": truth,
            "pred_id": pred,
            "pred": [spec.label_names[i] for i in pred],
            "correct": pred == truth,
            "probs": [row.astype(float).tolist() for row in proba],
            "agreement": test["agreement"].astype(float) if "agreement" in test else None,
        }
    )
    manifest = {
        "stage": "training",
        "task": spec.id,
        "model": model_name,
        "source": source,
        "config_hash": config.semantic_hash(),
        "metrics": metrics.as_dict(),
    }
    store.write("predictions", key, predictions, "predictions", manifest)
    summary = pd.DataFrame(
        [
            {
                "task": spec.id,
                "subjectivity": spec.subjectivity,
                "model": model_name,
                "source": source,
                "n_train": len(train),
                "n_test": len(test),
                "macro_f1": metrics.macro_f1,
                "accuracy": metrics.accuracy,
                "train_seconds": seconds,
            }
        ]
    )
    logger.info(
        "%s/%s: macro-F1 %.3f, accuracy %.3f", spec.id, source, metrics.macro_f1, metrics.accuracy
    )
    return store.write("metrics", key, summary, "metrics", manifest)
