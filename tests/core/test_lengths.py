"""Reply limits per task, and length slots that fit them."""

from __future__ import annotations

import pytest

from llmsynth_core.config import LLMConfig, list_presets, load_experiment, preset_path
from llmsynth_core.lengths import (
    TOKENS_PER_WORD,
    WORDS_PER_SENTENCE,
    effective_max_tokens,
    length_overruns,
    words_asked,
)
from llmsynth_core.registry import load_registry
from llmsynth_core.taskspec import TaskSpec


def _with_max_tokens(spec: TaskSpec, max_tokens: int | None) -> TaskSpec:
    prompts = spec.prompts.model_copy(update={"max_tokens": max_tokens})
    return spec.model_copy(update={"prompts": prompts})


@pytest.mark.parametrize(
    ("slot", "words"),
    [
        ("about 300 words", 300),
        ("50-100 words", 100),
        ("between 20 and 35 words", 35),
        ("under 10 words", 10),
        ("about forty words", 40),
        ("about forty-five words", 45),
        ("two hundred words", 200),
        ("a few words", 5),
        ("one sentence", WORDS_PER_SENTENCE),
        ("two or three sentences", 3 * WORDS_PER_SENTENCE),
        ("a short paragraph", None),
        ("long", None),
    ],
)
def test_words_asked_takes_the_largest_count(slot: str, words: int | None) -> None:
    assert words_asked(slot) == words


def test_spec_max_tokens_overrides_the_llm_setting() -> None:
    spec = load_registry()["tweet_irony"]
    llm = LLMConfig(max_tokens=64)
    assert effective_max_tokens(spec, llm) == 64
    assert effective_max_tokens(_with_max_tokens(spec, 300), llm) == 300


def test_an_overlong_slot_names_the_task_the_slot_and_the_fix() -> None:
    spec = load_registry()["tweet_irony"]
    prompts = spec.prompts.model_copy(update={"lengths": ["about 100 words", "briefly"]})
    spec = spec.model_copy(update={"prompts": prompts})
    problems = length_overruns(spec, LLMConfig(max_tokens=64))
    assert problems == [
        "tweet_irony: length 'about 100 words' asks for up to 100 words, but max_tokens=64 "
        "allows about 45; shorten the slot or set prompts.max_tokens >= 140 in the spec",
        "tweet_irony: length 'briefly' names no count of words or sentences",
    ]
    fitting = spec.prompts.model_copy(update={"lengths": ["about 100 words"], "max_tokens": 140})
    assert (
        length_overruns(spec.model_copy(update={"prompts": fitting}), LLMConfig(max_tokens=64))
        == []
    )


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_builtin_length_slot_fits_its_max_tokens(preset: str) -> None:
    assert {"quick", "paper"} <= set(list_presets())
    llm = load_experiment(preset_path(preset)).llm
    problems = [p for spec in load_registry().values() for p in length_overruns(spec, llm)]
    assert problems == [], "\n".join(problems)
    # The check has teeth: the longest slot of all would not fit in a 40-token reply.
    longest = max(
        words_asked(slot) or 0 for spec in load_registry().values() for slot in spec.prompts.lengths
    )
    assert longest * TOKENS_PER_WORD > 40
