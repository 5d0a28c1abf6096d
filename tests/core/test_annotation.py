"""The LLM annotator panel's pure parts: requests, label parsing, estimated agreement."""

from __future__ import annotations

import pandas as pd
import pytest

from llmsynth_core.annotation import (
    annotation_request,
    annotation_sample,
    estimated_agreement,
    panel_frame,
    parse_label,
    sample_columns,
)
from llmsynth_core.config import LLMConfig
from llmsynth_core.registry import load_registry

LABELS = ["positive", "negative", "neutral"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("negative", "negative"),
        ("  Neutral.\n", "neutral"),
        ('"positive"', "positive"),
        ("The label is negative, not positive.", "negative"),
        ("I think it's positive overall", "positive"),
        ("nonnegative", None),
        ("no idea", None),
        ("", None),
    ],
)
def test_parse_label(reply: str, expected: str | None) -> None:
    assert parse_label(reply, LABELS) == expected


def test_parse_label_prefers_the_longer_label_at_the_same_position() -> None:
    assert parse_label("not sarcastic at all", ["not", "not sarcastic"]) == "not sarcastic"


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        (["a", "a", "a"], 1.0),
        (["a", "b", "a"], 2 / 3),
        (["a", "b", "c", "d"], 0.25),
        # An unparsable reply is a call that did not agree: divide by the k calls made.
        (["a", None, "a"], 2 / 3),
        (["a", "a", None, None], 0.5),
        # Fewer than half of the calls parsed: too little to estimate from, dropped.
        (["a", None, None], None),
        (["a", None, None, None, None], None),
        ([None, None], None),
        ([], None),
    ],
)
def test_estimated_agreement(annotations: list[str | None], expected: float | None) -> None:
    result = estimated_agreement(annotations)
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_each_annotator_and_instance_gets_its_own_seed_and_the_text() -> None:
    spec = load_registry([])["ag_news"]
    requests = [
        annotation_request(spec, LLMConfig(), f"text {i}", i, j) for i in range(3) for j in range(4)
    ]
    assert len({r.seed for r in requests}) == len(requests)
    again = annotation_request(spec, LLMConfig(), "text 1", 1, 2)
    assert again.seed == requests[1 * 4 + 2].seed
    prompt = requests[0].messages[-1].content
    assert "text 0" in prompt
    assert all(name in prompt for name in spec.label_names)


def test_completion_style_asks_for_a_label_line() -> None:
    spec = load_registry([])["imdb"]
    request = annotation_request(spec, LLMConfig(prompt_style="completion"), "fine film", 0, 0)
    assert request.style == "completion"
    assert request.prompt is not None and request.prompt.endswith("Label:")
    assert request.stop == ("\n",)


def _label_sorted_test(per_label: int = 200) -> pd.DataFrame:
    """Like an evaluation subsample: grouped by label, as stratified_subsample returns it."""
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    return pd.DataFrame(
        {
            "text": [f"{label} text {i}" for label in labels for i in range(per_label)],
            "label": [label for label in labels for _ in range(per_label)],
        }
    )


def test_annotation_sample_keeps_label_shares_of_a_label_sorted_test_set() -> None:
    test = _label_sorted_test()
    sample = annotation_sample(test, 200, seed=7)
    assert sample["label"].value_counts().to_dict() == {
        "World": 50,
        "Sports": 50,
        "Business": 50,
        "Sci/Tech": 50,
    }
    # Not the first 50 of each label: a seeded draw, the same for the same seed.
    first_fifty = {row for start in (0, 200, 400, 600) for row in range(start, start + 50)}
    assert set(sample["row"]) != first_fifty
    assert annotation_sample(test, 200, seed=7).equals(sample)
    assert not annotation_sample(test, 200, seed=8)["row"].equals(sample["row"])


def test_annotation_sample_rows_are_test_set_positions() -> None:
    test = _label_sorted_test(30).sample(frac=1.0, random_state=1)  # any order, any index
    sample = annotation_sample(test, 20, seed=3)
    assert sample["row"].is_monotonic_increasing and sample["row"].is_unique
    for row, text, label in zip(sample["row"], sample["text"], sample["label"], strict=True):
        assert test.iloc[row]["text"] == text and test.iloc[row]["label"] == label


def test_annotation_sample_of_a_small_test_set_is_all_of_it() -> None:
    test = _label_sorted_test(5)
    sample = annotation_sample(test, 200, seed=0)
    assert sample["row"].tolist() == list(range(20))
    assert sample["text"].tolist() == test["text"].tolist()


def test_panel_frame_counts_unparsable_replies_and_drops_thin_instances() -> None:
    replies = [
        ["World", "World", "World"],
        ["World", "no idea", "Sports."],
        ["World", "??", "??"],
    ]
    frame, counts = panel_frame(
        "ag_news", [4, 9, 17], ["a", "b", "c"], replies, ["World", "Sports"], "m"
    )
    assert frame["row"].tolist() == [4, 9, 17]
    assert frame["annotations"].tolist() == [
        ["World"] * 3,
        ["World", None, "Sports"],
        ["World", None, None],
    ]
    estimates = frame["agreement_estimate"].tolist()
    assert estimates[0] == 1.0 and estimates[1] == pytest.approx(1 / 3)
    assert estimates[2] is None or pd.isna(estimates[2])
    assert counts == {"instances": 3, "dropped": 1, "unparsable": 3}
    assert set(frame["model"]) == {"m"}


def test_sample_columns_are_plain_lists_in_sample_order() -> None:
    sample = pd.DataFrame({"row": [3, 7], "row_id": ["r3", "r7"], "text": ["x", "y"]})
    rows, row_ids, texts = sample_columns(sample)
    assert (rows, row_ids, texts) == ([3, 7], ["r3", "r7"], ["x", "y"])
    assert all(type(row) is int for row in rows)
