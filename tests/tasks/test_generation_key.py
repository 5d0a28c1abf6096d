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


def test_replicate_zero_keeps_the_key_from_before_replicates() -> None:
    spec = load_registry()["tweet_irony"]
    # Keys printed by the code before generation.replicates existed (llm.seed 0 and 1): the
    # first synthetic set of a run made then is reused, not regenerated.
    before = {0: "76f6d7b6b22da80e", 1: "a69a7b7974f16cf1"}
    three = _config().model_copy(
        update={"generation": _config().generation.model_copy(update={"replicates": 3})}
    )
    assert generation_key(spec, _config(), "zero_shot", "irony") == before[0]
    assert generation_key(spec, three.for_replicate(0), "zero_shot", "irony") == before[0]
    # Replicate r is generated with llm.seed + r: the same set as a run with that seed.
    assert generation_key(spec, three.for_replicate(1), "zero_shot", "irony") == before[1]
    assert three.for_replicate(2).llm.seed == 2
