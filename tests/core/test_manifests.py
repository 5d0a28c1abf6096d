"""Stage manifests: what each records, from tiny frames and configs."""

from __future__ import annotations

import pandas as pd

from llmsynth_core.config import AnalysisConfig, EvaluationConfig, ExperimentConfig
from llmsynth_core.manifests import (
    annotation_manifest,
    diversity_manifest,
    generation_manifest,
    snapshot_manifest,
)
from llmsynth_core.registry import load_registry

SPEC = load_registry()["tweet_irony"]


def _config() -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "m",
            "tasks": ["tweet_irony"],
            "llm": {"model": "m", "input_price_per_mtok": 1.0, "output_price_per_mtok": 2.0},
        }
    )


def test_generation_manifest_sums_cost_and_tokens_and_counts_drops() -> None:
    frame = pd.DataFrame(
        {
            "accepted": [True, False, False, True],
            "reject_reason": [None, "empty", "duplicate", None],
            "cost_usd": [0.25, 0.5, 0.0, 0.25],
            "prompt_tokens": [10, 10, 10, 10],
            "completion_tokens": [1, 2, 3, 4],
        }
    )
    config = _config()
    manifest = generation_manifest(SPEC, config, "zero_shot", "irony", frame)
    assert manifest["stage"] == "generation"
    assert (manifest["task"], manifest["mode"], manifest["label"]) == (
        "tweet_irony",
        "zero_shot",
        "irony",
    )
    assert manifest["cost_usd"] == 1.0
    assert manifest["tokens"] == 50
    assert (manifest["accepted"], manifest["requested"]) == (2, 4)
    assert manifest["drops"] == {"empty": 1, "duplicate": 1}
    assert manifest["prices_per_mtok"] == {
        "batch_price_factor": 0.5,
        "input_price_per_mtok": 1.0,
        "output_price_per_mtok": 2.0,
    }
    assert manifest["config_hash"] == config.semantic_hash()


def test_annotation_manifest_names_the_panel_and_says_it_is_an_estimate() -> None:
    llm = _config().llm
    counts = {"instances": 5, "dropped": 1, "unparsable": 2}
    manifest = annotation_manifest(SPEC, llm, 3, counts, 0.125)
    assert manifest["stage"] == "annotation"
    assert (manifest["model"], manifest["k"], manifest["cost_usd"]) == ("m", 3, 0.125)
    assert {k: manifest[k] for k in counts} == counts
    assert "not human agreement" in manifest["note"] and "k=3" in manifest["note"]


def test_diversity_manifest_records_the_size_of_each_source() -> None:
    analysis = AnalysisConfig()
    manifest = diversity_manifest(SPEC, analysis, {"real": ["a", "b"], "zero_shot": ["c"]})
    assert manifest["sizes"] == {"real": 2, "zero_shot": 1}
    assert manifest["encoder"] == analysis.embedding_model


def test_snapshot_manifest_says_where_row_ids_came_from() -> None:
    evaluation = EvaluationConfig(max_test_examples=10)
    test = snapshot_manifest(SPEC, "test", "/d/test.csv", "ab", 30, True, evaluation)
    train = snapshot_manifest(SPEC, "train", "/d/train.csv", "cd", 40, False, None)
    assert test["row_ids"] == "the data's id column"
    assert test["evaluation"]["max_test_examples"] == 10
    assert train["row_ids"] == "hash of text and label"
    assert (train["split"], train["source_rows"], train["evaluation"]) == ("train", 40, None)
