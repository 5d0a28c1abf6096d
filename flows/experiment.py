"""What every flow does first: resolve the tasks, check their data, name the run directory."""

from __future__ import annotations

import time
from pathlib import Path

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import artifact_root, is_uri, join_uri, local_state_dir, upload_dir
from tasks.snapshot import DataSnapshot, snapshot_task


def snapshot_data(
    specs: list[TaskSpec], config: ExperimentConfig, data_dir: str, output_dir: str
) -> dict[str, DataSnapshot]:
    """Each task's data, read and validated once, by task id; fails before any paid or slow
    work if a split is missing or malformed."""
    root = store_root(output_dir)
    return {spec.id: snapshot_task(spec, config, data_dir, root) for spec in specs}


def new_run_dir(config: ExperimentConfig, output_dir: str) -> Path:
    """A fresh local directory per flow run: its time, then the experiment's config hash.

    For an object-store output the run is assembled in a local staging directory and copied
    there by `publish_run` when it is complete.
    """
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.semantic_hash()[:8]}"
    if is_uri(output_dir):
        return local_state_dir(output_dir) / "runs" / name
    return Path(output_dir.removeprefix("file://")).resolve() / "runs" / name


def publish_run(run_dir: Path, output_dir: str) -> str:
    """Where the finished run lives: its local directory, or its copy under the output URI."""
    if not is_uri(output_dir):
        return str(run_dir)
    return upload_dir(run_dir, join_uri(output_dir, "runs", run_dir.name))


def store_root(output_dir: str) -> str:
    return artifact_root(output_dir)
