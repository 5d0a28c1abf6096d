"""Instance-level subjectivity: annotator agreement a_i, and accuracy over agreement thresholds.

For each threshold g (the distinct agreement values), accuracy on the test instances with
a_i >= g; then a linear fit of accuracy on g (slope, R^2) and Spearman's rho between g and
accuracy, as in the study.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def agreement_from_annotations(annotations: Sequence[Sequence[str]]) -> list[float]:
    """a_i: the share of an instance's annotators who chose its majority label."""
    result = []
    for i, labels in enumerate(annotations):
        if len(labels) == 0:
            raise ValueError(f"instance {i} has no annotations; drop it or give its labels")
        result.append(Counter(labels).most_common(1)[0][1] / len(labels))
    return result


def threshold_sweep(
    agreement: Sequence[float],
    correct: Sequence[bool],
    min_instances: int,
    instances: Sequence[object] | None = None,
) -> pd.DataFrame:
    """Accuracy and n on predictions with a_i >= g, for every distinct g; `kept` marks the
    thresholds with at least `min_instances` instances (only those are fitted). With
    `instances` (each prediction's test row id), n counts distinct test instances, so
    predictions pooled over seeds do not inflate it; accuracy stays pooled."""
    a = np.asarray(agreement, dtype=float)
    hits = np.asarray(correct, dtype=bool)
    if len(a) != len(hits):
        raise ValueError(f"{len(a)} agreement values but {len(hits)} predictions")
    ids = None if instances is None else np.asarray(instances, dtype=object)
    rows = []
    for g in np.unique(a[~np.isnan(a)]):
        mask = a >= g
        n = int(mask.sum()) if ids is None else len(set(ids[mask]))
        rows.append(
            {
                "threshold": float(g),
                "n": n,
                "accuracy": float(hits[mask].mean()),
                "kept": n >= min_instances,
            }
        )
    return pd.DataFrame(rows, columns=["threshold", "n", "accuracy", "kept"])


@dataclass(frozen=True)
class AgreementFit:
    slope: float
    intercept: float
    r_squared: float
    rho: float
    rho_p_value: float
    thresholds: int


def fit_sweep(sweep: pd.DataFrame) -> AgreementFit | None:
    """Linear regression and Spearman correlation of accuracy on threshold (kept rows only);
    None when fewer than 3 thresholds are kept."""
    kept = sweep[sweep["kept"]]
    if len(kept) < 3:
        return None
    x = kept["threshold"].to_numpy(dtype=float)
    y = kept["accuracy"].to_numpy(dtype=float)
    line = stats.linregress(x, y)
    if np.ptp(y) == 0:
        rho, p_value = float("nan"), float("nan")  # undefined for a constant series
    else:
        spearman = stats.spearmanr(x, y)
        rho, p_value = float(spearman.statistic), float(spearman.pvalue)
    return AgreementFit(
        slope=float(line.slope),
        intercept=float(line.intercept),
        r_squared=float(line.rvalue**2),
        rho=rho,
        rho_p_value=p_value,
        thresholds=len(kept),
    )


GROUP = ["task", "model", "source"]


