"""A run's synthetic data as a Hugging Face `datasets` Dataset, on disk or on the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmsynth_core.errors import LlmsynthError
from llmsynth_core.run_layout import RunLayout
from tasks.run_dir import RunDir

# Enough to train on and to trace each row; the full provenance stays in the run directory.
EXPORT_COLUMNS = [
    "text",
    "label",
    "task",
    "mode",
    "model",
    "prompt_version",
    "request_hash",
    "few_shot_ids",
]


def export_dataset(run_dir: Path, out_dir: Path | None, hub_repo: str | None = None) -> Any:
    """Write a run's accepted synthetic rows as a DatasetDict with one split per task and mode."""
    from datasets import Dataset, DatasetDict

    run = RunDir(str(run_dir))
    if not run.exists(RunLayout.SYNTHETIC):
        raise LlmsynthError(
            f"{run.uri(RunLayout.SYNTHETIC)} not found; give the run directory printed by "
            "`llmsynth generate` or `llmsynth run` (it holds the synthetic data)"
        )
    if out_dir is None and hub_repo is None:
        raise LlmsynthError("nothing to do: give --out DIR and/or --push-to-hub REPO")
    frame = run.read_frame(RunLayout.SYNTHETIC)[EXPORT_COLUMNS]
    splits = {
        f"{task}.{mode}": Dataset.from_pandas(group.reset_index(drop=True), preserve_index=False)
        for (task, mode), group in frame.groupby(["task", "mode"], sort=True)
    }
    dataset = DatasetDict(splits)
    if out_dir is not None:
        dataset.save_to_disk(str(out_dir))
    if hub_repo is not None:
        # Uses the token of `huggingface-cli login` or HF_TOKEN; never passed through here.
        dataset.push_to_hub(hub_repo, private=True)
    return dataset
