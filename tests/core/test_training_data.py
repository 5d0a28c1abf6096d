"""Training sets: real, mixed, the validation carve, and the checks before training."""

from __future__ import annotations

import pandas as pd
import pytest

from llmsynth_core.config import Mixture, TrainingConfig
from llmsynth_core.errors import DataError
from llmsynth_core.training_data import (
    accepted_rows,
    carve_validation,
    check_training_set,
    labelled,
    leaked,
    mixture_rows,
    real_rows,
    split_for_training,
    synthetic_rows,
)

LABELS = ["a", "b", "c"]


def _frame(per_label: int, prefix: str = "real") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": [f"{prefix} {label} {i}" for label in LABELS for i in range(per_label)],
            "label": [label for label in LABELS for _ in range(per_label)],
        }
    )


def test_real_rows_are_a_seeded_stratified_sample() -> None:
    train = _frame(20)
    counts = {"a": 5, "b": 5, "c": 3}
    rows = real_rows(train, counts, seed=1)
    assert rows["label"].value_counts().to_dict() == counts
    assert rows.equals(real_rows(train, counts, seed=1))
    assert not rows.equals(real_rows(train, counts, seed=2))


def test_synthetic_rows_are_cut_to_the_matched_counts_or_kept_whole() -> None:
    accepted = _frame(8, "synthetic")
    rows = synthetic_rows(accepted, {"a": 8, "b": 2, "c": 5}, seed=0)
    assert rows["label"].value_counts().to_dict() == {"a": 8, "b": 2, "c": 5}
    assert rows.equals(synthetic_rows(accepted, {"a": 8, "b": 2, "c": 5}, seed=0))
    assert synthetic_rows(accepted, None, seed=0).equals(accepted)
    assert synthetic_rows(accepted, dict.fromkeys(LABELS, 8), seed=0).equals(accepted)


@pytest.mark.parametrize(("synthetic_per_label", "expected_synthetic"), [(None, 8), (3, 3)])
def test_mixture_adds_synthetic_rows_to_a_small_real_set(
    synthetic_per_label: int | None, expected_synthetic: int
) -> None:
    mixture = Mixture(mode="few_shot", real_per_label=2, synthetic_per_label=synthetic_per_label)
    rows = mixture_rows(_frame(20), _frame(8, "synthetic"), mixture, LABELS, seed=0)
    real = rows["text"].str.startswith("real")
    assert real.groupby(rows["label"]).sum().to_dict() == {"a": 2, "b": 2, "c": 2}
    per_label = (~real).groupby(rows["label"]).sum().to_dict()
    assert per_label == dict.fromkeys(LABELS, expected_synthetic)
    assert mixture.name == f"few_shot+real2x{synthetic_per_label or 'all'}"


@pytest.mark.parametrize(("synthetic_per_label", "expected_a"), [(None, 4), (3, 3), (6, 4)])
def test_a_mixtures_synthetic_part_follows_the_matched_counts(
    synthetic_per_label: int | None, expected_a: int
) -> None:
    mixture = Mixture(mode="few_shot", real_per_label=2, synthetic_per_label=synthetic_per_label)
    caps = {"a": 4, "b": 8, "c": 8}  # few_shot fell short on label a
    rows = mixture_rows(_frame(20), _frame(8, "synthetic"), mixture, LABELS, 0, caps)
    synthetic = rows[rows["text"].str.startswith("synthetic")]
    others = 8 if synthetic_per_label is None else min(8, synthetic_per_label)
    assert synthetic["label"].value_counts().to_dict() == {
        "a": expected_a,
        "b": others,
        "c": others,
    }
    real = rows[rows["text"].str.startswith("real")]
    assert real["label"].value_counts().to_dict() == dict.fromkeys(LABELS, 2)  # as configured


def test_carve_validation_is_stratified_disjoint_and_seeded() -> None:
    frame = _frame(10)
    train, validation = carve_validation(frame, 0.2, seed=3)
    assert validation["label"].value_counts().to_dict() == {"a": 2, "b": 2, "c": 2}
    assert len(train) == 24
    assert not set(train["text"]) & set(validation["text"])
    again_train, again_validation = carve_validation(frame, 0.2, seed=3)
    assert again_validation.equals(validation) and again_train.equals(train)


def test_carve_validation_keeps_a_training_row_per_label_and_can_be_off() -> None:
    frame = _frame(1)
    train, validation = carve_validation(frame, 0.4, seed=0)
    assert len(train) == 3 and validation.empty
    train, validation = carve_validation(_frame(5), 0.0, seed=0)
    assert len(train) == 15 and validation.empty


