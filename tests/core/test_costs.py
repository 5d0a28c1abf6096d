"""Costs: per-reply dollars, token counting and the up-front estimate, checked by hand."""

from __future__ import annotations

import asyncio
import copy
import random
from typing import Any

import pytest
import yaml

from llmsynth_core.config import ExperimentConfig, LLMConfig, parse_experiment, preset_path
from llmsynth_core.costs import (
    approx_tokens,
    estimate,
    request_cost,
    request_tokens,
    requests_per_label,
)
from llmsynth_core.errors import ConfigError
from llmsynth_core.generation import generate_label
from llmsynth_core.llm_types import ChatMessage, LLMRequest, LLMResponse
from llmsynth_core.prompts import PromptContext
from llmsynth_core.taskspec import TaskSpec, parse_task_spec

# Templates of known length, one style and one length, so prompts do not vary by request:
# every rendered chat message is 40 characters (10 tokens, 14 with framing).
FORTY = "y" * 37

# Replies drawn from 200 made-up words: distinct and never near duplicates of each other.
WORDS = [f"word{i}" for i in range(200)]


def _spec() -> TaskSpec:
    return parse_task_spec(
        {
            "id": "toy",
            "name": "Toy",
            "description": "A task with prompts of known length.",
            "domain": "toy text",
            "subjectivity": 1,
            "labels": [
                {"name": "pos", "description": "d"},
                {"name": "neg", "description": "d"},
            ],
            "data": {"train": "toy/train.parquet", "test": "toy/test.parquet"},
            "prompts": {
                "version": "1",
                "styles": ["plain"],
                "lengths": ["short"],
                "chat": {
                    "context": "x" * 40,
                    "generation": "{label}" + FORTY,
                    "diversity": "{label}" + FORTY,
                    "few_shot": "{label}:{examples}",
                },
                "completion": {"zero_shot": "Write {label}:", "few_shot": "{examples}"},
            },
        },
        "inline",
    )


def _config(**sections: dict[str, Any]) -> ExperimentConfig:
    raw: dict[str, Any] = {
        "name": "toy",
        "tasks": ["toy"],
        "llm": {"endpoint": "http://127.0.0.1:9/v1", "model": "m", "max_tokens": 8},
        "generation": {"per_label": 5, "conversation_length": 3, "history_turns": 2},
    }
    for section, values in sections.items():
        raw[section] = {**raw.get(section, {}), **values}
    return ExperimentConfig.model_validate(raw)


def test_request_cost_is_tokens_times_price_per_million() -> None:
    llm = LLMConfig(input_price_per_mtok=0.5, output_price_per_mtok=1.5)
    assert request_cost(1_000_000, 500_000, llm) == pytest.approx(0.5 + 0.75)
    assert request_cost(2_000, 100, llm) == pytest.approx(0.001 + 0.00015)
    assert request_cost(2_000, 100, LLMConfig()) == 0.0


def test_tokens_are_characters_over_four_plus_chat_framing() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("abcd") == 1
    assert approx_tokens("abcdefghi") == 3
    chat = LLMRequest(
        style="chat",
        model="m",
        messages=(
            ChatMessage(role="system", content="12345678"),
            ChatMessage(role="user", content="abc"),
        ),
    )
    assert request_tokens(chat) == (2 + 4) + (1 + 4)
    assert request_tokens(LLMRequest(style="completion", model="m", prompt="x" * 10)) == 3


def test_requests_per_label_expects_some_rejects_within_the_attempt_budget() -> None:
    generation = _config().generation
    assert requests_per_label(generation) == 6  # ceil(5 * 1.2)
    assert requests_per_label(generation, attempts=10) == 15  # capped at 5 * 3.0


def test_zero_shot_chat_counts_the_growing_conversation() -> None:
    config = _config(
        generation={"modes": ["zero_shot"]},
        llm={"input_price_per_mtok": 2.0, "output_price_per_mtok": 10.0},
    )
    (line,) = estimate(config, [_spec()]).lines
    # Turn 0: system + user = 14 + 14. Each earlier turn adds its user message (14) and a
    # reply at max_tokens (32 characters: 8 + 4). Turns 0, 1, 2 average (28 + 54 + 80) / 3.
    assert (line.task, line.mode, line.labels) == ("toy", "zero_shot", 2)
    assert line.requests == 2 * 6
    assert line.input_tokens == 2 * 6 * 54
    assert line.output_tokens == 2 * 6 * 8
    assert line.usd == pytest.approx((648 * 2.0 + 96 * 10.0) / 1e6)


def test_few_shot_chat_counts_examples_at_their_clipped_length() -> None:
    config = _config(generation={"modes": ["few_shot"], "few_shot_k": 2, "few_shot_max_chars": 50})
    (line,) = estimate(config, [_spec()]).lines
    # "pos:" + "Example 1: " + 50 chars + newline + "Example 2: " + 50 chars = 127 characters:
    # 32 tokens + 4 of framing, after the 14-token system message.
    assert line.input_tokens == 2 * 6 * (14 + 36)


