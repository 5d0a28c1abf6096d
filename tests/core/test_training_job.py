"""A training job: its typed source, its key (real data is keyed by its per-label counts),
the rows it draws, and the jobs an experiment plans."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from llmsynth_core.config import ExperimentConfig, Mixture
from llmsynth_core.refs import ArtifactRef, DataSnapshot
from llmsynth_core.registry import load_registry
from llmsynth_core.size_matching import match_sizes, synthetic_set
from llmsynth_core.training_job import (
    CurveSource,
    MixedSource,
    Provenance,
    RealSource,
    Source,
    SyntheticSource,
    TrainingJob,
    plan_jobs,
    training_sources,
)

SPEC = load_registry()["tweet_irony"]
MODEL = "embedded:all-MiniLM-L6-v2"
FILLED = {"irony": 24, "non_irony": 24}
SHORT = {"irony": 24, "non_irony": 20}
ZERO_SHOT = SyntheticSource(mode="zero_shot")


def _config(model: str = "m", size_matching: str = "equal", **more: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "k",
            "tasks": ["tweet_irony"],
            "llm": {"model": model},
            "training": {"size_matching": size_matching},
            **more,
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


def _snapshot(train_sha: str = "c") -> DataSnapshot:
    def ref(split: str, sha: str) -> ArtifactRef:
        return ArtifactRef(
            uri=f"/s/snapshot/{split}/data.parquet", schema_name="snapshot", rows=9, sha256=sha * 64
        )

    return DataSnapshot(task="tweet_irony", train=ref("train", train_sha), test=ref("test", "c"))


SNAPSHOT = _snapshot()


def _job(
    source: Source,
    generations: list[ArtifactRef],
    counts: dict[str, int] | None,
    config: ExperimentConfig | None = None,
    snapshot: DataSnapshot = SNAPSHOT,
) -> TrainingJob:
    config = config or _config()
    return TrainingJob(
        task=SPEC,
        encoder=MODEL,
        source=source,
        seed=42,
        generations=generations,
        snapshot=snapshot,
        per_label=config.generation.per_label,
        counts=counts,
        provenance=Provenance.of(config),
    )


def _key(job: TrainingJob, config: ExperimentConfig | None = None) -> str:
    config = config or _config()
    return job.key(config.training, config.evaluation)


def test_real_models_follow_their_counts_not_the_generator() -> None:
    # A new generator model that fills its quotas: new artifacts, same counts.
    old, new = _config("old"), _config("new")
    before = _key(_job(RealSource(), [], FILLED, old), old)
    assert _key(_job(RealSource(), [], FILLED, new), new) == before
    assert _key(_job(RealSource(), [], SHORT, new), new) != before
    # Generation artifacts cannot reach a real-data job's key: the job refuses them.
    with pytest.raises(ValidationError, match="a real-data job reads no generation artifacts"):
        _job(RealSource(), _refs("b"), FILLED)


def test_synthetic_models_follow_their_artifacts_and_counts() -> None:
    base = _key(_job(ZERO_SHOT, _refs("a"), FILLED))
    assert _key(_job(ZERO_SHOT, _refs("b"), FILLED)) != base
    assert _key(_job(ZERO_SHOT, _refs("a"), SHORT)) != base


def test_the_size_policy_acts_only_through_the_counts() -> None:
    # Same rows under either policy (every quota filled): the same model.
    none = _config(size_matching="none")
    equal = _key(_job(RealSource(), [], FILLED))
    assert _key(_job(RealSource(), [], FILLED, none), none) == equal


@pytest.mark.parametrize(
    ("source", "keyed_on_train_split"),
    [
        (RealSource(), True),
        (ZERO_SHOT, False),
        (SyntheticSource(mode="few_shot"), True),
        (MixedSource(mixture=Mixture(mode="zero_shot", real_per_label=2)), True),
    ],
)
def test_only_zero_shot_rows_alone_ignore_the_train_split(
    source: Source, keyed_on_train_split: bool
) -> None:
    refs = [] if isinstance(source, RealSource) else _refs("a")
    before = _key(_job(source, refs, FILLED, snapshot=_snapshot("c")))
    after = _key(_job(source, refs, FILLED, snapshot=_snapshot("d")))
    assert (after != before) is keyed_on_train_split


def test_sources_name_their_rows_as_the_metrics_do() -> None:
    mixture = Mixture(mode="few_shot", real_per_label=10, synthetic_per_label=5)
    config = _config(generation={"replicates": 2}, training={"mixtures": [mixture.model_dump()]})
    sources = training_sources(config)
    assert [(s.name, s.replicate, s.size_set) for s in sources] == [
        ("real", 0, "real"),
        ("zero_shot", 0, "zero_shot"),
        ("zero_shot", 1, "zero_shot#1"),
        ("few_shot", 0, "few_shot"),
        ("few_shot", 1, "few_shot#1"),
        ("few_shot+real10x5", 0, "few_shot"),
        ("few_shot+real10x5", 1, "few_shot#1"),
    ]


def test_a_job_survives_json_with_its_typed_source() -> None:
    mixed = MixedSource(mixture=Mixture(mode="few_shot", real_per_label=2), replicate=1)
    job = _job(mixed, _refs("a"), FILLED)
    again = TrainingJob.model_validate_json(job.model_dump_json())
    assert again == job and isinstance(again.source, MixedSource)
    assert (
        again.name == "tweet_irony/few_shot+real2xall/embedded:all-MiniLM-L6-v2/seed42/replicate1"
    )
    assert _key(again) == _key(job)


def test_a_job_refuses_another_tasks_snapshot() -> None:
    other = SNAPSHOT.model_copy(update={"task": "ag_news"})
    with pytest.raises(ValidationError, match="snapshot is of task 'ag_news'"):
        _job(RealSource(), [], FILLED, snapshot=other)


def _rows(label: str, n: int, prefix: str, accepted: bool | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"text": [f"{prefix} {label} {i}" for i in range(n)], "label": label})
    return frame if accepted is None else frame.assign(accepted=accepted)


REAL_SPLIT = pd.concat([_rows(label, 10, "real") for label in SPEC.label_names])
GENERATED = [_rows(label, 6, "synthetic", True) for label in SPEC.label_names] + [
    _rows("irony", 3, "rejected", False)
]


def _unread() -> pd.DataFrame:
    raise AssertionError("this source must not read the real training split")


def test_real_rows_are_drawn_at_the_counts_or_per_label() -> None:
    counted = _job(RealSource(), [], {"irony": 3, "non_irony": 2})
    rows = counted.training_rows(lambda: REAL_SPLIT, lambda: [])
    assert rows["label"].value_counts().to_dict() == {"irony": 3, "non_irony": 2}
    uncounted = _job(RealSource(), [], None, _config(generation={"per_label": 4}))
    rows = uncounted.training_rows(lambda: REAL_SPLIT, lambda: [])
    assert rows["label"].value_counts().to_dict() == {"irony": 4, "non_irony": 4}


def test_synthetic_rows_are_the_accepted_ones_without_the_real_split() -> None:
    job = _job(ZERO_SHOT, _refs("a"), {"irony": 2, "non_irony": 6})
    rows = job.training_rows(_unread, lambda: GENERATED)
    assert rows["text"].str.startswith("synthetic").all()
    assert rows["label"].value_counts().to_dict() == {"irony": 2, "non_irony": 6}
    assert len(_job(ZERO_SHOT, _refs("a"), None).training_rows(_unread, lambda: GENERATED)) == 12


def test_mixed_rows_add_the_counted_synthetic_part_to_a_small_real_set() -> None:
    mixed = MixedSource(mixture=Mixture(mode="few_shot", real_per_label=2))
    job = _job(mixed, _refs("a"), {"irony": 4, "non_irony": 6})
    rows = job.training_rows(lambda: REAL_SPLIT, lambda: GENERATED)
    origin = rows["text"].str.split().str[0]
    assert rows.groupby([origin, "label"]).size().to_dict() == {
        ("real", "irony"): 2,
        ("real", "non_irony"): 2,
        ("synthetic", "irony"): 4,
        ("synthetic", "non_irony"): 6,
    }


def test_plan_jobs_trains_every_source_set_and_seed_at_its_matched_counts() -> None:
    config = _config(generation={"replicates": 2}, training={"seeds": [1, 2]})
    accepted = {
        synthetic_set(m, r): {"irony": 5, "non_irony": 9}
        for m in ("zero_shot", "few_shot")
        for r in (0, 1)
    }
    accepted["few_shot#1"] = {"irony": 9, "non_irony": 3}
    sizes = match_sizes(
        "tweet_irony", SPEC.label_names, {"irony": 99, "non_irony": 99}, accepted, 8, "none"
    )
    generations = {
        ("tweet_irony", m, r): _refs(str(r)) for m in ("zero_shot", "few_shot") for r in (0, 1)
    }
    jobs = plan_jobs([SPEC], config, generations, {"tweet_irony": SNAPSHOT}, {"tweet_irony": sizes})
    assert [(j.source.name, j.source.replicate, j.seed) for j in jobs][:4] == [
        ("real", 0, 1),
        ("real", 0, 2),
        ("zero_shot", 0, 1),
        ("zero_shot", 0, 2),
    ]
    assert len(jobs) == 2 * (1 + 2 * 2)  # seeds x (real + modes x replicates)
    by_set = {(j.source.name, j.source.replicate): j for j in jobs}
    assert by_set[("real", 0)].counts == {"irony": 8, "non_irony": 8}
    assert by_set[("real", 0)].generations == []
    assert by_set[("few_shot", 1)].counts == {"irony": 9, "non_irony": 3}
    assert by_set[("few_shot", 1)].generations == _refs("1")
    assert {j.provenance for j in jobs} == {Provenance.of(config)}


def test_a_curve_point_draws_k_real_rows_per_label_capped_by_the_split() -> None:
    config = _config(training={"real_curve": [2, 4, 16]})
    sizes = match_sizes(
        "tweet_irony",
        SPEC.label_names,
        {"irony": 10, "non_irony": 3},
        {"zero_shot": FILLED, "few_shot": FILLED},
        24,
        "equal",
    )
    jobs = plan_jobs([SPEC], config, {}, {"tweet_irony": SNAPSHOT}, {"tweet_irony": sizes})
    curve = {j.source.name: j for j in jobs if isinstance(j.source, CurveSource) and j.seed == 42}
    assert len([j for j in jobs if isinstance(j.source, CurveSource)]) == 3 * 3  # k x seeds
    assert list(curve) == ["real@2", "real@4", "real@16"]
    # Not size-matched: k per label, or what the split has of that label.
    assert curve["real@2"].counts == {"irony": 2, "non_irony": 2}
    assert curve["real@16"].counts == {"irony": 10, "non_irony": 3}
    assert {(j.generations == [], j.per_label) for j in curve.values()} == {
        (True, 2),
        (True, 4),
        (True, 16),
    }
    split = pd.concat([_rows("irony", 10, "real"), _rows("non_irony", 3, "real")])
    rows = curve["real@16"].training_rows(lambda: split, lambda: [])
    assert rows["label"].value_counts().to_dict() == {"irony": 10, "non_irony": 3}
    two = curve["real@2"].training_rows(lambda: REAL_SPLIT, lambda: [])
    assert two["label"].value_counts().to_dict() == {"irony": 2, "non_irony": 2}
    # Seeded like the real source: the same seed draws the same rows.
    real = _job(RealSource(), [], curve["real@2"].counts, config)
    pd.testing.assert_frame_equal(two, real.training_rows(lambda: REAL_SPLIT, lambda: []))


def test_curve_points_are_keyed_by_their_counts_not_the_generator_or_per_label() -> None:
    def key(k: int, counts: dict[str, int], config: ExperimentConfig) -> str:
        job = _job(CurveSource(per_label=k), [], counts, config)
        job = job.model_copy(update={"per_label": k})  # as plan_jobs sets it
        return _key(job, config)

    base = key(4, {"irony": 4, "non_irony": 4}, _config())
    assert key(8, {"irony": 8, "non_irony": 8}, _config()) != base
    assert key(4, {"irony": 4, "non_irony": 3}, _config()) != base
    assert key(4, {"irony": 4, "non_irony": 4}, _config("other-generator")) == base
    more = _config(generation={"per_label": 99}, training={"real_curve": [4, 8]})
    assert key(4, {"irony": 4, "non_irony": 4}, more) == base
    # The real source of the same counts is another model, named otherwise in the metrics.
    assert _key(_job(RealSource(), [], {"irony": 4, "non_irony": 4})) != base
    with pytest.raises(ValidationError, match="a real-data job reads no generation artifacts"):
        _job(CurveSource(per_label=4), _refs("b"), FILLED)
    # A job sent to the training pool comes back as the same curve job.
    job = _job(CurveSource(per_label=4), [], FILLED)
    again = TrainingJob.model_validate_json(job.model_dump_json())
    assert again == job and again.name.startswith("tweet_irony/real@4/")
    assert _key(_job(CurveSource(per_label=4), [], FILLED, snapshot=_snapshot("d"))) != _key(
        _job(CurveSource(per_label=4), [], FILLED)
    )
