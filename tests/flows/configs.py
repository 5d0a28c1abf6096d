"""A small experiment config for flow tests against the loopback fake server."""

from __future__ import annotations

from llmsynth_core.config import ExperimentConfig


def small_config(
    base_url: str,
    tasks: tuple[str, ...] = ("ag_news", "tweet_irony"),
    per_label: int = 3,
    max_test_examples: int = 24,
    max_steps: int = 3,
) -> ExperimentConfig:
    """Few requests, a few training steps, a small test subsample."""
    return ExperimentConfig.model_validate(
        {
            "name": "flow-test",
            "tasks": list(tasks),
            "llm": {"endpoint": base_url, "model": "fake-model", "max_tokens": 40},
            "generation": {"per_label": per_label, "few_shot_k": 2},
            "training": {
                "seeds": [42],
                "epochs": 1,
                "max_steps": max_steps,
                "batch_size": 4,
                "max_length": 32,
            },
            "evaluation": {"max_test_examples": max_test_examples},
            "analysis": {"min_instances_per_threshold": 2},
        }
    )
