"""Re-analyse a finished run from its summary: results, fits, subjectivity, report."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.experiment import publish_run
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.size_matching import LabelSizes
from tasks.analyze import analyze_task
from tasks.artifacts import ArtifactRef, download_dir, is_uri, local_state_dir
from tasks.run_dir import RunDir


@flow(name="analyze", log_prints=True)
def analyze(run_dir: str, data_dir: str | None = None) -> str:
    """Recompute a run's analysis and report from the artifacts its summary names.

    Args:
        run_dir: A run directory (runs/<time>-<hash>) or its object-store URI.
        data_dir: Directory holding the task data, for comparisons files given relative to it.
    """
    local = _local_copy(run_dir)
    summary = RunDir(str(local)).read_json(RunLayout.SUMMARY)
    config = ExperimentConfig.model_validate(summary["config"])

    def refs(field: str) -> list[ArtifactRef]:
        return [ArtifactRef.model_validate(ref) for ref in summary.get(field, [])]

    recorded = summary.get("size_matching")
    sizes = None if recorded is None else [LabelSizes.model_validate(raw) for raw in recorded]
    analyze_task(
        config,
        refs("metrics"),
        str(local),
        refs("diversity"),
        data_dir,
        refs("annotations"),
        sizes,
    )
    output_dir, _, _ = run_dir.rstrip("/").rpartition("/runs/")
    location = publish_run(local, output_dir)
    get_run_logger().info("re-analysed %s", location)
    return location


def _local_copy(run_dir: str) -> Path:
    """The run itself when local; a fresh local copy of an object-store run."""
    if not is_uri(run_dir):
        return Path(run_dir)
    output_dir, _, name = run_dir.rstrip("/").rpartition("/runs/")
    return download_dir(run_dir, local_state_dir(output_dir) / "runs" / name)
