"""The answer first: per task, in plain words, how much of the way from chance to real Macro-F1
each synthetic source closed, what it is worth in real labels, where it is weakest, and which
labels fell short of their quota.

Every number is read from the run's own tables (the results' normalised gap and its paired
interval, per-class F1, agreement sweeps, the generation volume record); nothing is
re-estimated here, so the verdict can never disagree with the tables under it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from llmsynth_core.results import GAP_COLUMNS
from llmsynth_core.worth import real_equivalent_text

# How many classes a verdict names as weakest; the report's per-class table has them all.
WEAKEST_CLASSES = 2
# The optional "worth about N real examples per label" table (llmsynth_core/worth.py, stored
# in the run as real_equivalent.parquet): `text` reads "≈ 11 [6, 19]", "< 2" or "> 64".
REAL_EQUIVALENT_COLUMNS = ("task", "model", "source", "text")
# A results row as DataFrame.to_dict("records") gives it.
Row = Mapping[Hashable, Any]
_MODES = {"zero_shot": "synthetic zero-shot data", "few_shot": "synthetic few-shot data"}


@dataclass(frozen=True)
class Share:
    """(synthetic - chance) / (real - chance) = 1 - normalised gap, with its paired interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class SourceVerdict:
    """One synthetic source of one task and classifier: a headline and the details under it."""

    model: str
    source: str
    headline: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskVerdict:
    """One task: caveats that come before any number (real not above chance), a verdict per
    synthetic source, and notes for the whole task (labels short of their quota)."""

    task: str
    sources: tuple[SourceVerdict, ...]
    notes: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()


def closed_share(row: Row) -> Share:
    """The share of the way from chance to real that a synthetic results row closed; its
    interval is the normalised gap's, mirrored (a high loss is a low share)."""
    return Share(
        1.0 - float(row["normalised_gap"]),
        1.0 - float(row["normalised_gap_high"]),
        1.0 - float(row["normalised_gap_low"]),
    )


def real_above_chance(real: Row, chance: float) -> bool:
    """Whether the real-trained model is clearly above chance: its interval's low end (its
    point estimate, for results without intervals) lies above chance Macro-F1."""
    low = real.get("macro_f1_ci_low")
    floor = real["macro_f1"] if low is None or _missing(low) else low
    return bool(float(floor) > chance)


def describe_source(source: str) -> str:
    """'synthetic few-shot data' for a generation mode; a mixture keeps its name."""
    return _MODES.get(source, f"the {source} data")


def check_real_equivalent(frame: pd.DataFrame) -> pd.DataFrame:
    """The real-equivalent table, its columns checked."""
    missing = [column for column in REAL_EQUIVALENT_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"real_equivalent lacks columns {missing}; it needs {list(REAL_EQUIVALENT_COLUMNS)} "
            "(one row per task, model and synthetic source, as llmsynth_core/worth.py writes)"
        )
    return frame


def task_verdicts(
    results: pd.DataFrame,
    per_class: pd.DataFrame | None = None,
    agreement_sweeps: pd.DataFrame | None = None,
    generation: Mapping[str, Any] | None = None,
    size_matching: Mapping[str, Any] | None = None,
    real_equivalent: pd.DataFrame | None = None,
) -> list[TaskVerdict]:
    """A verdict per task (results order) with a paired gap; empty for results without gaps
    (runs from before the paired gap), since there is no interval to speak from."""
    if not set(GAP_COLUMNS) <= set(results.columns):
        return []
    worth = None if real_equivalent is None else check_real_equivalent(real_equivalent)
    verdicts = []
    for task, rows in results.groupby("task", sort=False):
        synthetic = rows[rows["source"] != "real"]
        models = list(dict.fromkeys(str(m) for m in synthetic["model"]))
        sources, caveats = [], []
        for model in models:
            real = rows[(rows["model"] == model) & (rows["source"] == "real")]
            if real.empty:
                continue
            real_row = real.iloc[0].to_dict()
            mine = synthetic[synthetic["model"] == model]
            chance = float(mine["chance_macro_f1"].iloc[0])
            # Without a chance level there is no share to guard: the headline says n/a.
            meaningful = _missing(chance) or real_above_chance(real_row, chance)
            if not meaningful:
                caveats.append(_not_meaningful(real_row, chance, model if len(models) > 1 else ""))
            for row in mine.to_dict("records"):
                where = (str(task), model, str(row["source"]))
                headline = _headline(row, real_row, meaningful, _worth(worth, *where))
                details = _weakest_classes(per_class, *where) + _low_agreement(
                    agreement_sweeps, *where
                )
                if len(models) > 1:
                    headline = f"with {model}, {headline}"
                sources.append(SourceVerdict(model, str(row["source"]), headline, details))
        if sources:
            notes = tuple(_shortfalls(str(task), generation, size_matching))
            verdicts.append(TaskVerdict(str(task), tuple(sources), notes, tuple(caveats)))
    return verdicts


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _percent(value: float) -> str:
    return f"{round(100 * value)}%"  # an int: never "-0%"


