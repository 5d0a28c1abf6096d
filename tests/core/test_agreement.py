from __future__ import annotations

import math

import pandas as pd
import pytest

from llmsynth_core.agreement import (
    agreement_analysis,
    agreement_from_annotations,
    estimate_analysis,
    fit_sweep,
    panel_notes,
    panel_of,
    threshold_sweep,
    with_estimated_agreement,
)


def test_agreement_is_the_majority_share() -> None:
    annotations = [["pos", "pos", "neg"], ["neg"] * 4, ["a", "b", "c", "a", "a"]]
    assert agreement_from_annotations(annotations) == pytest.approx([2 / 3, 1.0, 3 / 5])
    with pytest.raises(ValueError, match="instance 1"):
        agreement_from_annotations([["x"], []])


def test_threshold_sweep_on_a_hand_made_column() -> None:
    agreement = [0.5, 0.5, 0.66, 0.66, 0.75, 1.0, 1.0, 1.0]
    correct = [False, False, False, True, True, True, True, True]
    sweep = threshold_sweep(agreement, correct, min_instances=3)
    assert sweep["threshold"].tolist() == [0.5, 0.66, 0.75, 1.0]
    assert sweep["n"].tolist() == [8, 6, 4, 3]
    assert sweep["accuracy"].tolist() == pytest.approx([5 / 8, 5 / 6, 1.0, 1.0])
    assert sweep["kept"].tolist() == [True, True, True, True]
    assert threshold_sweep(agreement, correct, min_instances=4)["kept"].tolist() == [
        True,
        True,
        True,
        False,
    ]


def test_a_perfectly_linear_series_fits_with_r_squared_one() -> None:
    sweep = pd.DataFrame(
        {
            "threshold": [0.2, 0.4, 0.6, 0.8, 1.0],
            "n": [50, 40, 30, 20, 10],
            "accuracy": [0.5, 0.6, 0.7, 0.8, 0.9],
            "kept": [True] * 5,
        }
    )
    fit = fit_sweep(sweep)
    assert fit is not None
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.slope == pytest.approx(0.5)
    assert fit.intercept == pytest.approx(0.4)
    assert fit.rho == pytest.approx(1.0)
    assert fit.thresholds == 5
    # Dropping thresholds (too few instances) leaves them out of the fit.
    noisy = sweep.assign(accuracy=[0.1, 0.6, 0.7, 0.8, 0.9], kept=[False, True, True, True, True])
    refit = fit_sweep(noisy)
    assert refit is not None and refit.r_squared == pytest.approx(1.0) and refit.thresholds == 4


def test_too_few_kept_thresholds_give_no_fit_and_constant_accuracy_has_no_rho() -> None:
    sweep = threshold_sweep([0.5, 1.0], [True, True], min_instances=1)
    assert fit_sweep(sweep) is None
    constant = threshold_sweep([0.2, 0.4, 0.6, 0.8], [True] * 4, min_instances=1)
    fit = fit_sweep(constant)
    assert fit is not None and fit.slope == pytest.approx(0.0) and math.isnan(fit.rho)


def test_agreement_analysis_per_model_and_source_skips_unrated_tasks() -> None:
    rows = []
    for source, miss_below in (("real", 0.6), ("zero_shot", 0.9)):
        for i in range(40):
            a = [0.5, 0.66, 0.75, 1.0][i % 4]
            rows.append(
                {
                    "task": "fpb",
                    "model": "m",
                    "source": source,
                    "agreement": a,
                    "correct": a >= miss_below or i % 8 == 0,
                }
            )
    rows += [{"task": "ag", "model": "m", "source": "real", "agreement": None, "correct": True}]
    sweeps, fits = agreement_analysis(pd.DataFrame(rows), min_instances=5)
    assert set(sweeps["task"]) == {"fpb"}
    assert sweeps.groupby("source").size().to_dict() == {"real": 4, "zero_shot": 4}
    by_source = fits.set_index("source")
    assert (by_source["slope"] > 0).all()
    assert set(fits.columns) >= {"r_squared", "rho", "rho_p_value"}
    empty_sweeps, empty_fits = agreement_analysis(pd.DataFrame(rows[-1:]), min_instances=5)
    assert empty_sweeps.empty and empty_fits.empty


def _predictions(rows: int, sources: tuple[str, ...] = ("real", "zero_shot")) -> pd.DataFrame:
    """Test rows 0..rows-1 per source, correct on even rows; shuffled, as concat order may be."""
    frame = pd.DataFrame(
        [
            {
                "task": "ag",
                "model": "m",
                "source": source,
                "row": row,
                "row_id": f"id{row}",
                "correct": row % 2 == 0,
                "agreement": None,
            }
            for source in sources
            for row in range(rows)
        ]
    )
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _estimates(rows: list[int], k: int = 3) -> pd.DataFrame:
    """The panel agrees fully on even rows, 2 of 3 on odd rows; row 1 has a dropped estimate."""
    return pd.DataFrame(
        {
            "task": "ag",
            "row": rows,
            "row_id": [f"id{row}" for row in rows],
            "annotations": [["x"] * k for _ in rows],
            "raw": [["x"] * k for _ in rows],
            "agreement_estimate": [
                None if row == 1 else (1.0 if row % 2 == 0 else 2 / 3) for row in rows
            ],
            "model": "panel-model",
        }
    )


