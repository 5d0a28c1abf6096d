"""Artifact keys of a small config, pinned: a refactor must not move any artifact.

Every key function gets fixed inputs (fixed shas, counts, rows and texts), so nothing here
depends on library versions or the data files. A change that means to move keys (a gates or
prompt version bump, a new semantic setting) updates the values below and says why.
"""

from __future__ import annotations

from llmsynth_core.config import ExperimentConfig, Mixture
from llmsynth_core.registry import load_registry
from llmsynth_core.snapshot import snapshot_key
from llmsynth_core.training_job import (
    CurveSource,
    Provenance,
    Source,
    SyntheticSource,
    TrainingJob,
    training_sources,
)
from tasks.annotate import annotation_key
from tasks.artifacts import ArtifactRef
from tasks.diversity import diversity_key
from tasks.generate import generation_key
from tasks.snapshot import DataSnapshot

SPEC = load_registry()["tweet_irony"]
CONFIG = ExperimentConfig.model_validate(
    {
        "name": "golden",
        "tasks": ["tweet_irony"],
        "llm": {"endpoint": "http://127.0.0.1:9/v1", "model": "fake-model", "max_tokens": 40},
        "generation": {"per_label": 3, "few_shot_k": 2},
        "training": {
            "epochs": 1,
            "max_steps": 3,
            "batch_size": 4,
            "max_length": 32,
            "seeds": [42],
            "mixtures": [Mixture(mode="few_shot", real_per_label=2).model_dump()],
        },
        "evaluation": {"max_test_examples": 24},
        "analysis": {"annotator_panel": 3, "annotator_max_instances": 10},
    }
)
MIXTURE = CONFIG.training.mixtures[0].name


def _ref(kind: str, name: str, digit: str) -> ArtifactRef:
    return ArtifactRef(
        uri=f"/s/{kind}/{name}/data.parquet", schema_name=kind, rows=7, sha256=digit * 64
    )


SNAPSHOT = DataSnapshot(
    task="tweet_irony", train=_ref("snapshot", "train", "a"), test=_ref("snapshot", "test", "b")
)
GENERATIONS = [_ref("generations", label, "c") for label in SPEC.label_names]
COUNTS = {"irony": 3, "non_irony": 2}
ENCODER = "embedded:all-MiniLM-L6-v2"


def _metrics_key(source: Source, seed: int, counts: dict[str, int] | None) -> str:
    job = TrainingJob(
        task=SPEC,
        encoder=ENCODER,
        source=source,
        seed=seed,
        generations=[] if source.kind in ("real", "real_curve") else GENERATIONS,
        snapshot=SNAPSHOT,
        per_label=source.wanted(CONFIG.generation.per_label),
        counts=counts,
        provenance=Provenance.of(CONFIG),
    )
    return job.key(CONFIG.training, CONFIG.evaluation)


def keys() -> dict[str, str]:
    """Every kind of key of the small config, by a readable name."""
    out = {
        f"snapshot/{split}": snapshot_key(SPEC, split, "d" * 64, CONFIG.evaluation)
        for split in ("train", "test")
    }
    for mode in ("zero_shot", "few_shot"):
        out[f"generation/{mode}"] = generation_key(
            SPEC, CONFIG, mode, "irony", SNAPSHOT.train.sha256
        )
        out[f"generation/{mode}/replicate1"] = generation_key(
            SPEC, CONFIG.for_replicate(1), mode, "irony", SNAPSHOT.train.sha256
        )
    sources = training_sources(CONFIG)
    assert [source.name for source in sources] == ["real", "zero_shot", "few_shot", MIXTURE]
    for source in sources:
        out[f"metrics/{source.name}"] = _metrics_key(source, 42, COUNTS)
    out["metrics/zero_shot/replicate1/uncounted"] = _metrics_key(
        SyntheticSource(mode="zero_shot", replicate=1), 43, None
    )
    out["metrics/real@2"] = _metrics_key(CurveSource(per_label=2), 42, {"irony": 2, "non_irony": 2})
    out["annotation"] = annotation_key(
        SPEC, SNAPSHOT.test.sha256, CONFIG.panel_llm, 3, [0, 4, 9], ["a b", "c d", "e f"]
    )
    out["diversity"] = diversity_key(
        SPEC, SNAPSHOT.train.sha256, CONFIG.analysis, {"real": ["a"], "zero_shot": ["b"]}
    )
    return out


# Printed by commit 'golden keys' (before the design refactor of issue 15).
GOLDEN: dict[str, str] = {
    "snapshot/train": "4dc58a7836502720cab41bc9eb45c401",
    "snapshot/test": "a81e42a5fb30f2df2e73b0e265f82fae",
    "generation/zero_shot": "4c74942f237ff804",
    "generation/zero_shot/replicate1": "a51e161b865ad5a0",
    "generation/few_shot": "36f873b3876f4576",
    "generation/few_shot/replicate1": "10dc835c35966ada",
    # Every metrics key moved with training.LOOP_VERSION 2 (issue 14: CPU dropout masks from
    # numpy, so a run of the new loop never reads one of the old); nothing else moved.
    "metrics/real": "353c2384ada9d144",
    "metrics/zero_shot": "2adf80d99f3afd42",
    "metrics/few_shot": "8e4556369872c69d",
    "metrics/few_shot+real2xall": "f00c22417c248e2b",
    "metrics/zero_shot/replicate1/uncounted": "37fb651b2c2c1980",
    # Added with training.real_curve (issue 12); every key above stayed put.
    "metrics/real@2": "c1b08193644f2047",
    "annotation": "b5ed8fc20c7c5e81",
    "diversity": "fc07ebcd257017f2",
}


def test_artifact_keys_of_a_small_config_do_not_move() -> None:
    assert keys() == GOLDEN
