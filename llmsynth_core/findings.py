"""The study's three findings, tested on one run by one rule: a finding holds for a task where
the 95% paired interval of its gap excludes 0 in the paper's direction (its low end above 0).

(1) real > few-shot > zero-shot, per task and model, three paired Macro-F1 gaps; (2) the gap
grows with task subjectivity, Spearman's rho across tasks per mode; (3) accuracy rises with
instance-level agreement, more steeply for synthetic-trained models, per task with human
agreement. One tidy frame (schemas.FINDINGS), one row per tested comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from llmsynth_core.metrics import FloatArray
from llmsynth_core.results import UNIT_KEYS, prediction_grid
from llmsynth_core.subjectivity import too_few_tasks
from llmsynth_core.uncertainty import (
    mean_of_draws,
    paired_gap,
    replicate_draws,
    resample_weights,
    seed_draws,
)

RULE = (
    "A finding holds for a task where the 95% paired interval of its gap excludes 0 in the "
    "paper's direction (the interval's low end is above 0)."
)
CLAIMS = {
    1: "real > few-shot > zero-shot",
    2: "the gap grows with task subjectivity",
    3: "accuracy rises with instance-level agreement, more steeply for synthetic-trained models",
}
COLUMNS = ["finding", "task", "model", "comparison", "estimate", "low", "high", "holds", "note"]
REAL, ZERO, FEW = "real", "zero_shot", "few_shot"
# The study's sources; mixtures (training.mixtures) are read only by the real-equivalent tables.
STUDY_SOURCES = (REAL, ZERO, FEW)
GAP_NOTE = "Macro-F1 gap, 95% paired bootstrap over test instances and seeds"
LEVEL = 0.95


def findings_table(
    runs: pd.DataFrame,
    predictions: pd.DataFrame,
    results: pd.DataFrame,
    subjectivity: Mapping[str, Any],
    draws: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every comparison of the three findings that this run can test (learning-curve points
    left out by the caller); `holds` is null where a comparison could not be tested."""
    classes = {
        str(task): len(names) for task, names in runs.groupby("task")["label_names"].first().items()
    }
    rows = [
        *ordering_rows(results, predictions, classes, draws, seed),
        *subjectivity_rows(subjectivity),
        *agreement_rows(predictions, draws, seed),
    ]
    return findings_frame(rows)


def findings_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in COLUMNS order; `holds` stays True, False or None (pandas would make a column
    without None numpy booleans)."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["holds"] = pd.Series([row["holds"] for row in rows], index=frame.index, dtype=object)
    return frame


def _holds(low: float) -> bool | None:
    """The rule: the interval's low end above 0; None where there is no interval."""
    return None if math.isnan(low) else bool(low > 0)


def _row(
    finding: int,
    task: str,
    model: str,
    comparison: str,
    values: tuple[float, float, float],
    note: str,
) -> dict[str, Any]:
    estimate, low, high = (float(v) for v in values)
    return {
        "finding": finding,
        "task": task,
        "model": model,
        "comparison": comparison,
        "estimate": estimate,
        "low": low,
        "high": high,
        "holds": _holds(low),
        "note": note,
    }


def _percentiles(draws: FloatArray) -> tuple[float, float]:
    tail = (1.0 - LEVEL) / 2 * 100
    if np.isnan(draws).all():
        return math.nan, math.nan
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return float(low), float(high)


# Finding 1 ------------------------------------------------------------------------------------


