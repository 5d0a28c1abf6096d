"""One training run as data: the classification task, the encoder, the data source and seed,
the stored inputs and the rows per label; its `key` is the address of what the run writes.

The source is typed (real, a point of the real learning curve, a synthetic set or a mixture),
and this module is the one place that decodes it: its name in metrics rows, its rows per label,
its generation artifacts, which stored data it reads and which of that its key depends on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmsynth_core.config import EvaluationConfig, ExperimentConfig, Mixture, Mode, TrainingConfig
from llmsynth_core.hashing import stable_hash
from llmsynth_core.refs import ArtifactRef, DataSnapshot
from llmsynth_core.schemas import CURVES, METRICS, PREDICTIONS
from llmsynth_core.size_matching import (
    REAL,
    LabelSizes,
    curve_source,
    matched_counts,
    synthetic_set,
)
from llmsynth_core.taskspec import TaskSpec
from llmsynth_core.training import LOOP_VERSION
from llmsynth_core.training_data import accepted_rows, mixture_rows, real_rows, synthetic_rows

# Training settings that change no single model: which seeds, mixtures and learning-curve points
# run, whether models are saved, and the size policy (the policy and the curve act only through
# a job's counts).
UNKEYED_TRAINING = frozenset({"seeds", "mixtures", "real_curve", "save_models", "size_matching"})

# A task's generation artifacts by (task, mode, replicate), as the generate flow returns them.
Generations = Mapping[tuple[str, str, int], Sequence[ArtifactRef]]
# Stored frames, read only by the sources that use them.
RealSplit = Callable[[], pd.DataFrame]
GeneratedFrames = Callable[[], Sequence[pd.DataFrame]]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RealSource(_Frozen):
    """A seeded, stratified sample of the real training split; there is one set of it."""

    kind: Literal["real"] = "real"
    replicate: Literal[0] = 0

    @property
    def name(self) -> str:
        return REAL

    @property
    def mixture(self) -> None:
        return None

    @property
    def size_set(self) -> str:
        """The name size matching gives the rows this source draws on."""
        return REAL

    @property
    def saw_train_split(self) -> bool:
        return True

    @property
    def traces_test(self) -> bool:
        """Scored on the test split every epoch: its training curve is in the report (B.1)."""
        return True

    def generation_refs(self, generations: Generations, task: str) -> list[ArtifactRef]:
        return []

    def origin(self, generator: str) -> str:
        return "a stratified sample of the real training split"

    def counts(self, sizes: Sequence[LabelSizes]) -> dict[str, int]:
        """The rows per label size matching gave the real set."""
        return matched_counts(sizes, self.size_set)

    def wanted(self, per_label: int) -> int:
        """Rows per label the job wants: generation.per_label."""
        return per_label

    def draw(self, job: TrainingJob, real: RealSplit, generated: GeneratedFrames) -> pd.DataFrame:
        """counts[label] real rows per label; no counts: per_label of each."""
        counts = job.counts or dict.fromkeys(job.task.label_names, job.per_label)
        return real_rows(real(), counts, job.seed)


class CurveSource(_Frozen):
    """A point of the real learning curve (training.real_curve): a seeded, stratified sample of
    per_label real rows per label, fewer where the split has fewer; not size-matched."""

    kind: Literal["real_curve"] = "real_curve"
    per_label: int = Field(ge=1, description="Real rows per label (one training.real_curve k).")
    replicate: Literal[0] = 0

    @property
    def name(self) -> str:
        return curve_source(self.per_label)

    @property
    def mixture(self) -> None:
        return None

    @property
    def saw_train_split(self) -> bool:
        return True

    @property
    def traces_test(self) -> bool:
        """Not scored per epoch: a curve point reads only its final test score, and test
        passes every epoch would cost more than its training."""
        return False

    def generation_refs(self, generations: Generations, task: str) -> list[ArtifactRef]:
        return []

    def origin(self, generator: str) -> str:
        return f"a stratified sample of {self.per_label} real training rows per label"

    def counts(self, sizes: Sequence[LabelSizes]) -> dict[str, int]:
        """per_label rows of each label, capped at the rows the real split has of it."""
        return {size.label: min(self.per_label, size.have[REAL]) for size in sizes}

    def wanted(self, per_label: int) -> int:
        """Its own per_label: generation.per_label changes no curve model."""
        return self.per_label

    def draw(self, job: TrainingJob, real: RealSplit, generated: GeneratedFrames) -> pd.DataFrame:
        """counts[label] real rows per label, seeded like the real source; no counts: per_label
        of each (fewer where the split has fewer)."""
        counts = job.counts or dict.fromkeys(job.task.label_names, self.per_label)
        return real_rows(real(), counts, job.seed)


class SyntheticSource(_Frozen):
    """The accepted rows of one generation mode's synthetic set `replicate`."""

    kind: Literal["synthetic"] = "synthetic"
    mode: Mode
    replicate: int = Field(default=0, ge=0, description="Which set (generation.replicates).")

    @property
    def name(self) -> str:
        return self.mode

    @property
    def mixture(self) -> None:
        return None

    @property
    def size_set(self) -> str:
        return synthetic_set(self.mode, self.replicate)

    @property
    def saw_train_split(self) -> bool:
        """Few-shot prompts showed the real training split; zero-shot ones did not."""
        return self.mode != "zero_shot"

    @property
    def traces_test(self) -> bool:
        """Scored on the test split every epoch: its training curve is in the report (B.1)."""
        return True

    def generation_refs(self, generations: Generations, task: str) -> list[ArtifactRef]:
        return list(generations.get((task, self.mode, self.replicate), []))

    def origin(self, generator: str) -> str:
        return f"LLM-generated rows from {generator}"

    def counts(self, sizes: Sequence[LabelSizes]) -> dict[str, int]:
        """The rows per label size matching gave this synthetic set."""
        return matched_counts(sizes, self.size_set)

    def wanted(self, per_label: int) -> int:
        return per_label

    def accepted(self, job: TrainingJob, generated: GeneratedFrames) -> pd.DataFrame:
        return accepted_rows(generated(), f"{job.task.id}/{self.mode}")

    def draw(self, job: TrainingJob, real: RealSplit, generated: GeneratedFrames) -> pd.DataFrame:
        """The accepted rows cut to counts[label] per label; no counts: all of them."""
        return synthetic_rows(self.accepted(job, generated), job.counts, job.seed)


