"""Prefect task: per classification task and label, how many rows the real data and every
generation mode train on (read from the real training split and the generation manifests),
warning per cap."""

from __future__ import annotations

import json

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.size_matching import LabelSizes, label_counts, match_sizes, synthetic_sets
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import MANIFEST, ArtifactRef, join_uri, read_text
from tasks.snapshot import DataSnapshot
from tasks.splits import read_snapshot


def accepted_per_label(generations: list[ArtifactRef]) -> dict[str, int]:
    """Accepted rows per label of a mode's generation artifacts, from their manifests."""
    counts: dict[str, int] = {}
    for ref in generations:
        directory = ref.uri.rpartition("/")[0]
        manifest = json.loads(read_text(join_uri(directory, MANIFEST)))
        label = str(manifest["label"])
        counts[label] = counts.get(label, 0) + int(manifest["accepted"])
    return counts


@task(
    name="size-matching",
    task_run_name="size matching {spec.id}",
    cache_policy=NO_CACHE,  # two small reads; the counts must follow the artifacts of this run
)
def size_match_task(
    spec: TaskSpec,
    config: ExperimentConfig,
    generations: dict[str, list[ArtifactRef]],
    snapshot: DataSnapshot,
) -> list[LabelSizes]:
    """The rows per label each source trains on (see `match_sizes`); a warning per capped label.
    `generations` holds each synthetic set's refs by its `synthetic_set` name."""
    train = read_snapshot(snapshot.train)
    sets = synthetic_sets(config.generation.modes, config.generation.replicates)
    accepted = {name: accepted_per_label(generations.get(name, [])) for name in sets}
    policy = config.training.size_matching
    available, per_label = label_counts(train["label"]), config.generation.per_label
    sizes = match_sizes(spec.id, spec.label_names, available, accepted, per_label, policy)
    logger = get_run_logger()
    for size in sizes:
        if size.capped:
            logger.warning("%s", size.warning(policy))
    return sizes
