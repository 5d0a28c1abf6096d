"""Prefect task: read a classification task's real splits once, validate them and store them
as snapshots.

Every later stage reads the snapshots, never `data_dir`, and keys its artifacts on their
sha256: editing a data file, or pointing the same output directory at other data, makes new
artifacts instead of silently reusing stale ones. Remote workers need only the store.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePath
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import EvaluationConfig, ExperimentConfig
from llmsynth_core.data import DATA_DIR_HINT, Split, parse_table
from llmsynth_core.errors import DataError
from llmsynth_core.manifests import snapshot_manifest
from llmsynth_core.refs import DataSnapshot as DataSnapshot  # re-exported; lives in core
from llmsynth_core.snapshot import has_own_ids, snapshot_key, snapshot_rows
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, ArtifactStore, join_uri, read_bytes
from tasks.retry import transport_failures_only


@task(
    name="snapshot",
    task_run_name="snapshot {spec.id}",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transport_failures_only,  # a DataError is for the user to fix
    cache_policy=NO_CACHE,  # the content-addressed store below is the cache
)
def snapshot_task(
    spec: TaskSpec, config: ExperimentConfig, data_dir: str, store_root: str
) -> DataSnapshot:
    """Snapshot both splits; `data_dir` is a local directory or an fsspec URI (s3://...)."""
    store = ArtifactStore(store_root)
    return DataSnapshot(
        task=spec.id,
        train=snapshot_split(store, spec, data_dir, "train", None),
        test=snapshot_split(store, spec, data_dir, "test", config.evaluation),
    )


def snapshot_split(
    store: ArtifactStore,
    spec: TaskSpec,
    data_dir: str,
    split: Split,
    evaluation: EvaluationConfig | None,
) -> ArtifactRef:
    """The split's snapshot, written once per content; the source is always read and hashed."""
    location = split_location(spec, data_dir, split)
    data = read_data_file(location)
    source_sha256 = hashlib.sha256(data).hexdigest()
    key = snapshot_key(spec, split, source_sha256, evaluation)

    def build() -> tuple[pd.DataFrame, dict[str, Any]]:
        raw = parse_table(data, location)
        rows = snapshot_rows(raw, spec, location, evaluation)
        own_ids = has_own_ids(raw)
        manifest = snapshot_manifest(
            spec, split, location, source_sha256, len(raw), own_ids, evaluation
        )
        return rows, manifest

    return store.get_or_build("snapshots", key, "snapshot", build)


def split_location(spec: TaskSpec, data_dir: str, split: Split) -> str:
    """Where a split lives: absolute paths and URIs as given, relative ones under data_dir."""
    return data_location(data_dir, spec.data.train if split == "train" else spec.data.test)


def data_location(data_dir: str | None, relative: str) -> str:
    """A data file named in a task spec or config: absolute paths and URIs as given, relative
    ones under `data_dir` (a directory or a URI such as s3://bucket/data)."""
    if "://" in relative or PurePath(relative).is_absolute() or not data_dir:
        return relative
    return join_uri(data_dir, *relative.split("/"))


def read_data_file(location: str) -> bytes:
    """A data file's bytes from a local path or URI; a missing one is the user's to fix."""
    try:
        return read_bytes(location)
    except FileNotFoundError:
        raise DataError(f"{location}: file not found; {DATA_DIR_HINT}") from None
