"""The content address of a training run: real data is keyed by its per-label counts."""

from __future__ import annotations

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import load_registry
from tasks.artifacts import ArtifactRef
from tasks.snapshot import DataSnapshot
from tasks.train import metrics_key

SPEC = load_registry()["tweet_irony"]
MODEL = "embedded:all-MiniLM-L6-v2"
FILLED = {"irony": 24, "non_irony": 24}


def _config(model: str = "m", size_matching: str = "equal") -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "k",
            "tasks": ["tweet_irony"],
            "llm": {"model": model},
            "training": {"size_matching": size_matching},
        }
    )


def _refs(digit: str) -> list[ArtifactRef]:
    return [
        ArtifactRef(
            uri=f"/s/generations/{digit}{label}/data.parquet",
            schema_name="generations",
            rows=30,
            sha256=digit * 64,
        )
        for label in ("irony", "non_irony")
    ]


def _snapshot() -> DataSnapshot:
    def ref(split: str) -> ArtifactRef:
        return ArtifactRef(
            uri=f"/s/snapshot/{split}/data.parquet", schema_name="snapshot", rows=9, sha256="c" * 64
        )

    return DataSnapshot(task="tweet_irony", train=ref("train"), test=ref("test"))


SNAPSHOT = _snapshot()


def test_real_models_follow_their_counts_not_the_generation_artifacts() -> None:
    # A new generator model that fills its quotas: new artifacts, same counts.
    before = metrics_key(
        SPEC, _config("old"), MODEL, "real", _refs("a"), 42, SNAPSHOT, counts=FILLED
    )
    after = metrics_key(
        SPEC, _config("new"), MODEL, "real", _refs("b"), 42, SNAPSHOT, counts=FILLED
    )
    assert after == before
    short = {"irony": 24, "non_irony": 20}
    assert (
        metrics_key(SPEC, _config("new"), MODEL, "real", _refs("b"), 42, SNAPSHOT, counts=short)
        != before
    )


def test_synthetic_models_follow_their_artifacts_and_counts() -> None:
    base = metrics_key(SPEC, _config(), MODEL, "zero_shot", _refs("a"), 42, SNAPSHOT, counts=FILLED)
    assert (
        metrics_key(SPEC, _config(), MODEL, "zero_shot", _refs("b"), 42, SNAPSHOT, counts=FILLED)
        != base
    )
    short = {"irony": 24, "non_irony": 20}
    assert (
        metrics_key(SPEC, _config(), MODEL, "zero_shot", _refs("a"), 42, SNAPSHOT, counts=short)
        != base
    )


def test_the_size_policy_acts_only_through_the_counts() -> None:
    # Same rows under either policy (every quota filled): the same model.
    equal = metrics_key(SPEC, _config(), MODEL, "real", [], 42, SNAPSHOT, counts=FILLED)
    assert (
        metrics_key(
            SPEC, _config(size_matching="none"), MODEL, "real", [], 42, SNAPSHOT, counts=FILLED
        )
        == equal
    )