def _headline(row: Row, real: Row, meaningful: bool, worth: str | None) -> str:
    what = describe_source(str(row["source"]))
    scores = f"{row['macro_f1']:.3f} vs real {real['macro_f1']:.3f}"
    if not meaningful:
        text = f"{what} reached Macro-F1 {scores}"  # the task's caveat says why no share
    elif _missing(row["normalised_gap"]):
        text = f"{what} reached Macro-F1 {scores}; the share of the way to real is not available"
    else:
        share = closed_share(row)
        interval = (
            "" if _missing(share.low) else f" [{_percent(share.low)}, {_percent(share.high)}]"
        )
        text = (
            f"{what} closed {_percent(share.value)} of the way from chance to real Macro-F1"
            f"{interval} ({scores}, chance {row['chance_macro_f1']:.3f})"
            f"{_qualifier(row, share)}"
        )
    if worth is not None:
        text += f"; worth {worth} real examples per label"
    return text + "."


def _qualifier(row: Row, share: Share) -> str:
    """What the intervals allow one to say: beat real, indistinguishable from real or from
    chance, or (no qualifier) clearly between the two."""
    gap_low, gap_high = float(row["gap_low"]), float(row["gap_high"])
    gap = f"[{gap_low:.3f}, {gap_high:.3f}]"
    if gap_high < 0:
        return f": better than real (the gap's interval {gap} lies below 0)"
    if gap_low <= 0:
        return f": not distinguishable from real (the gap's interval {gap} includes 0)"
    if not _missing(share.high) and share.high < 0:
        return ": below chance"
    if not _missing(share.low) and share.low <= 0:
        return ": not distinguishable from chance (the share's interval includes 0%)"
    return ""


def _not_meaningful(real: Row, chance: float, model: str) -> str:
    low, high = real.get("macro_f1_ci_low"), real.get("macro_f1_ci_high")
    interval = "" if low is None or _missing(low) else f" [{low:.3f}, {high:.3f}]"
    who = f"The real-trained {model} model" if model else "The real-trained model"
    return (
        f"{who} is not clearly above chance (Macro-F1 {real['macro_f1']:.3f}{interval}, chance "
        f"{chance:.3f}), so how much of the way to real a synthetic source closed is not "
        "meaningful for this task."
    )


def _worth(frame: pd.DataFrame | None, task: str, model: str, source: str) -> str | None:
    return None if frame is None else real_equivalent_text(frame, task, source, model)


def _weakest_classes(
    per_class: pd.DataFrame | None, task: str, model: str, source: str
) -> tuple[str, ...]:
    """The classes whose F1 fell furthest below the real-trained model's."""
    if per_class is None or not {"task", "model", "source", "label", "f1"} <= set(per_class):
        return ()
    mine = per_class[(per_class["task"] == task) & (per_class["model"] == model)]
    synthetic = mine[mine["source"] == source].set_index("label")["f1"]
    real = mine[mine["source"] == "real"].set_index("label")["f1"]
    drop = (real - synthetic.reindex(real.index)).dropna()
    drop = drop[drop > 0].sort_values(ascending=False, kind="stable").head(WEAKEST_CLASSES)
    if drop.empty:
        return ("No class scored below its real-trained F1.",) if not real.empty else ()
    named = ", ".join(
        f"{label} (F1 {synthetic[label]:.2f} vs real {real[label]:.2f})" for label in drop.index
    )
    return (f"Weakest on {named}.",)


