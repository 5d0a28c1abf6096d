"""A run's analysis: every table and record the analyze task writes to the run directory,
computed from the training runs, their predictions and the run's measurements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from llmsynth_core.agreement import HUMAN, agreement_analysis, estimate_analysis
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.findings import findings_table
from llmsynth_core.results import confusion_table, per_class_table, summarise_seeds
from llmsynth_core.run_layout import RunFile, RunLayout
from llmsynth_core.size_matching import LabelSizes
from llmsynth_core.subjectivity import (
    MIN_TASKS,
    Comparison,
    bradley_terry,
    gap_correlation,
    gaps_by_mode,
    subjectivity_source,
    too_few_tasks,
)
from llmsynth_core.worth import real_equivalents, without_curve


@dataclass(frozen=True)
class RunInputs:
    """What one run's analysis reads: its training runs and what was measured beside them."""

    runs: pd.DataFrame  # METRICS rows, one per training run
    predictions: pd.DataFrame  # PREDICTIONS of those runs
    curves: pd.DataFrame  # CURVES of those runs
    diversity: pd.DataFrame | None = None  # DIVERSITY rows; None: not measured
    estimates: pd.DataFrame | None = None  # ANNOTATIONS of the LLM panel; None: no panel
    comparisons: Sequence[Comparison] | None = None  # None: no analysis.comparisons_file
    sizes: Sequence[LabelSizes] | None = None  # None: a run from before size matching


@dataclass
class RunTables:
    """The run directory's analysis files: Parquet frames and JSON records by RunFile."""

    frames: dict[RunFile, pd.DataFrame] = field(default_factory=dict)
    records: dict[RunFile, dict[str, Any]] = field(default_factory=dict)


def analyse_run(config: ExperimentConfig, inputs: RunInputs) -> RunTables:
    """Results over seeds, per-class and confusion tables, diversity, agreement fits, the
    subjectivity fit, the study's three findings, the real-equivalent sizes and the
    size-matching record; files with nothing to say are left out.

    runs.parquet and curves.parquet keep every training run; the learning-curve points
    (real@k) are read only by the real-equivalent tables, never as a synthetic source.
    """
    analysis = config.analysis
    runs, predictions = without_curve(inputs.runs), without_curve(inputs.predictions)
    results = summarise_seeds(runs, predictions, seed=analysis.seed)
    tables = RunTables(
        frames={
            RunLayout.RESULTS: results,
            RunLayout.RUNS: inputs.runs,
            RunLayout.PER_CLASS: per_class_table(runs),
            RunLayout.CONFUSION: confusion_table(runs),
            RunLayout.CURVES: inputs.curves,
        }
    )
    equivalents, curve = real_equivalents(
        inputs.runs,
        inputs.predictions,
        config.generation.modes,
        config.training.mixtures,
        seed=analysis.seed,
    )
    if not equivalents.empty:
        tables.frames[RunLayout.REAL_EQUIVALENT] = equivalents
        tables.frames[RunLayout.REAL_CURVE] = curve
    if inputs.diversity is not None and not inputs.diversity.empty:
        tables.frames[RunLayout.DIVERSITY] = diversity_table(inputs.diversity)
    sweeps, fits = agreement_tables(
        predictions, inputs.estimates, analysis.min_instances_per_threshold
    )
    if not sweeps.empty:
        tables.frames[RunLayout.AGREEMENT_SWEEPS] = sweeps
        tables.frames[RunLayout.AGREEMENT_FITS] = fits
    subjectivity = subjectivity_record(
        results, inputs.comparisons, analysis.comparisons_file or "", analysis.seed
    )
    tables.records[RunLayout.SUBJECTIVITY] = subjectivity
    findings = findings_table(runs, predictions, results, subjectivity, seed=analysis.seed)
    if not findings.empty:
        tables.frames[RunLayout.FINDINGS] = findings
    if inputs.sizes is not None:
        tables.records[RunLayout.SIZE_MATCHING] = {
            "policy": config.training.size_matching,
            "per_label": config.generation.per_label,
            "labels": [size.model_dump(mode="json") for size in inputs.sizes],
        }
    return tables