def test_completion_prompts_have_no_chat_framing() -> None:
    config = _config(llm={"prompt_style": "completion"}, generation={"modes": ["zero_shot"]})
    (line,) = estimate(config, [_spec()]).lines
    # "Style: plain\nLength: short\nWrite pos:" is 37 characters: 10 tokens, no framing.
    assert line.input_tokens == 2 * 6 * 10


def test_totals_sum_the_lines_over_tasks_and_modes() -> None:
    config = _config(llm={"input_price_per_mtok": 1.0, "output_price_per_mtok": 1.0})
    result = estimate(config, [_spec(), _spec()])
    assert [line.mode for line in result.lines] == ["zero_shot", "few_shot"] * 2
    assert result.requests == 4 * 12
    assert result.output_tokens == 4 * 12 * 8
    assert result.usd == pytest.approx((result.input_tokens + result.output_tokens) / 1e6)


def test_replies_are_counted_at_the_tasks_own_max_tokens() -> None:
    spec = _spec()
    own = spec.model_copy(update={"prompts": spec.prompts.model_copy(update={"max_tokens": 50})})
    result = estimate(_config(generation={"modes": ["zero_shot"]}), [spec, own])
    assert [line.output_tokens for line in result.lines] == [12 * 8, 12 * 50]


def test_replicates_multiply_requests_tokens_and_cost() -> None:
    prices = {"input_price_per_mtok": 1.0, "output_price_per_mtok": 1.0}
    one = estimate(_config(llm=prices), [_spec()])
    three = estimate(_config(llm=prices, generation={"replicates": 3}), [_spec()])
    assert three.requests == 3 * one.requests
    assert three.input_tokens == 3 * one.input_tokens
    assert three.usd == pytest.approx(3 * one.usd)


def test_hours_follow_the_slowest_limit() -> None:
    spec = _spec()
    # 12 requests of 3 s each, 2 in flight per chunk, 2 chunks (labels) at once: 9 s.
    free = _config(generation={"modes": ["zero_shot"]}, runtime={"concurrency": 2})
    result = estimate(free, [spec], latency_s=3.0)
    assert (result.pace, result.hours) == ("concurrency", pytest.approx(9 / 3600))
    # 6 requests a minute: 2 minutes.
    limited = _config(generation={"modes": ["zero_shot"]}, runtime={"requests_per_minute": 6})
    result = estimate(limited, [spec], latency_s=3.0)
    assert (result.pace, result.hours) == ("requests_per_minute", pytest.approx(2 / 60))
    # 744 tokens (648 in, 96 out) at 124 a minute: 6 minutes.
    tokens = _config(
        generation={"modes": ["zero_shot"]},
        runtime={"requests_per_minute": 6, "tokens_per_minute": 124},
    )
    result = estimate(tokens, [spec], latency_s=3.0)
    assert (result.pace, result.hours) == ("tokens_per_minute", pytest.approx(6 / 60))


def test_estimate_rejects_impossible_assumptions() -> None:
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        estimate(_config(), [_spec()], attempts=0.5)
    with pytest.raises(ValueError, match="latency_s must be > 0"):
        estimate(_config(), [_spec()], latency_s=0)


def test_prices_change_no_semantic_hash() -> None:
    raw = yaml.safe_load(preset_path("paper").read_text(encoding="utf-8"))
    repriced = copy.deepcopy(raw)
    repriced["llm"]["input_price_per_mtok"] = 99.0
    repriced["llm"]["output_price_per_mtok"] = 42.0
    base, changed = parse_experiment(raw, "paper"), parse_experiment(repriced, "paper")
    assert changed.llm != base.llm
    assert changed.semantic_hash() == base.semantic_hash()
    assert "input_price_per_mtok" not in changed.semantic_dict()["llm"]


def test_negative_price_names_the_field() -> None:
    raw = {"name": "t", "tasks": ["toy"], "llm": {"output_price_per_mtok": -1.0}}
    with pytest.raises(ConfigError, match=r"llm\.output_price_per_mtok: .*greater than or equal"):
        parse_experiment(raw, "inline")


def test_generated_rows_carry_their_cost() -> None:
    config = _config(llm={"input_price_per_mtok": 3.0, "output_price_per_mtok": 15.0})
    ctx = PromptContext(_spec(), config.llm, config.generation, "zero_shot", "pos")

    async def call(request: LLMRequest) -> LLMResponse:
        return LLMResponse(
            text=" ".join(random.Random(request.seed).sample(WORDS, 8)) + ".",
            finish_reason="stop",
            prompt_tokens=1_000,
            completion_tokens=200,
        )

    rows = asyncio.run(generate_label(ctx, call, 1, "fake"))
    assert len(rows) == 5
    assert all(row["cost_usd"] == pytest.approx(0.003 + 0.003) for row in rows)
