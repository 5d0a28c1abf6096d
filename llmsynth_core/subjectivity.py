"""Task-level subjectivity: a Bradley-Terry ranking from pairwise "which task is more objective"
judgments, and its rank correlation with the real-minus-synthetic performance gap."""

from __future__ import annotations

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


@dataclass(frozen=True)
class RankCorrelation:
    rho: float
    p_value: float
    n: int


def gap_correlation(
    subjectivity: Mapping[str, float], gaps: Mapping[str, float]
) -> RankCorrelation:
    """Spearman's rho between task subjectivity and the real-minus-synthetic gap."""
    tasks = sorted(set(subjectivity) & set(gaps))
    if len(tasks) < 3:
        raise ValueError(f"a rank correlation needs at least 3 tasks; got {tasks}")
    result = stats.spearmanr([subjectivity[t] for t in tasks], [gaps[t] for t in tasks])
    return RankCorrelation(rho=float(result.statistic), p_value=float(result.pvalue), n=len(tasks))


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
