"""What a synthetic set is worth in real labels: the real learning curve (training.real_curve),
the real-equivalent size of each synthetic set read off it, and the mixed curve beside it.

The real-equivalent size of a synthetic source is the number of real rows per label at which
the real curve reaches the source's Macro-F1: interpolated on log(k) between curve points,
after the curve of means is made non-decreasing (pool-adjacent-violators), so noise cannot give
two crossings; outside the curve it is censored ("< smallest", "> largest"), never
extrapolated. Its interval comes from the paired bootstrap of `uncertainty`: each draw
resamples the test instances (the same ones for every model of the task) and the training
seeds, and the crossing is recomputed on the draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from llmsynth_core.config import Mixture
from llmsynth_core.metrics import FloatArray
from llmsynth_core.results import prediction_grid
from llmsynth_core.schemas import REAL_CURVE, REAL_EQUIVALENT
from llmsynth_core.size_matching import curve_size, curve_source
from llmsynth_core.uncertainty import (
    macro_f1_draws,
    mean_of_draws,
    replicate_draws,
    resample_weights,
    seed_draws,
)

Censored = Literal["below", "above"]
LEVEL = 0.95


def is_curve(source: object) -> bool:
    """Whether a metrics row's source is a point of the real learning curve (real@k)."""
    return curve_size(str(source)) is not None


def without_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the study's sources: the learning-curve points (real@k) left out, so they
    enter no table, gap, fit or sweep as if they were synthetic sources."""
    if frame.empty or "source" not in frame:
        return frame
    return frame[~frame["source"].map(is_curve)].reset_index(drop=True)


def isotonic(values: Sequence[float] | FloatArray) -> FloatArray:
    """The non-decreasing sequence closest to `values` in least squares (pool-adjacent
    violators, equal weights)."""
    blocks: list[list[float]] = []  # [mean, count] of each pooled block
    for value in np.asarray(values, dtype=np.float64):
        blocks.append([float(value), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            previous = blocks[-1]
            total = previous[1] + count
            previous[0] = (previous[0] * previous[1] + mean * count) / total
            previous[1] = total
    return np.repeat([b[0] for b in blocks], [int(b[1]) for b in blocks])


@dataclass(frozen=True)
class Crossing:
    """Where a curve reaches a target: k (real rows per label), or, censored, the curve's
    smallest ('below': the target is under the whole curve) or largest size ('above')."""

    k: float
    censored: Censored | None = None

    @property
    def log_k(self) -> float:
        """log k, or -inf / +inf when censored below / above (for percentiles over draws)."""
        if self.censored is None:
            return math.log(self.k)
        return -math.inf if self.censored == "below" else math.inf


def crossing(sizes: Sequence[int], means: Sequence[float] | FloatArray, target: float) -> Crossing:
    """Where the isotonic fit of `means` (one per size, ascending) first reaches `target`,
    interpolated linearly on log(size) between the two points around it."""
    if len(sizes) == 0 or len(sizes) != len(means):
        raise ValueError(f"need one mean per curve size; got {len(means)} for sizes {sizes}")
    fitted = isotonic(means)
    if target < fitted[0]:
        return Crossing(float(sizes[0]), "below")
    if target > fitted[-1]:
        return Crossing(float(sizes[-1]), "above")
    i = int(np.argmax(fitted >= target))  # the first point that reaches it
    if i == 0:
        return Crossing(float(sizes[0]))
    # fitted[i - 1] < target <= fitted[i], so the step is positive.
    share = (target - fitted[i - 1]) / (fitted[i] - fitted[i - 1])
    low, high = math.log(sizes[i - 1]), math.log(sizes[i])
    return Crossing(math.exp(low + share * (high - low)))


def _number(k: float) -> str:
    return f"{k:.0f}" if k >= 10 else f"{k:.1f}".removesuffix(".0")


def _end(log_k: float, smallest: int, largest: int) -> str:
    if log_k == -math.inf:
        return f"< {smallest}"
    if log_k == math.inf:
        return f"> {largest}"
    return _number(math.exp(log_k))


def describe(estimate: Crossing, low: float, high: float, smallest: int, largest: int) -> str:
    """'≈ 5.7 [3.1, 9.8]', '< 2 [< 2, 2.6]' or '> 64 [41, > 64]': the estimate and its
    interval (ends as log k, ±inf censored) in real rows per label."""
    head = f"≈ {_number(estimate.k)}" if estimate.censored is None else ""
    head = head or _end(estimate.log_k, smallest, largest)
    return f"{head} [{_end(low, smallest, largest)}, {_end(high, smallest, largest)}]"


def interval_of(log_ks: FloatArray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of crossings over draws, as log k (±inf: censored): each end is a
    drawn value, never an interpolation between a censored and a measured one."""
    tail = (1.0 - level) / 2
    low = float(np.quantile(log_ks, tail, method="lower"))
    high = float(np.quantile(log_ks, 1.0 - tail, method="higher"))
    return low, high


