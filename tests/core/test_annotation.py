"""The LLM annotator panel's pure parts: requests, label parsing, estimated agreement."""

from __future__ import annotations

import pytest

from llmsynth_core.annotation import annotation_request, estimated_agreement, parse_label
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
        (["a", None, "a"], 1.0),
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