def agreement_analysis(
    predictions: pd.DataFrame, min_instances: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Threshold sweeps and fits for every (task, model, source) whose test rows carry an
    `agreement` value; returns (sweeps, fits). Groups without agreement are skipped."""
    sweeps, fits = [], []
    rated = predictions.dropna(subset=["agreement"]) if "agreement" in predictions else None
    if rated is None or rated.empty:
        return pd.DataFrame(columns=[*GROUP, "threshold", "n", "accuracy", "kept"]), pd.DataFrame(
            columns=[*GROUP, "slope", "intercept", "r_squared", "rho", "rho_p_value", "thresholds"]
        )
    for key, group in rated.groupby(GROUP, sort=True):
        labels = {column: str(value) for column, value in zip(GROUP, key, strict=True)}
        instances = group["row_id"].tolist() if "row_id" in group else None
        sweep = threshold_sweep(
            group["agreement"].tolist(), group["correct"].tolist(), min_instances, instances
        )
        sweeps.append(sweep.assign(**labels))
        fit = fit_sweep(sweep)
        if fit is not None:
            fits.append({**labels, **fit.__dict__})
    sweep_frame = pd.concat(sweeps, ignore_index=True)[
        [*GROUP, "threshold", "n", "accuracy", "kept"]
    ]
    fit_frame = pd.DataFrame(
        fits,
        columns=[*GROUP, "slope", "intercept", "r_squared", "rho", "rho_p_value", "thresholds"],
    )
    return sweep_frame, fit_frame


def with_estimated_agreement(predictions: pd.DataFrame, estimates: pd.DataFrame) -> pd.DataFrame:
    """The predictions without human agreement, each with the panel's estimate for the same
    test instance (joined on task and row_id, never position); unrated instances drop out."""
    unrated = predictions[predictions["agreement"].isna()].drop(columns="agreement")
    panel = estimates[["task", "row_id", "agreement_estimate"]]
    merged = unrated.merge(panel, on=["task", "row_id"], how="inner", validate="many_to_one")
    return merged.rename(columns={"agreement_estimate": "agreement"})


HUMAN = "human"
LLM_ESTIMATE = "llm-estimate"  # agreement_source of fits on the LLM annotator panel's estimate


def uses_estimate(fits: pd.DataFrame, task: str | None = None) -> bool:
    """Whether fits (of one task, if given) rest on the LLM panel's estimated agreement."""
    if "agreement_source" not in fits:
        return False
    rows = fits if task is None else fits[fits["task"] == task]
    return bool((rows["agreement_source"] == LLM_ESTIMATE).any())


def panel_label(model: str, k: int) -> str:
    """How tables and figures name agreement that the annotator panel estimated."""
    return f"LLM estimate ({model}, k={k})"


PANEL_COLUMNS = ["panel", "panel_instances", "panel_dropped"]


def panel_summary(estimates: pd.DataFrame) -> pd.DataFrame:
    """Per task: the panel's label (model and k), the instances it labelled, and those dropped
    (agreement_estimate null: fewer than half of the k replies parsable)."""
    rows = []
    for task, group in estimates.groupby("task", sort=True):
        k = int(group["annotations"].map(len).max())
        model = ", ".join(sorted(set(group["model"].astype(str))))
        rows.append(
            {
                "task": str(task),
                "panel": panel_label(model, k),
                "panel_instances": len(group),
                "panel_dropped": int(group["agreement_estimate"].isna().sum()),
            }
        )
    return pd.DataFrame(rows, columns=["task", *PANEL_COLUMNS])


def estimate_analysis(
    predictions: pd.DataFrame, estimates: pd.DataFrame, min_instances: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sweeps and fits on the panel's estimate for test rows without human agreement, joined
    on (task, row_id); tagged llm-estimate and with the panel's columns."""
    sweeps, fits = agreement_analysis(
        with_estimated_agreement(predictions, estimates), min_instances
    )
    panel = panel_summary(estimates)
    sweeps = sweeps.assign(agreement_source=LLM_ESTIMATE).merge(panel, on="task", how="left")
    fits = fits.assign(agreement_source=LLM_ESTIMATE).merge(panel, on="task", how="left")
    return sweeps, fits


def panel_of(frame: pd.DataFrame, task: str) -> str | None:
    """The panel label of a task's estimate-based sweeps or fits, if any."""
    if "panel" not in frame or not uses_estimate(frame, task):
        return None
    labels = frame.loc[(frame["task"] == task) & frame["panel"].notna(), "panel"]
    return str(labels.iloc[0]) if len(labels) else None


def panel_notes(frame: pd.DataFrame) -> list[str]:
    """One sentence per task whose sweeps or fits rest on the panel: its model and k, and the
    instances dropped."""
    if "panel" not in frame or "agreement_source" not in frame:
        return []
    rows = frame[frame["agreement_source"] == LLM_ESTIMATE].drop_duplicates("task")
    return [
        f"{task}: {panel}, not human agreement; {int(instances)} test instances labelled, "
        f"{int(dropped)} dropped (fewer than half of the k replies parsable)."
        for task, panel, instances, dropped in zip(
            rows["task"], rows["panel"], rows["panel_instances"], rows["panel_dropped"], strict=True
        )
    ]