class MixedSource(_Frozen):
    """A small real set plus rows of one mode's synthetic set `replicate` (training.mixtures)."""

    kind: Literal["mixed"] = "mixed"
    mixture: Mixture
    replicate: int = Field(default=0, ge=0, description="Which set (generation.replicates).")

    @property
    def name(self) -> str:
        return self.mixture.name

    @property
    def synthetic(self) -> SyntheticSource:
        """The synthetic set whose rows are mixed in."""
        return SyntheticSource(mode=self.mixture.mode, replicate=self.replicate)

    @property
    def size_set(self) -> str:
        return self.synthetic.size_set

    @property
    def saw_train_split(self) -> bool:
        return True

    @property
    def traces_test(self) -> bool:
        """Not scored per epoch: a mixture reads only its final test score, and test passes
        every epoch would cost more than its training."""
        return False

    def generation_refs(self, generations: Generations, task: str) -> list[ArtifactRef]:
        return self.synthetic.generation_refs(generations, task)

    def origin(self, generator: str) -> str:
        return self.synthetic.origin(generator)

    def counts(self, sizes: Sequence[LabelSizes]) -> dict[str, int]:
        """The synthetic part follows its set's matched rows per label."""
        return matched_counts(sizes, self.size_set)

    def wanted(self, per_label: int) -> int:
        return per_label

    def draw(self, job: TrainingJob, real: RealSplit, generated: GeneratedFrames) -> pd.DataFrame:
        """mixture.real_per_label real rows per label plus the synthetic part (see
        `mixture_rows`), which counts[label] also caps."""
        synthetic = self.synthetic.accepted(job, generated)
        labels = job.task.label_names
        return mixture_rows(real(), synthetic, self.mixture, labels, job.seed, job.counts)


Source = Annotated[
    RealSource | CurveSource | SyntheticSource | MixedSource, Field(discriminator="kind")
]


def training_sources(config: ExperimentConfig) -> list[Source]:
    """Every source a model trains on: real once, each point of the real learning curve once,
    then each mode and each mixture once per synthetic set (generation.replicates)."""
    replicates = range(config.generation.replicates)
    return [
        RealSource(),
        *(CurveSource(per_label=k) for k in config.training.real_curve),
        *(
            SyntheticSource(mode=m, replicate=r)
            for m in config.generation.modes
            for r in replicates
        ),
        *(
            MixedSource(mixture=m, replicate=r)
            for m in config.training.mixtures
            for r in replicates
        ),
    ]


class Provenance(_Frozen):
    """The experiment that asked for a run: written into its manifest and model card, never
    into its key (a new generator that fills its quotas reuses the real-data models)."""

    experiment: str = Field(description="The experiment's name.")
    config_hash: str = Field(description="The experiment config's semantic hash.")
    generator: str = Field(description="The generator model id (llm.model).")

    @classmethod
    def of(cls, config: ExperimentConfig) -> Provenance:
        return cls(
            experiment=config.name, config_hash=config.semantic_hash(), generator=config.llm.model
        )


