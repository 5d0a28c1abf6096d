"""The study's three findings on constructed runs whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmsynth_core.analysis import subjectivity_record
from llmsynth_core.findings import (
    COLUMNS,
    agreement_rows,
    findings_frame,
    findings_summary,
    findings_table,
    subjectivity_rows,
)
from llmsynth_core.results import summarise_seeds
from llmsynth_core.schemas import FINDINGS, to_table

LABELS = ["no", "yes"]
N_ROWS = 200
SEEDS = [1, 2]
DRAWS = 300


def _hits(rate: float, seed: int, n: int = N_ROWS) -> np.ndarray:
    """(seeds, rows) correctness, each seed's model right on a random `rate` of the rows."""
    rng = np.random.default_rng(seed)
    return rng.random((len(SEEDS), n)) < rate


def _predictions(
    hits: dict[str, np.ndarray], agreement: np.ndarray | None = None, task: str = "t"
) -> pd.DataFrame:
    """One prediction per source, seed and test row; truth alternates no/yes."""
    frames = []
    for source, by_seed in hits.items():
        for seed, right in zip(SEEDS, by_seed, strict=True):
            truth = np.arange(right.size) % 2
            pred = np.where(right, truth, 1 - truth)
            frames.append(
                pd.DataFrame(
                    {
                        "task": task,
                        "model": "m",
                        "source": source,
                        "seed": seed,
                        "replicate": 0,
                        "row": np.arange(right.size),
                        "label_id": truth,
                        "pred_id": pred,
                        "correct": right,
                        "agreement": np.full(right.size, np.nan)
                        if agreement is None
                        else agreement,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _runs(predictions: pd.DataFrame) -> pd.DataFrame:
    units = predictions[["task", "model", "source", "seed", "replicate"]].drop_duplicates()
    return units.assign(
        subjectivity=1,
        label_names=[LABELS] * len(units),
        n_train=10,
        n_test=N_ROWS,
        best_epoch=1,
        train_seconds=1.0,
    ).reset_index(drop=True)


def _findings(predictions: pd.DataFrame, record: dict[str, object] | None = None) -> pd.DataFrame:
    runs = _runs(predictions)
    results = summarise_seeds(runs, predictions, draws=DRAWS, seed=3)
    return findings_table(runs, predictions, results, record or {}, draws=DRAWS, seed=3)


def _by_comparison(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("comparison")


def test_finding_one_holds_only_where_the_gap_is_clearly_positive() -> None:
    zero = _hits(0.6, seed=1)
    hits = {"real": _hits(0.95, seed=0), "zero_shot": zero, "few_shot": zero.copy()}
    frame = _findings(_predictions(hits))
    assert to_table(frame, FINDINGS, "findings").num_rows == 3
    rows = _by_comparison(frame[frame["finding"] == 1])
    assert list(rows.index) == ["real - zero_shot", "real - few_shot", "few_shot - zero_shot"]
    assert rows.at["real - zero_shot", "holds"] is True
    assert rows.at["real - zero_shot", "low"] > 0.2
    # Identical predictions: a gap of exactly 0 with a degenerate interval does not exclude 0.
    same = rows.loc["few_shot - zero_shot"]
    assert (same["estimate"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    assert same["holds"] is False


def test_finding_one_reuses_the_results_gaps_and_a_negative_gap_does_not_hold() -> None:
    hits = {"real": _hits(0.9, 0), "zero_shot": _hits(0.8, 1), "few_shot": _hits(0.55, 2)}
    predictions = _predictions(hits)
    runs = _runs(predictions)
    results = summarise_seeds(runs, predictions, draws=DRAWS, seed=3)
    frame = findings_table(runs, predictions, results, {}, draws=DRAWS, seed=3)
    rows = _by_comparison(frame)
    gap = results.set_index("source").loc["few_shot", ["gap_macro_f1", "gap_low", "gap_high"]]
    assert tuple(rows.loc["real - few_shot", ["estimate", "low", "high"]]) == tuple(gap)
    worse = rows.loc["few_shot - zero_shot"]
    assert worse["estimate"] < 0 and worse["high"] < 0 and worse["holds"] is False


def test_few_over_zero_is_tested_without_a_real_baseline() -> None:
    hits = {"zero_shot": _hits(0.55, 1), "few_shot": _hits(0.95, 2)}
    frame = _findings(_predictions(hits))
    assert list(frame["comparison"]) == ["few_shot - zero_shot"]
    assert frame["holds"].tolist() == [True]


def test_few_over_zero_with_two_few_shot_sets_is_the_difference_of_their_means() -> None:
    sets = [_predictions({"few_shot": _hits(rate, seed)}) for seed, rate in ((5, 0.9), (6, 0.7))]
    few = pd.concat([part.assign(replicate=r) for r, part in enumerate(sets)], ignore_index=True)
    predictions = pd.concat([_predictions({"zero_shot": _hits(0.6, 1)}), few], ignore_index=True)
    runs = _runs(predictions)
    results = summarise_seeds(runs, predictions, draws=DRAWS, seed=3).set_index("source")
    row = findings_table(runs, predictions, results.reset_index(), {}, draws=DRAWS, seed=3)
    expected = results.at["few_shot", "macro_f1"] - results.at["zero_shot", "macro_f1"]
    assert row["estimate"].tolist() == [pytest.approx(expected)]
    assert row["low"].iloc[0] < expected < row["high"].iloc[0]
    assert "2 few-shot sets per seed as units" in row["note"].iloc[0]


def _agreement() -> np.ndarray:
    """Half the rows at full agreement, half at 0.6, interleaved."""
    return np.where(np.arange(N_ROWS) % 4 < 2, 1.0, 0.6)


def _uniform_errors(every: int) -> np.ndarray:
    """Wrong on every `every`-th row of each agreement level alike, for every seed."""
    within = np.arange(N_ROWS) // 4 * 2 + np.arange(N_ROWS) % 2  # index within its level
    return np.tile(within % every != 0, (len(SEEDS), 1))


def test_finding_three_holds_where_synthetic_errs_only_on_low_agreement() -> None:
    agreement = _agreement()
    low = agreement < 1.0
    hits = {
        "real": _uniform_errors(10),
        "zero_shot": ~low | _hits(0.5, seed=4),  # right on every top instance
        "few_shot": _uniform_errors(4),
    }
    frame = findings_frame(agreement_rows(_predictions(hits, agreement), DRAWS, 5))
    rows = _by_comparison(frame)
    assert list(rows.index) == [
        "real rise",
        "zero_shot rise",
        "few_shot rise",
        "zero_shot rise - real rise",
        "few_shot rise - real rise",
    ]
    assert rows.at["zero_shot rise", "estimate"] == pytest.approx(0.5, abs=0.1)
    assert rows.at["zero_shot rise", "holds"] is True
    assert rows.at["zero_shot rise - real rise", "holds"] is True
    # Uniform errors: no rise, and none steeper than real's.
    for comparison in ("real rise", "few_shot rise", "few_shot rise - real rise"):
        assert rows.at[comparison, "estimate"] == pytest.approx(0.0, abs=1e-12), comparison
        assert rows.at[comparison, "holds"] is False, comparison
    assert "agreement == 1 (n=100) minus below (n=100)" in rows.at["real rise", "note"]


def test_finding_three_needs_two_agreement_levels_and_skips_unrated_tasks() -> None:
    hits = {"real": _hits(0.9, 0), "zero_shot": _hits(0.7, 1)}
    assert agreement_rows(_predictions(hits), DRAWS, 0) == []
    flat = agreement_rows(_predictions(hits, np.ones(N_ROWS)), DRAWS, 0)
    assert [row["holds"] for row in flat] == [None, None]
    assert "same agreement" in flat[0]["note"]


def _record(n_tasks: int) -> dict[str, object]:
    """A subjectivity record of n tasks whose zero-shot gap grows with subjectivity and whose
    few-shot gap shrinks."""
    rows = []
    for level in range(1, n_tasks + 1):
        for source, f1 in (
            ("real", 0.9),
            ("zero_shot", 0.9 - 0.05 * level),
            ("few_shot", 0.5 + 0.05 * level),
        ):
            rows.append(
                {"task": f"t{level}", "subjectivity": level, "source": source, "macro_f1": f1}
            )
    return subjectivity_record(pd.DataFrame(rows), None, "", seed=0)


def test_finding_two_holds_for_a_gap_that_grows_with_subjectivity() -> None:
    rows = _by_comparison(findings_frame(subjectivity_rows(_record(5))))
    grows, shrinks = (
        rows.loc["rho(subjectivity, real - zero_shot)"],
        rows.loc["rho(subjectivity, real - few_shot)"],
    )
    assert grows["task"] == "all (5 tasks)"
    assert grows["estimate"] == pytest.approx(1.0) and grows["holds"] is True
    assert shrinks["estimate"] == pytest.approx(-1.0) and shrinks["holds"] is False
    assert "permutation p = " in grows["note"]


def test_finding_two_is_not_tested_with_too_few_tasks() -> None:
    rows = subjectivity_rows(_record(3))
    assert [row["holds"] for row in rows] == [None, None]
    assert rows[0]["task"] == "all (3 tasks)"
    assert rows[0]["note"] == "The subjectivity fit needs at least 4 tasks; this run has 3."
    frame = pd.DataFrame(rows, columns=COLUMNS)
    assert to_table(frame, FINDINGS, "findings").column("holds").null_count == 2


def _frame(rows: list[tuple[int, str, str, float, bool | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "finding": finding,
                "task": task,
                "model": "m",
                "comparison": comparison,
                "estimate": low + 0.1,
                "low": low,
                "high": low + 0.2,
                "holds": holds,
                "note": "why",
            }
            for finding, task, comparison, low, holds in rows
        ],
        columns=COLUMNS,
    )


def test_the_summary_counts_the_tasks_where_each_comparison_holds() -> None:
    frame = _frame(
        [
            (1, "a", "real - zero_shot", 0.1, True),
            (1, "b", "real - zero_shot", -0.1, False),
            (1, "c", "real - zero_shot", 0.2, True),
            (1, "a", "few_shot - zero_shot", -0.3, False),
            (2, "all (3 tasks)", "rho(subjectivity, real - zero_shot)", float("nan"), None),
            (3, "a", "real rise", 0.05, True),
            (3, "a", "zero_shot rise - real rise", -0.05, False),
        ]
    )
    frame.loc[4, "note"] = "needs 4 tasks"
    one, two, three = findings_summary(frame)
    assert one == (
        "Finding 1 (real > few-shot > zero-shot): real > zero-shot holds on 2 of 3 tasks; "
        "few-shot > zero-shot on 0 of 1."
    )
    assert two.endswith("zero-shot: not tested (needs 4 tasks).")
    assert three.endswith(
        "accuracy rises with agreement for real on 1 of 1 tasks; more steeply than real for "
        "zero-shot on 0 of 1 tasks."
    )
    # Two models on one task: pairs are counted, not tasks.
    twice = pd.concat([frame.head(1), frame.head(1).assign(model="n")], ignore_index=True)
    assert "holds on 2 of 2 task-model pairs" in findings_summary(twice)[0]
    nothing = findings_summary(None)
    assert len(nothing) == 3 and all("not tested on this run" in line for line in nothing)
