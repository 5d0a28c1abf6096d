"""Generate one label chunk in a process of its own, so a test can kill it mid-way.

Usage: python -m tests.tasks.generate_chunk ARGS.json, where ARGS.json holds `config` (an
experiment config as JSON), `mode`, `label`, `snapshot` (the task's DataSnapshot as JSON),
`store_root` and `base_url`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import load_registry, select_tasks
from tasks.generate import generate_label_task
from tasks.snapshot import DataSnapshot


def main(args_path: str) -> None:
    args = json.loads(Path(args_path).read_text(encoding="utf-8"))
    config = ExperimentConfig.model_validate(args["config"])
    (spec,) = select_tasks(load_registry(), config.tasks)
    # `.fn` is the undecorated function: no Prefect run, just the work.
    asyncio.run(
        generate_label_task.fn(
            spec,
            config,
            args["mode"],
            args["label"],
            DataSnapshot.model_validate(args["snapshot"]),
            args["store_root"],
            args["base_url"],
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