@dataclass(frozen=True)
class _Boot:
    """One (task, model)'s sources as Macro-F1 means: column 0 on the whole test set with every
    seed, columns 1.. on the bootstrap draws (shared test resample and seed resample)."""

    means: dict[str, FloatArray]
    seeds: int


def _source_means(
    predictions: pd.DataFrame,
    truth: np.ndarray,
    weights: FloatArray,
    n_classes: int,
    rng: np.random.Generator,
    where: str,
) -> _Boot:
    """Each source's mean Macro-F1 per column; seeds are resampled once per draw for every
    source (they share training.seeds) and synthetic replicates per drawn seed."""
    grids = {}
    for source, part in predictions.groupby("source", sort=False):
        source_truth, grid = prediction_grid(part, f"{where}/{source}")
        if not np.array_equal(source_truth, truth):
            raise ValueError(
                f"{where}/{source} was evaluated on other test rows than the rest of the task; "
                "rerun every source with one config"
            )
        grids[str(source)] = (sorted(set(part["seed"])), grid)
    seed_sets = {tuple(seeds) for seeds, _ in grids.values()}
    if len(seed_sets) != 1:
        raise ValueError(
            f"{where}: sources were trained with different seeds {sorted(seed_sets)}; train "
            "every source with training.seeds of one config"
        )
    draws = weights.shape[0]
    n_seeds = len(next(iter(seed_sets)))
    seeds = seed_draws(rng, n_seeds, draws)
    means = {}
    for source, (_, grid) in grids.items():
        f1 = np.stack(
            [
                np.stack([macro_f1_draws(truth, p, n_classes, weights) for p in by_seed])
                for by_seed in grid
            ]
        )  # (seeds, replicates, 1 + draws)
        replicates = replicate_draws(rng, n_seeds, grid.shape[1], draws)
        means[source] = mean_of_draws(f1, seeds, replicates)
    return _Boot(means, n_seeds)


def _per_label(runs: pd.DataFrame, source: str) -> float:
    """Mean training rows per label of a source's runs (before the validation carve)."""
    mine = runs[runs["source"] == source]
    if "train_counts" not in mine or mine.empty:
        return math.nan
    return float(np.mean([np.mean(list(counts)) for counts in mine["train_counts"]]))


def _equivalent_row(sizes: list[int], curve: FloatArray, target: FloatArray) -> dict[str, object]:
    """The real-equivalent columns of one synthetic source against the real curve."""
    estimate = crossing(sizes, curve[:, 0], float(target[0]))
    drawn = np.array(
        [crossing(sizes, curve[:, d], float(target[d])).log_k for d in range(1, len(target))]
    )
    low, high = interval_of(drawn)
    smallest, largest = sizes[0], sizes[-1]

    def end(log_k: float) -> tuple[float, Censored | None]:
        if math.isinf(log_k):
            return math.nan, "below" if log_k < 0 else "above"
        return math.exp(log_k), None

    (low_k, low_censored), (high_k, high_censored) = end(low), end(high)
    return {
        "synthetic_macro_f1": float(target[0]),
        "real_equivalent": estimate.k if estimate.censored is None else math.nan,
        "low": low_k,
        "high": high_k,
        "censored": estimate.censored,
        "low_censored": low_censored,
        "high_censored": high_censored,
        "text": describe(estimate, low, high, smallest, largest),
        "smallest": smallest,
        "largest": largest,
    }


