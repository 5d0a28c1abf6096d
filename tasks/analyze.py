"""Prefect task that ends the DAG: analyse the training runs into the run directory, render
results.md and the report from it, and publish them as Prefect artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from llmsynth_core.analysis import RunInputs, RunTables, analyse_run, run_summary
from llmsynth_core.assumptions import assumed_settings
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.data import parse_table
from llmsynth_core.registry import experiment_specs
from llmsynth_core.results import wide_table
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.size_matching import LabelSizes
from llmsynth_core.subjectivity import Comparison, read_comparisons
from tasks.artifacts import ArtifactRef, provenance, read_artifact, read_parquet, sibling
from tasks.report import write_report
from tasks.run_dir import RunDir
from tasks.snapshot import data_location, read_data_file


@task(name="analyze")
def analyze_task(
    config: ExperimentConfig,
    metrics: list[ArtifactRef],
    run_dir: str,
    diversity: list[ArtifactRef] | None = None,
    data_dir: str | None = None,
    annotations: list[ArtifactRef] | None = None,
    size_matching: list[LabelSizes] | None = None,
) -> str:
    """Write the run directory's analysis (results over seeds, per-run, per-class, confusion,
    curves, diversity and agreement tables, subjectivity, sizes, summary.json), then results.md
    and the report, rendered from those files; returns the path of results.md."""
    inputs = RunInputs(
        runs=_read(metrics),
        predictions=_siblings(metrics, "predictions"),
        curves=_siblings(metrics, "curves"),
        diversity=_read(diversity) if diversity else None,
        estimates=_read(annotations) if annotations else None,
        comparisons=_comparisons(config.analysis.comparisons_file, data_dir),
        sizes=size_matching,
    )
    tables = analyse_run(config, inputs)
    refs = {"metrics": metrics, "diversity": diversity or [], "annotations": annotations or []}
    tables.records[RunLayout.SUMMARY] = run_summary(
        config,
        assumed_settings(config, experiment_specs(config)),
        provenance(),
        {kind: [ref.model_dump() for ref in found] for kind, found in refs.items()},
        size_matching,
    )
    run = RunDir(run_dir)
    _write(run, tables)
    report_md, report_html = write_report(Path(run_dir))
    _publish(config.name, run, tables, report_md, report_html)
    return run.uri(RunLayout.RESULTS_MD)


def _read(refs: list[ArtifactRef]) -> pd.DataFrame:
    return pd.concat([read_artifact(ref) for ref in refs], ignore_index=True)


def _siblings(metrics: list[ArtifactRef], kind: str) -> pd.DataFrame:
    """The predictions or curves written beside each training run's metrics."""
    frames = [read_parquet(sibling(ref.uri, kind), kind) for ref in metrics]
    return pd.concat(frames, ignore_index=True)


def _comparisons(comparisons_file: str | None, data_dir: str | None) -> list[Comparison] | None:
    """The pairwise task judgments of analysis.comparisons_file (relative: to the data, which
    may be a directory or a URI such as s3://bucket/data)."""
    if not comparisons_file:
        return None
    location = data_location(data_dir, comparisons_file)
    return read_comparisons(parse_table(read_data_file(location), location), location)


def _write(run: RunDir, tables: RunTables) -> None:
    for file, frame in tables.frames.items():
        run.write_frame(file, frame)
    for file, record in tables.records.items():
        run.write_json(file, record)


def _publish(name: str, run: RunDir, tables: RunTables, report_md: Path, report_html: Path) -> None:
    """The results, diversity and agreement tables, results.md and the report, in Prefect."""
    results = tables.frames[RunLayout.RESULTS]
    published = {
        "llmsynth-results": (
            wide_table(results, "macro_f1"),
            f"Macro-F1 by task and data source ({name})",
        ),
        "llmsynth-diversity": (
            tables.frames.get(RunLayout.DIVERSITY),
            "Diversity (Remote-Clique, Chamfer, distinct-n) and similarity to real data",
        ),
        "llmsynth-agreement": (
            tables.frames.get(RunLayout.AGREEMENT_FITS),
            "Accuracy vs annotator agreement: linear fit (slope, R^2) and Spearman rho",
        ),
        "llmsynth-real-equivalent": (
            tables.frames.get(RunLayout.REAL_EQUIVALENT),
            "Real training rows per label that reach each synthetic set's Macro-F1",
        ),
    }
    for key, (frame, description) in published.items():
        if frame is not None:
            table = json.loads(frame.to_json(orient="records"))
            create_table_artifact(key=key, table=table, description=description)
    create_markdown_artifact(
        key="llmsynth-results-md", markdown=run.read_text(RunLayout.RESULTS_MD)
    )
    # The Markdown report without its figures (they live beside the file), and a link to the
    # self-contained HTML, which a browser on the machine holding the run directory opens.
    create_markdown_artifact(key="llmsynth-report", markdown=report_md.read_text())
    create_link_artifact(
        key="llmsynth-report-html",
        link=report_html.resolve().as_uri(),
        link_text="llmsynth report (HTML)",
        description=f"Self-contained HTML report of {name}",
    )
