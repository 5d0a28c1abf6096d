"""The real-equivalent size: interpolation on a known curve, censoring, the isotonic fit, and
the bootstrap over test instances and seeds on predictions built to known scores."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pytest

from llmsynth_core.config import Mixture
from llmsynth_core.schemas import REAL_CURVE, REAL_EQUIVALENT, to_table
from llmsynth_core.size_matching import curve_size, curve_source
from llmsynth_core.worth import (
    crossing,
    describe,
    interval_of,
    isotonic,
    real_equivalent_text,
    real_equivalents,
    without_curve,
)

SIZES = [1, 2, 4, 8, 16]
# Macro-F1 = 0.5 + 0.1 log2(k): a straight line on a log axis, 0.75 at k = 2**2.5.
LOG_LINE = [0.5 + 0.1 * math.log2(k) for k in SIZES]


def test_a_known_log_linear_curve_is_crossed_where_the_line_says() -> None:
    found = crossing(SIZES, LOG_LINE, 0.75)
    assert found.censored is None
    assert found.k == pytest.approx(2**2.5)
    # On a curve point exactly, and between other points.
    assert crossing(SIZES, LOG_LINE, 0.7).k == pytest.approx(4)
    assert crossing(SIZES, LOG_LINE, 0.55).k == pytest.approx(2**0.5)


@pytest.mark.parametrize(
    ("target", "censored", "bound", "text"),
    [(0.45, "below", 1, "< 1"), (0.95, "above", 16, "> 16")],
)
def test_targets_outside_the_curve_are_censored_at_its_ends_not_extrapolated(
    target: float, censored: str, bound: int, text: str
) -> None:
    found = crossing(SIZES, LOG_LINE, target)
    assert (found.censored, found.k) == (censored, bound)
    assert math.isinf(found.log_k)
    assert describe(found, found.log_k, found.log_k, 1, 16) == f"{text} [{text}, {text}]"


def test_a_noisy_curve_is_made_monotone_so_it_is_crossed_once() -> None:
    noisy = [0.5, 0.7, 0.6, 0.8, 0.75]
    assert isotonic(noisy) == pytest.approx([0.5, 0.65, 0.65, 0.775, 0.775])
    # 0.66 lies on three segments of the raw curve; the isotonic fit reaches it between k=4
    # (0.65) and k=8 (0.775) only.
    assert crossing(SIZES, noisy, 0.66).k == pytest.approx(4 * 2 ** (0.01 / 0.125))
    # 0.78 is above the fitted end (0.775), though the raw curve touched 0.8 at k=8.
    assert crossing(SIZES, noisy, 0.78).censored == "above"


def test_interval_ends_can_be_censored_and_the_text_says_so() -> None:
    drawn = np.array([-math.inf] * 30 + [math.log(3.0)] * 940 + [math.inf] * 30)
    low, high = interval_of(drawn)
    assert (low, high) == (-math.inf, math.inf)
    assert describe(crossing(SIZES, LOG_LINE, 0.75), low, high, 1, 16) == "≈ 5.7 [< 1, > 16]"
    assert interval_of(np.log(np.arange(1.0, 1001.0))) == pytest.approx(
        (math.log(25), math.log(976))
    )


def test_curve_names_round_trip_and_curve_rows_are_left_out_of_the_study() -> None:
    assert curve_size(curve_source(8)) == 8
    assert [curve_size(s) for s in ("real", "few_shot", "few_shot+real8xall", "real@")] == [
        None
    ] * 4
    frame = pd.DataFrame({"source": ["real", "real@2", "zero_shot", "few_shot+real2xall"]})
    assert without_curve(frame)["source"].tolist() == ["real", "zero_shot", "few_shot+real2xall"]


N_PER_CLASS = 200
LABELS = ["no", "yes"]


def _predictions(
    accuracy: float, jitter: Sequence[float], rng: np.random.Generator
) -> list[np.ndarray]:
    """Per seed, predictions of 2 x N_PER_CLASS balanced rows with the same number of errors in
    each class, so Macro-F1 equals accuracy; each seed is off by one of `jitter`, in an order of
    its own per call (a seed's noise is not shared by the sources, so pairing cannot cancel it)."""
    truth = np.repeat([0, 1], N_PER_CLASS)
    out = []
    for delta in rng.permutation(np.asarray(jitter)):
        pred = truth.copy()
        errors = round(N_PER_CLASS * (1 - accuracy - delta))
        for label in (0, 1):
            wrong = rng.choice(np.flatnonzero(truth == label), errors, replace=False)
            pred[wrong] = 1 - label
        out.append(pred)
    return out


def _run(
    scores: Mapping[str, float], jitter: Sequence[float] = (0.0, 0.0, 0.0)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs and predictions of task t, model m: each source at its Macro-F1, one model per
    seed (seeds 1..len(jitter))."""
    rng = np.random.default_rng(7)
    truth = np.repeat([0, 1], N_PER_CLASS)
    runs, predictions = [], []
    for source, accuracy in scores.items():
        k = curve_size(source)
        for seed, pred in enumerate(_predictions(accuracy, jitter, rng), start=1):
            key = {"task": "t", "model": "m", "source": source, "seed": seed, "replicate": 0}
            counts = [k, k] if k else [24, 24]
            runs.append({**key, "subjectivity": 2, "label_names": LABELS, "train_counts": counts})
            predictions.append(
                pd.DataFrame(
                    {**key, "row": np.arange(truth.size), "label_id": truth, "pred_id": pred}
                )
            )
    return pd.DataFrame(runs), pd.concat(predictions, ignore_index=True)


CURVE = {curve_source(k): f1 for k, f1 in zip(SIZES, LOG_LINE, strict=True)}


def test_the_real_equivalent_of_a_run_reads_the_known_curve_with_an_interval() -> None:
    runs, predictions = _run({**CURVE, "zero_shot": 0.75, "few_shot": 0.95})
    equivalents, curve = real_equivalents(runs, predictions, ["zero_shot", "few_shot"], draws=300)
    to_table(equivalents, REAL_EQUIVALENT, "real_equivalent")
    to_table(curve, REAL_CURVE, "real_curve")
    rows = equivalents.set_index("source")
    zero = rows.loc["zero_shot"]
    assert zero["synthetic_macro_f1"] == pytest.approx(0.75)
    assert zero["real_equivalent"] == pytest.approx(2**2.5)
    assert zero["low"] < zero["real_equivalent"] < zero["high"]
    assert pd.isna(zero["censored"]) and zero["synthetic_per_label"] == 24
    assert zero["text"].startswith("≈ 5.7 [")
    few = rows.loc["few_shot"]
    assert few["censored"] == "above" and math.isnan(few["real_equivalent"])
    assert few["text"].startswith("> 16 [") and few["high_censored"] == "above"
    assert real_equivalent_text(equivalents, "t", "zero_shot") == zero["text"]
    assert real_equivalent_text(equivalents, "t", "nope") is None
    assert curve["per_label"].tolist() == SIZES
    assert curve["macro_f1"].to_numpy() == pytest.approx(LOG_LINE)
    assert (curve["macro_f1_low"] <= curve["macro_f1"]).all()
    assert (curve["macro_f1"] <= curve["macro_f1_high"]).all()


def test_the_interval_widens_when_seeds_disagree() -> None:
    scores = {**CURVE, "zero_shot": 0.75}
    width = {}
    for name, jitter in (("steady", (0.0, 0.0, 0.0)), ("noisy", (-0.05, 0.0, 0.05))):
        runs, predictions = _run(scores, jitter)
        equivalents, _ = real_equivalents(runs, predictions, ["zero_shot"], draws=300)
        row = equivalents.iloc[0]
        # Symmetric seed noise leaves the means, so the estimate, where they were.
        assert row["real_equivalent"] == pytest.approx(2**2.5)
        assert row["low"] <= row["real_equivalent"] <= row["high"]
        width[name] = math.log(row["high"]) - math.log(row["low"])
    assert width["noisy"] > 1.2 * width["steady"]


def test_the_mixed_curve_sits_beside_the_real_one_and_a_run_without_a_curve_has_none() -> None:
    mixture = Mixture(mode="few_shot", real_per_label=4)
    scores = {**CURVE, "few_shot": 0.7, mixture.name: 0.85}
    runs, predictions = _run(scores)
    _, curve = real_equivalents(runs, predictions, ["few_shot"], [mixture], draws=200)
    mixed = curve[curve["curve"] == "mixed"].iloc[0]
    assert (mixed["source"], mixed["mode"], mixed["per_label"]) == (mixture.name, "few_shot", 4)
    assert mixed["macro_f1"] == pytest.approx(0.85)
    assert mixed["macro_f1_low"] < 0.85 < mixed["macro_f1_high"]
    assert pd.isna(mixed["isotonic_macro_f1"])
    no_curve = {"real": 0.9, "few_shot": 0.7, mixture.name: 0.85}
    equivalents, curve = real_equivalents(*_run(no_curve), ["few_shot"], [mixture], draws=50)
    assert equivalents.empty and curve.empty
    assert list(equivalents.columns) == REAL_EQUIVALENT.names
