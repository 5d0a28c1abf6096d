"""Experiment configs: presets, errors naming the field, semantic hashing, immutability."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from llmsynth_core.config import (
    ExperimentConfig,
    TrainingConfig,
    list_presets,
    load_experiment,
    parse_experiment,
    preset_path,
)
from llmsynth_core.errors import ConfigError
from llmsynth_core.registry import load_registry, select_tasks
from llmsynth_core.training_job import training_sources


@pytest.fixture(scope="module")
def registry() -> dict[str, Any]:
    return load_registry()


@pytest.fixture(scope="module")
def quick_raw() -> dict[str, Any]:
    raw = yaml.safe_load(preset_path("quick").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_presets_quick_and_paper_exist_and_load() -> None:
    assert {"quick", "paper"} <= set(list_presets())
    for name in ("quick", "paper"):
        config = load_experiment(preset_path(name))
        assert isinstance(config, ExperimentConfig)
        assert config.name == name


def test_quick_spans_objective_and_subjective_tasks_in_both_modes(registry: dict[str, Any]) -> None:
    config = load_experiment(preset_path("quick"))
    levels = [spec.subjectivity for spec in select_tasks(registry, config.tasks)]
    assert len(config.tasks) >= 2
    assert max(levels) - min(levels) >= 3
    assert set(config.generation.modes) == {"zero_shot", "few_shot"}
    assert [source.name for source in training_sources(config)] == [
        "real",
        *config.generation.modes,
    ]


def test_paper_is_the_studys_full_setting(registry: dict[str, Any]) -> None:
    config = load_experiment(preset_path("paper"))
    assert sorted(config.tasks) == sorted(t for t, s in registry.items() if s.variant_of is None)
    assert len(config.tasks) == 10
    assert config.generation.per_label == 3000
    assert config.training.models == ["bert-base-uncased", "roberta-base"]
    assert set(config.generation.modes) == {"zero_shot", "few_shot"}


def test_presets_and_default_train_three_seeds_and_one_synthetic_set() -> None:
    # One seed gives no spread over training randomness; three is the least that does.
    assert TrainingConfig().seeds == [42, 43, 44]
    for name in ("quick", "paper", "study"):
        config = load_experiment(preset_path(name))
        assert config.training.seeds == [42, 43, 44], name
        assert config.generation.replicates == 1, name


def test_study_covers_the_ten_tasks_with_reddit_as_its_ekman_variant(
    registry: dict[str, Any],
) -> None:
    study, paper = (load_experiment(preset_path(name)) for name in ("study", "paper"))
    variants = {registry[t].variant_of: t for t in study.tasks if registry[t].variant_of}
    assert variants == {"reddit_emotions": "reddit_emotions_ekman"}
    assert sorted(registry[t].variant_of or t for t in study.tasks) == sorted(paper.tasks)
    assert study.llm.is_embedded and study.analysis.annotator_panel == 0
    # The real curve runs from 2 per label to at least twice the synthetic quota.
    curve = study.training.real_curve
    assert curve[0] <= 2 and curve[-1] >= 2 * study.generation.per_label
    assert {m.mode for m in study.training.mixtures} == {"few_shot"}


def test_replicates_must_be_at_least_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\ntasks: [ag_news]\ngeneration:\n  replicates: 0\n")
    with pytest.raises(ConfigError, match=r"generation.replicates: .*greater than or equal to 1"):
        load_experiment(path)


def test_unknown_preset_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as info:
        preset_path("quik")
    assert "'quik'" in str(info.value) and "quick" in str(info.value)


def test_typo_key_names_the_dotted_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: t\ntasks: [ag_news]\ngeneration: {per_lable: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "generation.per_lable" in message
    assert "unknown key" in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("snippet", "field", "bad"),
    [
        ("llm: {temperature: 5}", "llm.temperature", "5"),
        ("generation: {per_label: 0}", "generation.per_label", "0"),
        ("generation: {modes: [zero_shot, one_shot]}", "generation.modes.1", "one_shot"),
        ("generation: {on_truncated: keep}", "generation.on_truncated", "keep"),
        ("training: {warmup_ratio: 1.5}", "training.warmup_ratio", "1.5"),
        ("runtime: {concurrency: 0}", "runtime.concurrency", "0"),
    ],
)
def test_bad_value_names_the_field_and_value(
    tmp_path: Path, snippet: str, field: str, bad: str
) -> None:
    path = _write(tmp_path, f"name: t\ntasks: [ag_news]\n{snippet}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    line = next(line for line in str(info.value).splitlines() if field in line)
    assert bad in line


def test_repeated_task_or_mode_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"tasks must be unique.*'ag_news'"):
        parse_experiment({"name": "t", "tasks": ["ag_news", "ag_news"]}, "inline")
    with pytest.raises(ConfigError, match=r"generation\.modes"):
        parse_experiment(
            {"name": "t", "tasks": ["ag_news"], "generation": {"modes": ["few_shot"] * 2}},
            "inline",
        )


def test_missing_required_key_says_so() -> None:
    with pytest.raises(ConfigError, match="tasks: required key is missing"):
        parse_experiment({"name": "t"}, "inline")


def test_semantic_hash_ignores_runtime_and_description(quick_raw: dict[str, Any]) -> None:
    base = parse_experiment(quick_raw, "quick")

    operational = copy.deepcopy(quick_raw)
    operational["runtime"] = {"concurrency": 17, "request_timeout_s": 5.0, "embedded_port": 9999}
    operational["description"] = "the same experiment, described differently"
    same = parse_experiment(operational, "quick")

    assert same.runtime != base.runtime
    assert same.semantic_hash() == base.semantic_hash()
    assert "runtime" not in base.semantic_dict()


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("llm", "temperature", 0.3),
        ("generation", "per_label", 25),
        ("generation", "replicates", 2),
        ("training", "seeds", [7]),
        ("training", "validation_fraction", 0.2),
        ("training", "mixtures", [{"mode": "few_shot", "real_per_label": 5}]),
        ("training", "real_curve", [2, 4]),
        ("evaluation", "max_test_examples", 801),
    ],
)
def test_semantic_hash_changes_with_semantic_settings(
    quick_raw: dict[str, Any], section: str, key: str, value: Any
) -> None:
    base = parse_experiment(quick_raw, "quick")
    changed_raw = copy.deepcopy(quick_raw)
    changed_raw.setdefault(section, {})[key] = value
    changed = parse_experiment(changed_raw, "quick")
    assert changed.semantic_hash() != base.semantic_hash()
    # And it is a pure function of the values, not of object identity.
    assert parse_experiment(copy.deepcopy(changed_raw), "x").semantic_hash() == (
        changed.semantic_hash()
    )


@pytest.mark.parametrize(
    ("curve", "fix"), [([4, 2], "[2, 4]"), ([2, 2, 8], "[2, 8]"), ([0, 3], "[3]")]
)
def test_a_real_curve_must_ascend_from_one_and_the_error_says_how(
    curve: list[int], fix: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_experiment(
            {"name": "t", "tasks": ["ag_news"], "training": {"real_curve": curve}}, "x"
        )
    message = str(info.value)
    assert "training.real_curve" in message and f"write it as {fix}" in message


def test_no_real_curve_dumps_as_before_the_field_existed() -> None:
    # The config hash (run directory names, manifests) of a config without a curve stays put.
    assert "real_curve" not in TrainingConfig().model_dump()
    assert TrainingConfig(real_curve=[2]).model_dump()["real_curve"] == [2]


def test_batch_settings_and_the_batch_price_move_no_hash(quick_raw: dict[str, Any]) -> None:
    base = parse_experiment(quick_raw, "quick")
    changed_raw = copy.deepcopy(quick_raw)
    changed_raw["runtime"] = {"batch": True, "batch_min_requests": 7, "batch_poll_s": 1.0}
    changed_raw.setdefault("llm", {})["batch_price_factor"] = 0.4
    changed = parse_experiment(changed_raw, "quick")
    assert changed.semantic_hash() == base.semantic_hash()
    assert changed.llm.reply_dict() == base.llm.reply_dict()
    assert changed.llm.prices()["batch_price_factor"] == 0.4
    # At its default the factor dumps as if it did not exist: keys that hash a whole llm
    # block (an annotator_llm inside AnalysisConfig) stay where they were.
    assert "batch_price_factor" not in base.llm.model_dump()
    assert changed.llm.model_dump()["batch_price_factor"] == 0.4


def test_batch_polls_may_not_shrink_and_the_error_says_how() -> None:
    with pytest.raises(ConfigError, match="raise batch_poll_max_s"):
        parse_experiment(
            {
                "name": "t",
                "tasks": ["ag_news"],
                "runtime": {"batch_poll_s": 60, "batch_poll_max_s": 10},
            },
            "x",
        )


def test_configs_are_frozen() -> None:
    config = load_experiment(preset_path("quick"))
    with pytest.raises(ValidationError):
        config.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.llm.temperature = 0.1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.generation.per_label = 1  # type: ignore[misc]
    assert config.llm.temperature == 0.9
