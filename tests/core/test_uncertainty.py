"""The hierarchical bootstrap over seeds and test instances."""

from __future__ import annotations

import numpy as np
import pytest

from llmsynth_core.metrics import accuracy, macro_f1
from llmsynth_core.uncertainty import interval_columns, seed_intervals


def test_point_estimates_are_means_over_seeds() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, size=200)
    seeds = [np.where(rng.random(200) < q, truth, rng.integers(0, 3, 200)) for q in (0.6, 0.8)]
    result = seed_intervals(truth, seeds, 3, draws=300)
    f1s = [macro_f1(truth, p, 3) for p in seeds]
    accs = [accuracy(truth, p) for p in seeds]
    assert result["macro_f1"].mean == pytest.approx(np.mean(f1s))
    assert result["macro_f1"].std == pytest.approx(np.std(f1s, ddof=1))
    assert result["accuracy"].mean == pytest.approx(np.mean(accs))
    for interval in result.values():
        assert interval.low <= interval.mean <= interval.high


def test_perfect_predictions_have_a_degenerate_interval() -> None:
    truth = np.array([0, 1, 2, 1, 0] * 10)
    result = seed_intervals(truth, [truth, truth], 3, draws=200)
    assert (result["macro_f1"].low, result["macro_f1"].high) == (1.0, 1.0)
    assert result["accuracy"].std == 0.0


def test_interval_narrows_with_more_test_instances() -> None:
    rng = np.random.default_rng(1)

    def width(n: int) -> float:
        truth = rng.integers(0, 2, size=n)
        pred = np.where(rng.random(n) < 0.7, truth, 1 - truth)
        interval = seed_intervals(truth, [pred], 2, draws=500, seed=2)["accuracy"]
        return interval.high - interval.low

    assert width(2000) < width(100) / 2


def test_seed_spread_widens_the_interval() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, size=400)
    good = truth.copy()
    bad = 1 - truth
    same = seed_intervals(truth, [good, good, good], 2, draws=500)["accuracy"]
    spread = seed_intervals(truth, [good, bad, good], 2, draws=500)["accuracy"]
    assert spread.high - spread.low > same.high - same.low + 0.3


def test_inputs_are_checked_and_columns_flattened() -> None:
    with pytest.raises(ValueError, match="same test instances"):
        seed_intervals([0, 1], [[0]], 2)
    columns = interval_columns(seed_intervals([0, 1, 1], [[0, 1, 0]], 2, draws=50))
    assert set(columns) == {
        f"{m}{suffix}"
        for m in ("macro_f1", "accuracy")
        for suffix in ("", "_std", "_ci_low", "_ci_high")
    }
