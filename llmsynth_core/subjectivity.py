"""Task-level subjectivity: a Bradley-Terry ranking from pairwise "which task is more objective"
judgments, and its rank correlation with the real-minus-synthetic performance gap."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Comparison:
    """One judgment: `winner` (one of a and b) was judged the more objective task."""

    task_a: str
    task_b: str
    winner: str


def bradley_terry(
    comparisons: Sequence[Comparison],
    prior_wins: float = 0.1,
    max_iter: int = 10_000,
    tol: float = 1e-10,
) -> dict[str, float]:
    """Strengths (log scale, mean 0; higher = more objective) by Hunter's MM algorithm.

    `prior_wins` adds that many virtual wins each way to every compared pair, so a task that
    never wins still gets a finite strength and the fit always converges.
    """
    tasks = sorted({c.task_a for c in comparisons} | {c.task_b for c in comparisons})
    if len(tasks) < 2:
        raise ValueError("Bradley-Terry needs comparisons between at least 2 tasks")
    index = {task: i for i, task in enumerate(tasks)}
    wins = np.zeros((len(tasks), len(tasks)))
    for c in comparisons:
        if c.winner not in (c.task_a, c.task_b):
            raise ValueError(
                f"winner {c.winner!r} is neither {c.task_a!r} nor {c.task_b!r}; fix that row"
            )
        loser = c.task_b if c.winner == c.task_a else c.task_a
        wins[index[c.winner], index[loser]] += 1
    games = wins + wins.T
    wins = wins + prior_wins * (games > 0)
    games = wins + wins.T
    strength = np.ones(len(tasks))
    for _ in range(max_iter):
        pair_sums = strength[:, None] + strength[None, :]
        denominator = (games / pair_sums).sum(axis=1)
        updated = wins.sum(axis=1) / denominator
        updated /= np.exp(np.log(updated).mean())
        converged = np.abs(updated - strength).max() < tol
        strength = updated
        if converged:
            break
    logs = np.log(strength)
    return {task: float(logs[index[task]]) for task in tasks}


def subjectivity_levels(strengths: Mapping[str, float], levels: int = 5) -> dict[str, int]:
    """Strengths mapped to 1 (most objective) .. `levels` (most subjective) by rank."""
    ordered = sorted(strengths, key=lambda task: -strengths[task])
    n = len(ordered)
    return {task: 1 + (rank * levels) // n for rank, task in enumerate(ordered)}


AUTHOR_LEVELS = "author-assigned levels"
MIN_TASKS = 4
# Up to this many tasks every ordering of the gaps is tried (8! = 40,320); beyond, a sample.
EXACT_PERMUTATIONS_UP_TO = 8


def subjectivity_source(comparisons: Sequence[Comparison] = (), file: str = "") -> str:
    """What the subjectivity of a fit comes from: the registry's levels, which llmsynth's
    authors assigned (not the study's ranking), or a Bradley-Terry fit of judgments."""
    if not comparisons:
        return AUTHOR_LEVELS
    return f"Bradley-Terry on {len(comparisons)} judgments from {file}"


SPEARMAN_TEXT = (
    "Spearman's rho between subjectivity and the gap, its 95% bootstrap interval over tasks "
    "(low, high) and a two-sided permutation p-value:"
)


def too_few_tasks(n: int) -> str:
    return f"The subjectivity fit needs at least {MIN_TASKS} tasks; this run has {n}."


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho, its bootstrap interval over tasks, and a two-sided permutation p-value."""

    rho: float
    low: float
    high: float
    p_value: float
    n: int
    permutations: str  # "exact (n!)" or "Monte Carlo (draws)"


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    return np.asarray(stats.rankdata(values, axis=-1), dtype=np.float64)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair; NaN where a row is constant."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    numerator = (x * y).sum(axis=-1)
    r: np.ndarray = np.divide(
        numerator, denominator, out=np.full_like(numerator, np.nan), where=denominator > 0
    )
    return r


def gap_correlation(
    subjectivity: Mapping[str, float],
    gaps: Mapping[str, float],
    draws: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> RankCorrelation:
    """Spearman's rho between task subjectivity and the real-minus-synthetic gap.

    The interval resamples tasks (with replacement; resamples with a constant side are
    skipped); the p-value counts the orderings of the gaps whose |rho| reaches the observed
    one: all of them up to EXACT_PERMUTATIONS_UP_TO tasks, else `draws` seeded shuffles.
    """
    tasks = sorted(set(subjectivity) & set(gaps))
    if len(tasks) < MIN_TASKS:
        raise ValueError(f"{too_few_tasks(len(tasks))} Tasks with both: {tasks}")
    x = np.array([subjectivity[t] for t in tasks], dtype=np.float64)
    y = np.array([gaps[t] for t in tasks], dtype=np.float64)
    n = len(tasks)
    rx, ry = _ranks(x), _ranks(y)
    rho = float(_pearson_rows(rx, ry))
    rng = np.random.default_rng(seed)
    exact = n <= EXACT_PERMUTATIONS_UP_TO
    if exact:
        orders = np.array(list(itertools.permutations(range(n))))
        label = f"exact ({len(orders)})"
    else:
        orders = np.argsort(rng.random((draws, n)), axis=1)
        label = f"Monte Carlo ({draws})"
    shuffled = _pearson_rows(rx[None, :], ry[orders])
    reached = int((np.abs(shuffled) >= abs(rho) - 1e-12).sum())
    # A Monte Carlo p-value counts the observed ordering too, so it is never 0.
    p_value = reached / len(orders) if exact else (reached + 1) / (draws + 1)
    picks = rng.integers(0, n, size=(draws, n))
    boot = _pearson_rows(_ranks(x[picks]), _ranks(y[picks]))
    tail = (1.0 - level) / 2 * 100
    low, high = np.nanpercentile(boot, [tail, 100 - tail])
    return RankCorrelation(rho, float(low), float(high), float(p_value), n, label)


def read_comparisons(frame: pd.DataFrame, source: str) -> list[Comparison]:
    """Rows of (task_a, task_b, winner) from a pairwise-comparison file."""
    missing = [c for c in ("task_a", "task_b", "winner") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing}; the file needs task_a, task_b and winner "
            "(the task judged more objective)"
        )
    return [
        Comparison(str(row.task_a), str(row.task_b), str(row.winner))
        for row in frame.itertuples(index=False)
    ]


def gaps_by_mode(metrics: pd.DataFrame, metric: str = "macro_f1") -> dict[str, dict[str, float]]:
    """Real-minus-synthetic gap per synthetic source and task, averaged over models and seeds."""
    means = metrics.groupby(["task", "source"])[metric].mean().unstack("source")
    if "real" not in means.columns:
        return {}
    return {
        str(source): {
            str(task): float(gap) for task, gap in (means["real"] - means[source]).items()
        }
        for source in means.columns
        if source != "real"
    }
