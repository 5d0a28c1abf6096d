from __future__ import annotations

import random

import pandas as pd
import pytest
from scipy import stats

from llmsynth_core.subjectivity import (
    Comparison,
    bradley_terry,
    gap_correlation,
    gaps_by_mode,
    read_comparisons,
    subjectivity_levels,
    subjectivity_source,
    too_few_tasks,
)

TRUE_ORDER = ["ag_news", "imdb", "sms_spam", "tweet_irony", "humor_speech"]  # most objective first


def _simulate(n: int, seed: int) -> list[Comparison]:
    """Judges who prefer the truly more objective task with Bradley-Terry probabilities."""
    rng = random.Random(seed)
    strength = {task: 2.0 ** (len(TRUE_ORDER) - i) for i, task in enumerate(TRUE_ORDER)}
    rows = []
    for _ in range(n):
        a, b = rng.sample(TRUE_ORDER, 2)
        p_a = strength[a] / (strength[a] + strength[b])
        rows.append(Comparison(a, b, a if rng.random() < p_a else b))
    return rows


def test_bradley_terry_recovers_a_known_order_from_540_judgments() -> None:
    strengths = bradley_terry(_simulate(540, seed=3))
    assert sorted(strengths, key=lambda t: -strengths[t]) == TRUE_ORDER
    assert sum(strengths.values()) == pytest.approx(0.0, abs=1e-9)
    levels = subjectivity_levels(strengths)
    assert [levels[t] for t in TRUE_ORDER] == [1, 2, 3, 4, 5]


def test_a_task_that_never_wins_still_gets_a_finite_strength() -> None:
    rows = [Comparison("a", "b", "a")] * 5 + [Comparison("b", "c", "b")] * 5
    strengths = bradley_terry(rows)
    assert strengths["a"] > strengths["b"] > strengths["c"]
    assert all(abs(v) < 50 for v in strengths.values())


def test_bad_winner_and_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="neither"):
        bradley_terry([Comparison("a", "b", "c")])
    with pytest.raises(ValueError, match="winner"):
        read_comparisons(pd.DataFrame({"task_a": ["a"], "task_b": ["b"]}), "pairs.csv")


def test_gap_correlation_is_spearman() -> None:
    subjectivity = {"a": 1, "b": 2, "c": 3, "d": 4}
    gaps = {"a": 0.01, "b": 0.05, "c": 0.04, "d": 0.2}
    result = gap_correlation(subjectivity, gaps)
    assert result.rho == pytest.approx(0.8)
    assert result.n == 4
    assert result.low <= result.rho <= result.high
    assert gap_correlation(subjectivity, {t: -g for t, g in gaps.items()}).rho == pytest.approx(
        -0.8
    )


def test_gaps_by_mode_average_models_and_seeds() -> None:
    metrics = pd.DataFrame(
        [
            {"task": "a", "source": "real", "macro_f1": 0.9},
            {"task": "a", "source": "real", "macro_f1": 0.8},
            {"task": "a", "source": "zero_shot", "macro_f1": 0.6},
            {"task": "b", "source": "real", "macro_f1": 0.7},
            {"task": "b", "source": "zero_shot", "macro_f1": 0.7},
        ]
    )
    assert gaps_by_mode(metrics) == {"zero_shot": {"a": pytest.approx(0.25), "b": 0.0}}


def test_exact_permutation_p_value_of_a_perfect_order() -> None:
    # Four tasks in perfect order: of the 4! = 24 orderings of the gaps, only this one and its
    # reverse reach |rho| = 1, so the two-sided exact p-value is 2/24.
    subjectivity = {"a": 1, "b": 2, "c": 3, "d": 4}
    gaps = {"a": 0.0, "b": 0.1, "c": 0.2, "d": 0.3}
    result = gap_correlation(subjectivity, gaps)
    assert result.rho == 1.0
    assert result.p_value == pytest.approx(2 / 24)
    assert result.permutations == "exact (24)"
    # Every bootstrap resample of a monotone relation is monotone too.
    assert (result.low, result.high) == (1.0, 1.0)


def test_many_tasks_use_seeded_monte_carlo_permutations() -> None:
    tasks = [f"t{i}" for i in range(12)]
    subjectivity = {t: i for i, t in enumerate(tasks)}
    noise = [0.3, -0.1, 0.2, 0.0, -0.3, 0.1, 0.25, -0.2, 0.05, -0.05, 0.15, -0.25]
    gaps = {t: 0.02 * i + n for i, (t, n) in enumerate(zip(tasks, noise, strict=True))}
    result = gap_correlation(subjectivity, gaps, draws=4000, seed=1)
    assert result.permutations == "Monte Carlo (4000)"
    assert result == gap_correlation(subjectivity, gaps, draws=4000, seed=1)
    # scipy's two-sided p-value (t approximation) agrees with the permutation one.
    reference = stats.spearmanr([subjectivity[t] for t in tasks], [gaps[t] for t in tasks])
    assert result.rho == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue, abs=0.03)
    assert result.low < result.rho < result.high


def test_fewer_than_four_tasks_get_no_number() -> None:
    with pytest.raises(ValueError, match="at least 4 tasks"):
        gap_correlation({"a": 1, "b": 2, "c": 3}, {"a": 0.1, "b": 0.2, "c": 0.3})
    assert too_few_tasks(3) == "The subjectivity fit needs at least 4 tasks; this run has 3."


def test_the_fit_names_its_source() -> None:
    assert subjectivity_source() == "author-assigned levels"
    pairs = _simulate(540, seed=3)
    assert (
        subjectivity_source(pairs, "pairs.csv") == "Bradley-Terry on 540 judgments from pairs.csv"
    )