def ordering_rows(
    results: pd.DataFrame,
    predictions: pd.DataFrame,
    n_classes: Mapping[str, int],
    draws: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Per task and model: real - zero_shot and real - few_shot (results' paired gaps, not
    recomputed) and few_shot - zero_shot (`paired_gap` on the same kind of draws)."""
    rows = []
    for (task, model), group in results.groupby(["task", "model"], sort=False):
        rows += _real_gaps(group)
        if {ZERO, FEW} <= set(group["source"]):
            mine = predictions[(predictions["task"] == task) & (predictions["model"] == model)]
            rows.append(few_over_zero(mine, n_classes[str(task)], draws, seed))
    return rows


def _real_gaps(results: pd.DataFrame) -> list[dict[str, Any]]:
    """real - mode of one task and model, as results computed them; none for results from
    before the paired gap or without a real baseline."""
    if "gap_low" not in results.columns:
        return []
    return [
        _row(
            1,
            str(row["task"]),
            str(row["model"]),
            f"{REAL} - {mode}",
            (row["gap_macro_f1"], row["gap_low"], row["gap_high"]),
            GAP_NOTE,
        )
        for mode in (ZERO, FEW)
        for row in results[results["source"] == mode].to_dict("records")
        if not pd.isna(row["gap_low"])
    ]


def few_over_zero(
    predictions: pd.DataFrame, n_classes: int, draws: int, seed: int
) -> dict[str, Any]:
    """few_shot - zero_shot Macro-F1 of one task and model: few-shot in paired_gap's `real`
    place. With several few-shot sets, each (seed, set) is a unit paired with its seed's
    zero-shot sets, so the mean is exact and the draws resample those units."""
    task, model = str(predictions["task"].iloc[0]), str(predictions["model"].iloc[0])
    where = f"{task}/{model}"
    truth, few = prediction_grid(_source(predictions, FEW), f"{where}/{FEW}")
    zero_truth, zero = prediction_grid(_source(predictions, ZERO), f"{where}/{ZERO}")
    _check_paired(predictions, (FEW, ZERO), where)
    if not np.array_equal(truth, zero_truth):
        raise ValueError(f"{where}: {FEW} and {ZERO} were scored on different test rows")
    n_seeds, n_sets, n_rows = few.shape
    gap = paired_gap(
        truth,
        few.reshape(n_seeds * n_sets, n_rows),
        np.repeat(zero, n_sets, axis=0),
        n_classes,
        draws,
        seed,
    )
    note = GAP_NOTE + (f"; {n_sets} few-shot sets per seed as units" if n_sets > 1 else "")
    return _row(1, task, model, f"{FEW} - {ZERO}", (gap.gap, gap.low, gap.high), note)


def _source(predictions: pd.DataFrame, source: str) -> pd.DataFrame:
    return predictions[predictions["source"] == source]


def _check_paired(predictions: pd.DataFrame, sources: tuple[str, ...], where: str) -> None:
    """Paired draws need every source trained with the same seeds."""
    seeds = {s: sorted(set(_source(predictions, s)["seed"])) for s in sources}
    if len({tuple(v) for v in seeds.values()}) > 1:
        raise ValueError(
            f"{where}: sources were trained with different seeds ({seeds}); paired intervals "
            "need the same training.seeds for every source: rerun them with one config"
        )


# Finding 2 ------------------------------------------------------------------------------------


def subjectivity_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per mode: Spearman's rho between task subjectivity and the gap, with the interval and
    permutation p of the subjectivity record; holds null with a note below MIN_TASKS tasks."""
    levels = record.get("subjectivity") or {}
    spearman = record.get("spearman") or {}
    source = record.get("source", "")
    rows = []
    modes = record.get("gaps") or {}
    for mode, gaps in ((m, modes[m]) for m in (ZERO, FEW) if m in modes):
        comparison = f"rho(subjectivity, {REAL} - {mode})"
        fit = spearman.get(mode)
        if fit is None:
            shared = len(set(levels) & set(gaps))
            nan = (math.nan, math.nan, math.nan)
            rows.append(
                _row(2, f"all ({shared} tasks)", "all", comparison, nan, too_few_tasks(shared))
            )
            continue
        note = (
            f"Spearman's rho, 95% bootstrap over tasks; permutation p = {fit['p_value']:.3f} "
            f"({fit['permutations']}); subjectivity: {source}; gap averaged over models"
        )
        values = (fit["rho"], fit["low"], fit["high"])
        rows.append(_row(2, f"all ({fit['n']} tasks)", "all", comparison, values, note))
    return rows


# Finding 3 ------------------------------------------------------------------------------------


def agreement_rows(predictions: pd.DataFrame, draws: int, seed: int) -> list[dict[str, Any]]:
    """Per task with human agreement and model: each source's rise (accuracy on the
    highest-agreement instances minus on the rest), and each synthetic mode's rise minus
    real's, all on the same draws of test instances and seeds."""
    if "agreement" not in predictions.columns:
        return []
    rated = predictions[predictions["source"].isin(STUDY_SOURCES)].dropna(subset=["agreement"])
    rows = []
    for _, group in rated.groupby(["task", "model"], sort=True):
        rows += task_agreement_rows(group, draws, seed)
    return rows


def rise_label(source: str) -> str:
    return f"{source} rise"


def steeper_label(mode: str) -> str:
    return f"{mode} rise - {REAL} rise"


def task_agreement_rows(group: pd.DataFrame, draws: int, seed: int) -> list[dict[str, Any]]:
    """Finding 3 on one task and model (its rated predictions)."""
    task, model = str(group["task"].iloc[0]), str(group["model"].iloc[0])
    where = f"{task}/{model}"
    sources = _ordered_sources(group)
    _check_paired(group, tuple(sources), where)
    grids = {s: prediction_grid(_source(group, s), f"{where}/{s}") for s in sources}
    truth = grids[sources[0]][0]
    if any(not np.array_equal(truth, t) for t, _ in grids.values()):
        raise ValueError(f"{where}: sources were scored on different test rows")
    agreement = _row_agreement(_source(group, sources[0]))
    top = agreement == agreement.max()
    note = (
        f"rise = accuracy on agreement == {agreement.max():g} (n={int(top.sum())}) minus below "
        f"(n={int((~top).sum())}); 95% paired bootstrap over test instances and seeds"
    )
    if top.all():
        nan = (math.nan, math.nan, math.nan)
        alone = "every rated instance has the same agreement; no split to compare"
        return [_row(3, task, model, rise_label(s), nan, alone) for s in sources]
    rises = rise_draws({s: grid == truth for s, (_, grid) in grids.items()}, top, draws, seed)
    rows = [_row(3, task, model, rise_label(s), _summary(r), note) for s, r in rises.items()]
    if REAL in rises:
        for mode in (s for s in rises if s != REAL):
            steeper = rises[mode] - rises[REAL]
            rows.append(_row(3, task, model, steeper_label(mode), _summary(steeper), note))
    return rows


def _ordered_sources(group: pd.DataFrame) -> list[str]:
    present = set(group["source"])
    return [s for s in STUDY_SOURCES if s in present]


def _row_agreement(predictions: pd.DataFrame) -> FloatArray:
    """Agreement by test row, in prediction_grid's row order."""
    first = predictions.sort_values([*UNIT_KEYS, "row"]).drop_duplicates("row")
    return first.sort_values("row")["agreement"].to_numpy(dtype=np.float64)


def _summary(values: FloatArray) -> tuple[float, float, float]:
    """Entry 0 is the point estimate, entries 1.. the bootstrap draws."""
    low, high = _percentiles(values[1:])
    return float(values[0]), low, high


def rise_draws(
    correct: Mapping[str, np.ndarray], top: np.ndarray, draws: int, seed: int
) -> dict[str, FloatArray]:
    """Per source: accuracy on `top` instances minus on the rest, mean over its models
    (seeds, sets); entry 0 on the whole test set, entries 1.. on paired draws that share the
    resampled instances and seeds across sources and resample each seed's sets."""
    n_seeds, n = next(iter(correct.values())).shape[0], top.size
    rng = np.random.default_rng(seed)
    weights = np.vstack([np.ones((1, n)), resample_weights(rng, n, draws)])  # (1 + draws, n)
    seeds = seed_draws(rng, n_seeds, draws)
    out = {}
    for source, hits in correct.items():
        sets = replicate_draws(rng, n_seeds, hits.shape[1], draws)
        rise = _accuracy(hits, top, weights) - _accuracy(hits, ~top, weights)  # (S, R, 1+D)
        out[source] = mean_of_draws(rise, seeds, sets)
    return out


def _accuracy(hits: np.ndarray, part: np.ndarray, weights: FloatArray) -> FloatArray:
    """Weighted accuracy on the instances of `part` per model and draw, (S, R, draws); NaN
    where a draw holds none of them."""
    mask = part.astype(np.float64)
    right = (hits.astype(np.float64) * mask) @ weights.T
    total = weights @ mask
    result: FloatArray = np.divide(right, total, out=np.full_like(right, np.nan), where=total > 0)
    return result


# Summary --------------------------------------------------------------------------------------


def findings_summary(frame: pd.DataFrame | None) -> list[str]:
    """One plain sentence per finding: where it holds, counted over the tasks that tested it."""
    frame = pd.DataFrame(columns=COLUMNS) if frame is None else frame
    return [
        _ordering_sentence(frame[frame["finding"] == 1]),
        _subjectivity_sentence(frame[frame["finding"] == 2]),
        _agreement_sentence(frame[frame["finding"] == 3]),
    ]


def _count(rows: pd.DataFrame, unit: bool = False) -> str:
    """'k of n' (with the unit: 'k of n tasks') over the rows that were tested (holds not
    null); task-model pairs where a task was tested with several models."""
    tested = rows[rows["holds"].notna()]
    held = sum(bool(value) for value in tested["holds"])
    noun = " tasks" if tested["task"].is_unique else " task-model pairs"
    return f"{held} of {len(tested)}{noun if unit else ''}"


def _plain(source: str) -> str:
    return source.replace("_", "-")


def _by_comparison(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(str(c), rows[rows["comparison"] == c]) for c in dict.fromkeys(rows["comparison"])]


def _counted(items: list[tuple[str, pd.DataFrame]]) -> str:
    """'a on k of n tasks, b on k of n, ...': the unit said once."""
    return ", ".join(
        f"{name} on {_count(rows, unit=i == 0)}" for i, (name, rows) in enumerate(items)
    )


def _untested(finding: int, why: str) -> str:
    return f"Finding {finding} ({CLAIMS[finding]}): not tested on this run ({why})."


def _ordering_sentence(rows: pd.DataFrame) -> str:
    if rows.empty:
        return _untested(1, "it needs a real baseline or both synthetic modes")
    parts = [
        f"{_plain(c).replace(' - ', ' > ')} {'holds ' if i == 0 else ''}on {_count(part, i == 0)}"
        for i, (c, part) in enumerate(_by_comparison(rows))
    ]
    return f"Finding 1 ({CLAIMS[1]}): " + "; ".join(parts) + "."


def _subjectivity_sentence(rows: pd.DataFrame) -> str:
    if rows.empty:
        return _untested(2, "it needs a real baseline and a synthetic mode")
    parts = []
    for row in rows.to_dict("records"):
        mode = _plain(str(row["comparison"]).split(" - ")[-1].rstrip(")"))
        if row["holds"] is None or pd.isna(row["holds"]):
            parts.append(f"{mode}: not tested ({row['note']})")
            continue
        verdict = "holds" if row["holds"] else "does not hold"
        interval = f"rho {row['estimate']:.2f} [{row['low']:.2f}, {row['high']:.2f}]"
        tasks = str(row["task"]).removeprefix("all (").removesuffix(")")
        parts.append(f"{mode}: {verdict}, {interval} over {tasks}")
    return f"Finding 2 ({CLAIMS[2]}): " + "; ".join(parts) + "."


def _agreement_sentence(rows: pd.DataFrame) -> str:
    if rows.empty:
        return _untested(3, "no task has instance-level human agreement")
    rises: list[tuple[str, pd.DataFrame]] = []
    steeper: list[tuple[str, pd.DataFrame]] = []
    for comparison, part in _by_comparison(rows):
        sources = [_plain(s.removesuffix(" rise")) for s in comparison.split(" - ")]
        (rises if len(sources) == 1 else steeper).append((sources[0], part))
    parts = [f"accuracy rises with agreement for {_counted(rises)}"] if rises else []
    if steeper:
        parts.append(f"more steeply than real for {_counted(steeper)}")
    return f"Finding 3 ({CLAIMS[3]}): " + "; ".join(parts) + "."
