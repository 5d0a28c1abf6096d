"""What every flow does first: resolve the tasks, check their data, name the run directory."""

from __future__ import annotations

import time
from pathlib import Path

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import load_registry, select_tasks
from llmsynth_core.taskspec import TaskSpec
from tasks.splits import read_split


def resolve_specs(config: ExperimentConfig) -> list[TaskSpec]:
    registry = load_registry(Path(directory) for directory in config.task_dirs)
    return select_tasks(registry, config.tasks)


def validate_data(specs: list[TaskSpec], data_dir: Path) -> None:
    """Fail before any paid or slow work if a split is missing or malformed."""
    for spec in specs:
        read_split(spec, data_dir, "train")
        read_split(spec, data_dir, "test")


def new_run_dir(config: ExperimentConfig, output_dir: str) -> Path:
    """A fresh directory per flow run: its time, then the experiment's config hash."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(output_dir).resolve() / "runs" / f"{stamp}-{config.semantic_hash()[:8]}"


def store_root(output_dir: str) -> str:
    return str(Path(output_dir).resolve() / "artifacts")