def _low_agreement(
    sweeps: pd.DataFrame | None, task: str, model: str, source: str
) -> tuple[str, ...]:
    """Accuracy on the test instances annotators disagree on (agreement below the highest
    threshold with enough instances) against the rest, beside the real-trained model's."""
    columns = {"task", "model", "source", "threshold", "n", "accuracy", "kept"}
    if sweeps is None or not columns <= set(sweeps):
        return ()
    mine = _agreement_split(sweeps, task, model, source)
    real = _agreement_split(sweeps, task, model, "real")
    if mine is None:
        return ()
    threshold, n_low, n_all, low, high = mine
    estimated = sweeps[sweeps["task"] == task].get("agreement_source")
    whose = (
        "an LLM panel's estimated agreement"
        if estimated is not None and (estimated == "llm-estimate").any()
        else "annotator agreement"
    )
    text = (
        f"On the {n_low} of {n_all} test instances with {whose} below {threshold:.2f}, "
        f"accuracy {low:.2f} vs {high:.2f} on the rest"
    )
    if real is not None:
        text += f" (real-trained: {real[3]:.2f} vs {real[4]:.2f})"
    return (text + ".",)


def _agreement_split(
    sweeps: pd.DataFrame, task: str, model: str, source: str
) -> tuple[float, int, int, float, float] | None:
    """(top threshold, n below it, n in all, accuracy below it, accuracy at or above it) from a
    cumulative sweep (accuracy on a_i >= g); None with fewer than two kept thresholds."""
    sweep = sweeps[
        (sweeps["task"] == task) & (sweeps["model"] == model) & (sweeps["source"] == source)
    ]
    kept = sweep[sweep["kept"].astype(bool)].sort_values("threshold")
    if len(kept) < 2:
        return None
    every, top = kept.iloc[0], kept.iloc[-1]
    n_all, n_top = int(every["n"]), int(top["n"])
    n_low = n_all - n_top
    if n_low <= 0:
        return None
    low = (float(every["accuracy"]) * n_all - float(top["accuracy"]) * n_top) / n_low
    return float(top["threshold"]), n_low, n_all, low, float(top["accuracy"])


def _shortfalls(
    task: str, generation: Mapping[str, Any] | None, size_matching: Mapping[str, Any] | None
) -> list[str]:
    """The labels that fell short of their generation quota: from the volume record, or for
    runs without one from the size-matching record's accepted counts."""
    short: list[str] = []
    if generation and generation.get("labels") is not None:
        for row in generation["labels"]:
            if row["task"] == task and int(row["shortfall"]) > 0:
                short.append(f"{row['mode']}/{row['label']} {row['accepted']} of {row['target']}")
        if not short:
            return ["Every label met its generation quota."]
    elif size_matching:
        for label in size_matching.get("labels", []):
            if label["task"] != task:
                continue
            short += [
                f"{source}/{label['label']} {have} of {label['wanted']}"
                for source, have in label["have"].items()
                if source != "real" and have < label["wanted"]
            ]
    if not short:
        return []
    return [f"Fell short of their generation quota (accepted of wanted): {', '.join(short)}."]


def verdict_sentences(verdict: TaskVerdict, details: bool = True) -> list[str]:
    """A task's verdict as sentences: caveats, each source's headline (and its details), then
    the task's notes."""
    lines = list(verdict.caveats)
    for source in verdict.sources:
        headline = source.headline[0].upper() + source.headline[1:]
        lines.append(" ".join([headline, *source.details]) if details else headline)
    return lines + list(verdict.notes)
