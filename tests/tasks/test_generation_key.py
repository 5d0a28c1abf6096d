"""The content address of a label's generations: semantic inputs only."""

from __future__ import annotations

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import load_registry
from tasks.generate import generation_key


def _config(**llm: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"name": "k", "tasks": ["tweet_irony"], "llm": {"model": "m", **llm}}
    )


def test_prices_endpoint_and_key_name_do_not_move_artifacts() -> None:
    spec = load_registry()["tweet_irony"]
    base = generation_key(spec, _config(), "zero_shot", "irony")
    moved = _config(
        endpoint="http://127.0.0.1:9/v1",
        api_key_env="OTHER_KEY",
        input_price_per_mtok=3.0,
        output_price_per_mtok=15.0,
    )
    assert generation_key(spec, moved, "zero_shot", "irony") == base
    assert generation_key(spec, _config(temperature=0.5), "zero_shot", "irony") != base


def test_only_few_shot_keys_follow_the_training_data() -> None:
    spec = load_registry()["tweet_irony"]
    config = _config()
    zero = generation_key(spec, config, "zero_shot", "irony", "a" * 64)
    assert generation_key(spec, config, "zero_shot", "irony", "b" * 64) == zero
    assert generation_key(spec, config, "zero_shot", "irony") == zero
    few = generation_key(spec, config, "few_shot", "irony", "a" * 64)
    assert generation_key(spec, config, "few_shot", "irony", "b" * 64) != few