def diversity_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Diversity rows from the most objective task to the most subjective, sources in order."""
    return frame.sort_values(["subjectivity", "task"], kind="stable").reset_index(drop=True)


def agreement_tables(
    predictions: pd.DataFrame, estimates: pd.DataFrame | None, min_instances: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sweeps and fits of accuracy over agreement thresholds: human agreement where the test
    split has it, the LLM panel's estimate (tagged llm-estimate) for the rest; with the
    declared columns of agreement_sweeps/agreement_fits, panel columns null on human rows."""
    human_sweeps, human_fits = agreement_analysis(predictions, min_instances)
    sweeps = [human_sweeps.assign(agreement_source=HUMAN)]
    fits = [human_fits.assign(agreement_source=HUMAN)]
    if estimates is not None:
        estimate_sweeps, estimate_fits = estimate_analysis(predictions, estimates, min_instances)
        sweeps.append(estimate_sweeps)
        fits.append(estimate_fits)
    return (
        _stack(sweeps, RunLayout.AGREEMENT_SWEEPS),
        _stack(fits, RunLayout.AGREEMENT_FITS),
    )


def _stack(frames: list[pd.DataFrame], file: RunFile) -> pd.DataFrame:
    non_empty = [frame for frame in frames if not frame.empty]
    stacked = pd.concat(non_empty, ignore_index=True) if non_empty else frames[0]
    assert file.schema is not None
    return stacked.reindex(columns=file.schema.names)


def subjectivity_record(
    results: pd.DataFrame,
    comparisons: Sequence[Comparison] | None,
    comparisons_file: str,
    seed: int,
) -> dict[str, Any]:
    """Task subjectivity (the registry's levels, or Bradley-Terry on pairwise judgments)
    against the gap per synthetic source: Spearman's rho with its interval and p-value where
    enough tasks ran, else a note saying how many are needed."""
    first = results.groupby("task")["subjectivity"].first()
    levels = {str(task): float(level) for task, level in first.items()}
    strengths = {} if comparisons is None else bradley_terry(comparisons)
    if comparisons is not None:
        # Subjectivity is the negative objectivity strength: higher = more subjective.
        levels = {task: -strength for task, strength in strengths.items() if task in levels}
    gaps = gaps_by_mode(results)
    correlations: dict[str, dict[str, Any]] = {}
    notes = []
    for mode, by_task in gaps.items():
        shared = len(set(levels) & set(by_task))
        if shared >= MIN_TASKS:
            correlations[mode] = asdict(gap_correlation(levels, by_task, seed=seed))
        else:
            notes.append(too_few_tasks(shared))
    note = "" if correlations else next(iter(notes), too_few_tasks(len(levels)))
    return {
        "source": subjectivity_source(comparisons or (), comparisons_file),
        "subjectivity": levels,
        "bradley_terry": strengths,
        "gaps": gaps,
        "spearman": correlations,
        "note": note,
    }


def run_summary(
    config: ExperimentConfig,
    assumed: list[dict[str, str]],
    provenance: dict[str, Any],
    refs: Mapping[str, Sequence[Mapping[str, Any]]],
    sizes: Sequence[LabelSizes] | None,
) -> dict[str, Any]:
    """summary.json: the config and its hash, provenance, the settings the run assumed, the
    artifacts analysed (metrics, diversity, annotations) and the per-label sizes."""
    return {
        "config": config.model_dump(mode="json"),
        "config_hash": config.semantic_hash(),
        "provenance": provenance,
        "assumed": assumed,
        **{kind: [dict(ref) for ref in found] for kind, found in refs.items()},
        "size_matching": None if sizes is None else [s.model_dump(mode="json") for s in sizes],
    }
