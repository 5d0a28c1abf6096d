from __future__ import annotations

import random

import pandas as pd
import pytest

from llmsynth_core.subjectivity import (
    Comparison,
    bradley_terry,
    gap_correlation,
    gaps_by_mode,
    read_comparisons,
    subjectivity_levels,
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
