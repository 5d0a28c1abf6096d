"""The hierarchical bootstrap over seeds and test instances."""

from __future__ import annotations

import numpy as np
import pytest

from llmsynth_core.metrics import accuracy, macro_f1
from llmsynth_core.uncertainty import (
    chance_macro_f1,
    interval_columns,
    paired_gap,
    seed_intervals,
)


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


def test_identical_sides_have_gap_zero_with_interval_zero() -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, size=150)
    seeds = np.stack(
        [np.where(rng.random(150) < 0.7, truth, rng.integers(0, 3, 150)) for _ in "ab"]
    )
    gap = paired_gap(truth, seeds, seeds[:, None, :], 3, draws=300)
    assert (gap.gap, gap.low, gap.high) == (0.0, 0.0, 0.0)
    assert (gap.normalised, gap.normalised_low, gap.normalised_high) == (0.0, 0.0, 0.0)


def test_always_right_against_always_wrong_gives_the_whole_range() -> None:
    truth = np.array([0, 1] * 50)
    right = truth[None, :]
    wrong = (1 - truth)[None, None, :]
    gap = paired_gap(truth, right, wrong, 2, draws=300)
    # Real Macro-F1 1, synthetic 0: gap 1. Chance Macro-F1 of a uniform guesser on two
    # balanced classes is 1/2, so the real model's skill above chance is 1/2 and the
    # normalised gap 2 (the synthetic model is as far below chance as real is above).
    assert (gap.real, gap.synthetic, gap.chance) == (1.0, 0.0, 0.5)
    assert gap.gap == 1.0 and gap.low == gap.high == 1.0
    assert gap.normalised == pytest.approx(2.0)


def test_chance_is_the_macro_f1_of_a_uniform_guesser() -> None:
    # Balanced: 1/K. Imbalanced: the mean over classes of 2 p_k (1/K) / (p_k + 1/K).
    assert chance_macro_f1(np.array([0, 1, 2, 3] * 5), 4) == pytest.approx(0.25)
    truth = np.array([0] * 90 + [1] * 10)
    expected = (2 * 0.9 * 0.5 / 1.4 + 2 * 0.1 * 0.5 / 0.6) / 2
    assert chance_macro_f1(truth, 2) == pytest.approx(expected)
    rng = np.random.default_rng(5)
    guesses = [macro_f1(truth, rng.integers(0, 2, size=100), 2) for _ in range(2000)]
    assert np.mean(guesses) == pytest.approx(expected, abs=0.01)


def test_paired_interval_is_narrower_when_errors_are_shared() -> None:
    # Both sides miss the same hard instances; the synthetic side misses a few more. Resampling
    # the rows once for both cancels the shared difficulty; resampling each side on its own
    # (unpaired) does not, so the unpaired interval of the difference is much wider.
    rng = np.random.default_rng(6)
    n = 400
    truth = rng.integers(0, 2, size=n)
    hard = rng.random(n) < 0.3
    real = np.where(hard, 1 - truth, truth)
    synthetic = np.where(hard | (rng.random(n) < 0.05), 1 - truth, truth)
    paired = paired_gap(truth, real[None], synthetic[None, None], 2, draws=1000, seed=1)
    real_alone = seed_intervals(truth, [real], 2, draws=1000, seed=2)["macro_f1"]
    synthetic_alone = seed_intervals(truth, [synthetic], 2, draws=1000, seed=3)["macro_f1"]
    # Unpaired: the half-widths of independent intervals add in quadrature.
    unpaired_width = np.hypot(
        real_alone.high - real_alone.low, synthetic_alone.high - synthetic_alone.low
    )
    assert paired.low <= paired.gap <= paired.high
    assert paired.high - paired.low < unpaired_width / 2


def test_replicates_widen_the_gap_interval() -> None:
    # Two synthetic sets that train very different models: the interval covers that spread.
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, size=300)
    real = truth[None]
    one = np.where(rng.random(300) < 0.9, truth, 1 - truth)
    other = np.where(rng.random(300) < 0.6, truth, 1 - truth)
    same = paired_gap(truth, real, np.stack([one, one])[None], 2, draws=500)
    spread = paired_gap(truth, real, np.stack([one, other])[None], 2, draws=500)
    assert spread.high - spread.low > (same.high - same.low) + 0.1


def test_paired_gap_checks_its_inputs() -> None:
    truth = np.array([0, 1, 1])
    with pytest.raises(ValueError, match="same seeds"):
        paired_gap(truth, np.array([[0, 1, 1]]), np.zeros((2, 1, 3), dtype=int), 2)
    with pytest.raises(ValueError, match="test instances"):
        paired_gap(truth, np.array([[0, 1]]), np.zeros((1, 1, 3), dtype=int), 2)
