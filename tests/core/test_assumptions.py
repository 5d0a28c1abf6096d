"""The report's list of settings the study does not report, with the values a run used."""

from __future__ import annotations

from llmsynth_core.assumptions import ASSUMED, assumed_settings
from llmsynth_core.config import ExperimentConfig, load_experiment, preset_path
from llmsynth_core.registry import load_registry, select_tasks

# The settings issue 11 names, by the config key each row must cite.
REQUIRED_KEYS = (
    "training.epochs",
    "training.learning_rate",
    "training.batch_size",
    "training.max_length",
    "training.validation_fraction",
    "training.early_stopping_patience",
    "llm.temperature",
    "generation.diversity_every",
    "generation.few_shot_k",
    "generation.conversation_length",
    "generation.history_turns",
    "analysis.embedding_model",
)


def _rows(config: ExperimentConfig) -> dict[str, dict[str, str]]:
    specs = select_tasks(load_registry(), config.tasks)
    return {row["setting"]: row for row in assumed_settings(config, specs)}


def _row(rows: dict[str, dict[str, str]], key: str) -> dict[str, str]:
    (match,) = [row for setting, row in rows.items() if key in setting]
    return match


def test_every_unreported_setting_is_listed_with_the_value_used() -> None:
    paper = load_experiment(preset_path("paper"))
    rows = _rows(paper)
    for key in REQUIRED_KEYS:
        assert _row(rows, key)["status"].startswith("assumed"), key
    training, generation = paper.training, paper.generation
    assert _row(rows, "training.epochs")["value"] == str(training.epochs)
    assert _row(rows, "training.learning_rate")["value"] == f"{training.learning_rate:g}"
    assert _row(rows, "generation.few_shot_k")["value"] == str(generation.few_shot_k)
    assert _row(rows, "llm.temperature")["status"] == ASSUMED
    # max_tokens per task: the limit actually sent, and where it comes from.
    assert rows["max_tokens per reply: imdb"]["value"] == "448 (the spec's prompts.max_tokens)"
    assert rows["max_tokens per reply: ag_news"]["value"] == "256 (llm.max_tokens)"
    assert sum(setting.startswith("max_tokens") for setting in rows) == len(paper.tasks)
    # BERT-base and RoBERTa-base are the study's own classifiers: not an assumption.
    assert not any("training.models" in setting for setting in rows)


def test_the_rows_follow_the_config() -> None:
    quick = load_experiment(preset_path("quick"))
    changed = quick.model_copy(
        update={
            "training": quick.training.model_copy(
                update={"epochs": 7, "early_stopping_patience": None, "validation_fraction": 0}
            )
        }
    )
    rows = _rows(changed)
    assert _row(rows, "training.epochs")["value"] == "7"
    assert _row(rows, "training.early_stopping_patience")["value"] == "off: all epochs"
    assert _row(rows, "training.validation_fraction")["value"] == "none (no early stopping)"
    assert set(s for s in rows if s.startswith("max_tokens")) == {
        "max_tokens per reply: ag_news",
        "max_tokens per reply: tweet_irony",
    }
    assert "differs from the study" in _row(rows, "training.models")["status"]


def test_a_variant_task_is_named_as_one_and_a_study_task_is_not() -> None:
    study = _rows(load_experiment(preset_path("study")))
    row = study["task reddit_emotions_ekman"]
    assert row["status"] == "differs from the study: a registered variant of reddit_emotions"
    assert "7 labels" in row["value"] and "neutral" in row["value"]
    assert not [name for name in study if name.startswith("task ") and "ekman" not in name]
    assert not [
        name for name in _rows(load_experiment(preset_path("paper"))) if name.startswith("task ")
    ]