def test_estimates_join_predictions_on_the_test_set_row_not_on_position() -> None:
    # The panel labelled a sample: rows 1, 4, 5, ... of the test set, not its first rows.
    sampled = [1, 4, 5, 8, 9, 12, 13, 16, 17, 19]
    sweeps, _ = estimate_analysis(_predictions(20), _estimates(sampled), min_instances=1)
    for _, sweep in sweeps.groupby("source"):
        by_threshold = sweep.set_index("threshold")
        # a_i = 1 exactly on the even (correct) rows; row 1 was dropped, so 9 instances rated.
        assert by_threshold.loc[1.0, "accuracy"] == 1.0
        assert by_threshold.loc[1.0, "n"] == 4
        assert sweep.loc[sweep["threshold"] < 1.0, "n"].tolist() == [9]
    assert set(sweeps["agreement_source"]) == {"llm-estimate"}
    assert set(sweeps["panel"]) == {"LLM estimate (panel-model, k=3)"}


def test_estimate_fits_name_the_panel_and_count_dropped_instances() -> None:
    sampled = list(range(0, 20))
    _, fits = estimate_analysis(_predictions(20), _estimates(sampled), min_instances=1)
    assert fits.empty  # two thresholds only: no fit, but the panel columns are there
    predictions = _predictions(40)
    estimates = _estimates(list(range(40))).assign(
        agreement_estimate=[None if r == 1 else [1 / 3, 2 / 3, 1.0][r % 3] for r in range(40)]
    )
    _, fits = estimate_analysis(predictions, estimates, min_instances=1)
    assert len(fits) == 2
    assert set(fits["panel"]) == {"LLM estimate (panel-model, k=3)"}
    assert set(fits["panel_instances"]) == {40} and set(fits["panel_dropped"]) == {1}
    assert panel_of(fits, "ag") == "LLM estimate (panel-model, k=3)"
    assert panel_of(fits, "other") is None
    notes = panel_notes(fits)
    assert notes == [
        "ag: LLM estimate (panel-model, k=3), not human agreement; 40 test instances "
        "labelled, 1 dropped (fewer than half of the k replies parsable)."
    ]


def test_rows_with_human_agreement_are_not_replaced_by_the_estimate() -> None:
    predictions = _predictions(20).assign(agreement=lambda f: f["row"].map(lambda r: 0.5))
    sweeps, fits = estimate_analysis(predictions, _estimates(list(range(20))), min_instances=1)
    assert sweeps.empty and fits.empty
    assert panel_notes(fits) == []


def test_panel_estimates_join_predictions_by_row_id_not_position() -> None:
    predictions = pd.DataFrame(
        {
            "task": ["t"] * 3 + ["u"],
            "row": [0, 1, 2, 0],
            "row_id": ["a", "b", "c", "a"],
            "correct": [True, False, True, True],
            "agreement": [float("nan")] * 3 + [1.0],  # task u has human agreement
        }
    )
    # The panel rated c and a, in that order; b was not rated.
    estimates = pd.DataFrame(
        {"task": ["t", "t"], "row": [0, 1], "row_id": ["c", "a"], "agreement_estimate": [0.5, 1.0]}
    )
    merged = with_estimated_agreement(predictions, estimates)
    assert dict(zip(merged["row_id"], merged["agreement"], strict=True)) == {"a": 1.0, "c": 0.5}
    assert set(merged["task"]) == {"t"}


def test_sweep_counts_test_instances_not_predictions_pooled_over_seeds() -> None:
    # Three seeds predict the same 10 instances: n is 10 at the lowest threshold, not 30, and
    # a 12-instance minimum keeps no threshold although 30 predictions sit below it.
    agreement = [0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0] * 3
    correct = [i % 2 == 0 for i in range(30)]
    ids = [f"row{i}" for i in range(10)] * 3
    sweep = threshold_sweep(agreement, correct, min_instances=12, instances=ids)
    assert sweep["n"].tolist() == [10, 5]
    assert not sweep["kept"].any()
    rows = [
        {"task": "fpb", "model": "m", "source": "real", "agreement": a, "correct": c, "row_id": i}
        for a, c, i in zip(agreement, correct, ids, strict=True)
    ]
    sweeps, _ = agreement_analysis(pd.DataFrame(rows), min_instances=1)
    assert sweeps["n"].tolist() == [10, 5]
