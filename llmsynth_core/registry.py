"""The task registry: built-in task specs plus any directories of user-written specs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.errors import ConfigError
from llmsynth_core.taskspec import TaskSpec, load_task_spec

BUILTIN_DIR = Path(__file__).parent / "task_specs"


def spec_files(extra_dirs: Iterable[Path] = ()) -> list[Path]:
    """YAML spec files: built-ins first, then each extra directory in order."""
    files = sorted(BUILTIN_DIR.glob("*.yaml"))
    for directory in extra_dirs:
        if not directory.is_dir():
            raise ConfigError(
                f"task_dirs: {str(directory)!r} is not a directory; create it or fix the path"
            )
        files.extend(sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]))
    return files


def load_registry(extra_dirs: Iterable[Path] = ()) -> dict[str, TaskSpec]:
    """All task specs by id; a second file with a known id is an error, not a silent override."""
    registry: dict[str, TaskSpec] = {}
    origin: dict[str, Path] = {}
    for path in spec_files(extra_dirs):
        spec = load_task_spec(path)
        if spec.id in registry:
            raise ConfigError(
                f"task id {spec.id!r} is defined twice: {origin[spec.id]} and {path}; "
                "rename the id (and file) of your own task"
            )
        registry[spec.id] = spec
        origin[spec.id] = path
    return registry


def select_tasks(registry: dict[str, TaskSpec], ids: Iterable[str]) -> list[TaskSpec]:
    """The specs for `ids`, in order, with an error naming unknown ids."""
    ids = list(ids)
    unknown = [task_id for task_id in ids if task_id not in registry]
    if unknown:
        raise ConfigError(
            f"tasks: unknown task id(s) {unknown}; known: {sorted(registry)}. "
            "Fix the spelling or add a task spec file under a task_dirs directory"
        )
    return [registry[task_id] for task_id in ids]


def experiment_specs(config: ExperimentConfig) -> list[TaskSpec]:
    """The task specs an experiment names, from the built-ins and its task_dirs."""
    registry = load_registry(Path(directory) for directory in config.task_dirs)
    return select_tasks(registry, config.tasks)
