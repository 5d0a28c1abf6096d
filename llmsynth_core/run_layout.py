"""Every file of a run directory: its name and, for Parquet files, its declared schema.

Writers and readers go through `tasks/run_dir.py`, which checks each Parquet file against the
schema declared here on write and on read; no other module spells a run file's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from llmsynth_core.schemas import (
    CURVES,
    DIVERSITY,
    FINDINGS,
    GENERATIONS,
    METRICS,
    REAL_CURVE,
    REAL_EQUIVALENT,
)

FileKind = Literal["parquet", "json", "text"]

_RUN_KEYS = [
    ("task", pa.string()),
    ("subjectivity", pa.int64()),
    ("model", pa.string()),
    ("source", pa.string()),
]
_GROUP = [("task", pa.string()), ("model", pa.string()), ("source", pa.string())]
# Who gave the agreement (human or llm-estimate) and, for the estimate, the LLM panel: null
# on rows of human agreement.
_AGREEMENT_ORIGIN = [
    ("agreement_source", pa.string()),
    ("panel", pa.string()),
    ("panel_instances", pa.int64()),
    ("panel_dropped", pa.int64()),
]


def _interval(metric: str) -> list[tuple[str, pa.DataType]]:
    return [
        (metric, pa.float64()),
        (f"{metric}_std", pa.float64()),
        (f"{metric}_ci_low", pa.float64()),
        (f"{metric}_ci_high", pa.float64()),
    ]


# results.summarise_seeds: one row per task, model and source; gap columns null for real.
RESULTS_SCHEMA = pa.schema(
    [
        *_RUN_KEYS,
        ("n_seeds", pa.int64()),
        ("n_replicates", pa.int64()),
        *_interval("macro_f1"),
        *_interval("accuracy"),
        ("n_train", pa.int64()),
        ("n_test", pa.int64()),
        ("best_epoch", pa.float64()),
        ("train_seconds", pa.float64()),
        ("chance_macro_f1", pa.float64()),
        ("gap_macro_f1", pa.float64()),
        ("gap_low", pa.float64()),
        ("gap_high", pa.float64()),
        ("normalised_gap", pa.float64()),
        ("normalised_gap_low", pa.float64()),
        ("normalised_gap_high", pa.float64()),
    ]
)

PER_CLASS_SCHEMA = pa.schema(
    [
        *_RUN_KEYS,
        ("label", pa.string()),
        ("precision", pa.float64()),
        ("recall", pa.float64()),
        ("f1", pa.float64()),
        ("support", pa.float64()),  # mean over seeds
    ]
)

CONFUSION_SCHEMA = pa.schema(
    [*_RUN_KEYS, ("true", pa.string()), ("pred", pa.string()), ("count", pa.int64())]
)

AGREEMENT_SWEEPS_SCHEMA = pa.schema(
    [
        *_GROUP,
        ("threshold", pa.float64()),
        ("n", pa.int64()),
        ("accuracy", pa.float64()),
        ("kept", pa.bool_()),
        *_AGREEMENT_ORIGIN,
    ]
)

AGREEMENT_FITS_SCHEMA = pa.schema(
    [
        *_GROUP,
        ("slope", pa.float64()),
        ("intercept", pa.float64()),
        ("r_squared", pa.float64()),
        ("rho", pa.float64()),
        ("rho_p_value", pa.float64()),
        ("thresholds", pa.int64()),
        *_AGREEMENT_ORIGIN,
    ]
)


@dataclass(frozen=True)
class RunFile:
    """One file of a run directory; `schema` is set exactly for the Parquet files."""

    name: str
    about: str
    schema: pa.Schema | None = None

    @property
    def kind(self) -> FileKind:
        if self.name.endswith(".parquet"):
            return "parquet"
        return "json" if self.name.endswith(".json") else "text"


class RunLayout:
    """The catalog of a run directory (runs/<time>-<hash>): what each file holds."""

    SYNTHETIC = RunFile("synthetic.parquet", "accepted generated rows", GENERATIONS)
    REJECTS = RunFile("rejects.parquet", "rejected generated rows, with reasons", GENERATIONS)
    GENERATION = RunFile("generation.json", "volume, drops per gate and cost per label")
    RESULTS = RunFile("results.parquet", "one row per task, model and source", RESULTS_SCHEMA)
    RUNS = RunFile("runs.parquet", "one row per training run", METRICS)
    PER_CLASS = RunFile("per_class.parquet", "per-class scores, mean over seeds", PER_CLASS_SCHEMA)
    CONFUSION = RunFile("confusion.parquet", "confusion counts summed over seeds", CONFUSION_SCHEMA)
    CURVES = RunFile("curves.parquet", "per-epoch loss and Macro-F1", CURVES)
    DIVERSITY = RunFile("diversity.parquet", "diversity and similarity to real", DIVERSITY)
    AGREEMENT_SWEEPS = RunFile(
        "agreement_sweeps.parquet", "accuracy over agreement thresholds", AGREEMENT_SWEEPS_SCHEMA
    )
    AGREEMENT_FITS = RunFile(
        "agreement_fits.parquet", "linear fit and Spearman's rho per sweep", AGREEMENT_FITS_SCHEMA
    )
    REAL_CURVE = RunFile(
        "real_curve.parquet", "Macro-F1 by real rows per label, alone and mixed", REAL_CURVE
    )
    REAL_EQUIVALENT = RunFile(
        "real_equivalent.parquet",
        "real rows per label each synthetic set is worth",
        REAL_EQUIVALENT,
    )
    FINDINGS = RunFile(
        "findings.parquet", "the study's three findings tested on this run", FINDINGS
    )
    SUBJECTIVITY = RunFile("subjectivity.json", "task subjectivity against the gap")
    SIZE_MATCHING = RunFile("size_matching.json", "training rows per label and source")
    SUMMARY = RunFile("summary.json", "config, provenance and the artifacts analysed")
    RESULTS_MD = RunFile("results.md", "the report's text sections, without figures")
    REPORT_MD = RunFile("report.md", "the report, figures in FIGURES_DIR")
    REPORT_HTML = RunFile("report.html", "the report as one self-contained page")

    FIGURES_DIR = "report-files"

    @classmethod
    def files(cls) -> list[RunFile]:
        return [value for value in vars(cls).values() if isinstance(value, RunFile)]

    @classmethod
    def figure(cls, key: str) -> str:
        """A report figure's path relative to the run directory."""
        return f"{cls.FIGURES_DIR}/{key}.png"