class TrainingJob(_Frozen):
    """One model to fine-tune and evaluate on the real test split, with everything that decides
    its rows; the training and evaluation settings come beside it."""

    task: TaskSpec = Field(description="The classification task (labels, data), as resolved.")
    encoder: str = Field(description="Encoder to fine-tune, one of training.models.")
    source: Source = Field(
        description="Training data: real rows, a synthetic set of a generation mode, or a "
        "mixture of real and synthetic rows (training.mixtures)."
    )
    seed: int = Field(description="Training seed; it also draws the rows and validation carve.")
    generations: list[ArtifactRef] = Field(
        default_factory=list,
        description="The synthetic set's generation artifacts (none for real data).",
    )
    snapshot: DataSnapshot = Field(
        description="The task's data snapshot refs (train split, evaluation subsample)."
    )
    per_label: int = Field(
        ge=1,
        description="Rows per label wanted (generation.per_label; a learning-curve point: its "
        "own k).",
    )
    counts: dict[str, int] | None = Field(
        default=None,
        description="Rows per label to train on (a mixture: its synthetic part), as size "
        "matching set them; null: per_label real rows, or all accepted rows.",
    )
    provenance: Provenance = Field(
        description="The experiment that asked for the run; manifest and model card only."
    )

    @model_validator(mode="after")
    def _inputs_fit_the_source(self) -> TrainingJob:
        if self.snapshot.task != self.task.id:
            raise ValueError(
                f"snapshot is of task {self.snapshot.task!r}, not {self.task.id!r}; pass the "
                "job its own task's snapshot"
            )
        if isinstance(self.source, RealSource | CurveSource) and self.generations:
            raise ValueError(
                "a real-data job reads no generation artifacts; pass generations=[] (its key "
                "must not change with the generator)"
            )
        return self

    @property
    def name(self) -> str:
        """The run's name in Prefect: task/source/encoder/seed/replicate."""
        source, seed = self.source, self.seed
        return f"{self.task.id}/{source.name}/{self.encoder}/seed{seed}/replicate{source.replicate}"

    @property
    def where(self) -> str:
        """How messages about this run name it."""
        return f"{self.task.id}/{self.source.name}/seed {self.seed}"

    def key(self, training: TrainingConfig, evaluation: EvaluationConfig) -> str:
        """Content address of the run: everything that changes its model and metrics.

        The test snapshot's sha256 always; the train snapshot's for every source but zero-shot
        rows alone (real and mixed rows come from it, few-shot prompts showed it). The size
        policy acts only through `counts`, and real data is keyed by its counts, not by
        generation artifacts: a new generator that fills its quotas reuses the real models.
        """
        source = self.source
        return stable_hash(
            {
                "task": self.task.model_dump(mode="json"),
                "training": training.model_dump(mode="json", exclude=set(UNKEYED_TRAINING)),
                "loop": LOOP_VERSION,
                "evaluation": evaluation.model_dump(mode="json"),
                "per_label": self.per_label,
                "model": self.encoder,
                "source": source.name,
                "mixture": source.mixture.model_dump(mode="json") if source.mixture else None,
                "seed": self.seed,
                "inputs": sorted(ref.sha256 for ref in self.generations),
                "counts": self.counts,
                # The rows name their synthetic set; the columns make a run stored before that
                # column existed train again rather than fail its schema check.
                "replicate": source.replicate,
                "columns": [METRICS.names, PREDICTIONS.names, CURVES.names],
                "train_snapshot": self.snapshot.train.sha256 if source.saw_train_split else None,
                "test_snapshot": self.snapshot.test.sha256,
            }
        )

    def training_rows(self, real: RealSplit, generated: GeneratedFrames) -> pd.DataFrame:
        """The rows this run trains on (before the validation carve); `real` reads the train
        split and `generated` the generation artifacts, each only if the source needs it."""
        return self.source.draw(self, real, generated)


def plan_jobs(
    specs: Sequence[TaskSpec],
    config: ExperimentConfig,
    generations: Generations,
    snapshots: Mapping[str, DataSnapshot],
    sizes: Mapping[str, Sequence[LabelSizes]],
) -> list[TrainingJob]:
    """One job per (task, encoder, source, synthetic set, seed), at the rows per label that
    size matching (`sizes`, by task) gave the source's set; a learning-curve point at its own
    k per label, capped by the real rows."""
    provenance = Provenance.of(config)
    return [
        TrainingJob(
            task=spec,
            encoder=encoder,
            source=source,
            seed=seed,
            generations=source.generation_refs(generations, spec.id),
            snapshot=snapshots[spec.id],
            per_label=source.wanted(config.generation.per_label),
            counts=source.counts(sizes[spec.id]),
            provenance=provenance,
        )
        for spec in specs
        for encoder in config.training.models
        for source in training_sources(config)
        for seed in config.training.seeds
    ]