def test_carve_validation_needs_enough_rows_per_label() -> None:
    # 0.2 of 10 rows is 2 per label: below a minimum of 3, no validation split at all.
    train, validation = carve_validation(_frame(10), 0.2, seed=0, min_per_label=3)
    assert len(train) == 30 and validation.empty
    train, validation = carve_validation(_frame(10), 0.2, seed=0, min_per_label=2)
    assert len(validation) == 6


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"text": [], "label": []}), "empty"),
        (pd.DataFrame({"text": ["ok", "  "], "label": ["a", "b"]}), "1 training text"),
        (pd.DataFrame({"text": ["x", "y"], "label": ["a", "spam"]}), r"\['spam'\]"),
        (pd.DataFrame({"text": ["x", "y"], "label": ["a", "a"]}), "single class"),
    ],
)
def test_bad_training_sets_are_named(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        check_training_set(frame, LABELS, "t/real")


def test_good_training_set_passes() -> None:
    check_training_set(_frame(2), LABELS, "t/real")


def test_leaked_counts_test_texts_seen_in_training_up_to_case_and_spaces() -> None:
    train = ["The cat sat.", "Dogs  bark", "unique"]
    test = ["the cat sat.", "dogs bark", "new text", "THE CAT SAT."]
    assert leaked(train, test) == 3
    assert leaked(train, ["nothing shared"]) == 0


def test_accepted_rows_keep_only_accepted_text_and_label() -> None:
    chunks = [
        pd.DataFrame({"text": ["x", "y"], "label": ["a", "a"], "accepted": [True, False]}),
        pd.DataFrame({"text": ["z"], "label": ["b"], "accepted": [True]}),
    ]
    rows = accepted_rows(chunks, "t/zero_shot")
    assert rows.to_dict("list") == {"text": ["x", "z"], "label": ["a", "b"]}


@pytest.mark.parametrize(
    "chunks",
    [[], [pd.DataFrame({"text": ["x"], "label": ["a"], "accepted": [False]})]],
)
def test_no_accepted_rows_names_the_set_and_the_rejects(chunks: list[pd.DataFrame]) -> None:
    with pytest.raises(DataError, match=r"t/few_shot: no accepted .* \(reject_reason\)"):
        accepted_rows(chunks, "t/few_shot")


def _test_split(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"text": texts, "label": ["a"] * len(texts)})


def test_split_for_training_carves_and_warns_of_leakage() -> None:
    training = TrainingConfig(validation_fraction=0.2, min_validation_per_label=2)
    data = _frame(10)
    splits = split_for_training(
        data, _test_split(["REAL a 0", "fresh"]), LABELS, training, 3, "t/real/seed 3"
    )
    assert (len(splits.train), len(splits.validation), splits.leaked) == (24, 6, 1)
    assert splits.data is data and splits.notes == ()
    (warning,) = splits.warnings
    assert warning.startswith("t/real/seed 3: 1 of 2 test texts also occur")
    expected = carve_validation(data, 0.2, 3, 2)
    assert splits.train.equals(expected[0]) and splits.validation.equals(expected[1])


def test_split_for_training_notes_a_validation_split_it_could_not_carve() -> None:
    training = TrainingConfig(validation_fraction=0.2, min_validation_per_label=5)
    splits = split_for_training(_frame(10), _test_split(["fresh"]), LABELS, training, 0, "t/x")
    assert splits.validation.empty and splits.warnings == ()
    (note,) = splits.notes
    assert "fewer than 5 rows per label at validation_fraction 0.20" in note
    off = training.model_copy(update={"validation_fraction": 0.0})
    assert split_for_training(_frame(10), _test_split(["f"]), LABELS, off, 0, "t").notes == ()


def test_split_for_training_refuses_a_bad_set_before_carving() -> None:
    one_class = pd.DataFrame({"text": ["x", "y"], "label": ["a", "a"]})
    with pytest.raises(DataError, match="t/real: the training set has a single class"):
        split_for_training(one_class, _test_split(["z"]), LABELS, TrainingConfig(), 0, "t/real")


def test_labelled_maps_labels_to_their_position() -> None:
    texts = labelled(pd.DataFrame({"text": ["x", "y"], "label": ["c", "a"]}), LABELS)
    assert (list(texts.texts), list(texts.labels)) == (["x", "y"], [2, 0])