def _interval_columns(values: FloatArray) -> dict[str, float]:
    tail = (1.0 - LEVEL) / 2 * 100
    low, high = np.percentile(values[1:], [tail, 100 - tail])
    return {"macro_f1": float(values[0]), "macro_f1_low": float(low), "macro_f1_high": float(high)}


def real_equivalents(
    runs: pd.DataFrame,
    predictions: pd.DataFrame,
    modes: Sequence[str],
    mixtures: Sequence[Mixture] = (),
    draws: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real_equivalent, real_curve) of a run: per task, model and synthetic source (`modes`)
    its real-equivalent size with a 95% interval; and per task and model the real curve and
    each mixture's point (synthetic + k real per label), Macro-F1 with a 95% interval. Tasks
    without learning-curve runs give no rows."""
    equivalents: list[dict[str, object]] = []
    curves: list[dict[str, object]] = []
    mixed = {mixture.name: mixture for mixture in mixtures}
    for task, task_runs in runs.groupby("task", sort=False):
        if not task_runs["source"].map(is_curve).any():
            continue
        mine = predictions[predictions["task"] == task]
        truth = mine.sort_values("row").drop_duplicates("row")["label_id"].to_numpy()
        n_classes = len(task_runs["label_names"].iloc[0])
        rng = np.random.default_rng(seed)
        # One test resample per task, shared by every model and source of it.
        weights = resample_weights(rng, truth.size, draws)
        subjectivity = int(task_runs["subjectivity"].iloc[0])
        for model, part in mine.groupby("model", sort=False):
            key = {"task": str(task), "subjectivity": subjectivity, "model": str(model)}
            wanted = part[part["source"].map(lambda s: is_curve(s) or s in modes or s in mixed)]
            boot = _source_means(wanted, truth, weights, n_classes, rng, f"{task}/{model}")
            sizes = sorted(k for source in boot.means if (k := curve_size(source)))
            if not sizes:
                continue
            curve = np.stack([boot.means[curve_source(k)] for k in sizes])
            curves += [{**key, **row} for row in _curve_rows(boot, sizes, curve, mixed)]
            model_runs = task_runs[task_runs["model"] == model]
            equivalents += [
                {
                    **key,
                    "source": mode,
                    "synthetic_per_label": _per_label(model_runs, mode),
                    **_equivalent_row(sizes, curve, boot.means[mode]),
                    "n_seeds": boot.seeds,
                }
                for mode in modes
                if mode in boot.means
            ]
    return (
        pd.DataFrame(equivalents, columns=REAL_EQUIVALENT.names),
        pd.DataFrame(curves, columns=REAL_CURVE.names),
    )


def _curve_rows(
    boot: _Boot, sizes: list[int], curve: FloatArray, mixed: dict[str, Mixture]
) -> list[dict[str, object]]:
    """The real curve's points (with the isotonic fit that crossings are read from), then each
    mixture's point at its real rows per label."""
    fitted = isotonic(curve[:, 0])
    rows: list[dict[str, object]] = [
        {
            "source": curve_source(k),
            "curve": "real",
            "mode": None,
            "per_label": k,
            "n_seeds": boot.seeds,
            **_interval_columns(values),
            "isotonic_macro_f1": float(fit),
        }
        for k, values, fit in zip(sizes, curve, fitted, strict=True)
    ]
    rows += [
        {
            "source": name,
            "curve": "mixed",
            "mode": mixture.mode,
            "per_label": mixture.real_per_label,
            "n_seeds": boot.seeds,
            **_interval_columns(boot.means[name]),
            "isotonic_macro_f1": math.nan,
        }
        for name, mixture in mixed.items()
        if name in boot.means
    ]
    return rows


def real_equivalent_text(
    table: pd.DataFrame, task: str, source: str, model: str | None = None
) -> str | None:
    """The real-equivalent text of a task's synthetic source ('≈ 5.7 [3.1, 9.8]'), for `model`
    (None: the first model that has one); None where the run has no learning curve for it."""
    rows = table[(table["task"] == task) & (table["source"] == source)]
    if model is not None:
        rows = rows[rows["model"] == model]
    return None if rows.empty else str(rows["text"].iloc[0])
