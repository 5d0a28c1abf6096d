"""The settings the study does not report, and the value a run used for each (for its report).

The study (Li et al., EMNLP 2023) reports the generator, the prompting scheme, about 3,000
examples per label, BERT-base and RoBERTa-base, and all-MiniLM-L6-v2 for similarity to real
data; everything below is this project's choice and is listed as such.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.lengths import effective_max_tokens
from llmsynth_core.taskspec import TaskSpec

ASSUMED = "assumed: the study does not report it"
STUDY_CLASSIFIERS = frozenset({"bert-base-uncased", "bert-base-cased", "roberta-base"})
STUDY_SIMILARITY_ENCODER = "all-MiniLM-L6-v2"


def assumed_settings(config: ExperimentConfig, specs: Sequence[TaskSpec]) -> list[dict[str, str]]:
    """One row per setting the study leaves open: setting (with its config key), value, status."""
    llm, gen, train = config.llm, config.generation, config.training
    patience = train.early_stopping_patience
    rows = [
        ("temperature (llm.temperature)", f"{llm.temperature:g}"),
        ("top_p (llm.top_p)", f"{llm.top_p:g}"),
        ("n: diversity follow-up every n turns (generation.diversity_every)", gen.diversity_every),
        ("k: real examples per few-shot request (generation.few_shot_k)", gen.few_shot_k),
        (
            "few-shot example length, characters (generation.few_shot_max_chars)",
            gen.few_shot_max_chars,
        ),
        ("conversation length, turns (generation.conversation_length)", gen.conversation_length),
        ("earlier turns kept as history (generation.history_turns)", gen.history_turns),
        *((f"max_tokens per reply: {spec.id}", _max_tokens(spec, config)) for spec in specs),
        ("epochs (training.epochs)", train.epochs),
        ("learning rate (training.learning_rate)", f"{train.learning_rate:g}"),
        ("batch size (training.batch_size)", train.batch_size),
        ("max length, tokens (training.max_length)", train.max_length),
        ("weight decay (training.weight_decay)", f"{train.weight_decay:g}"),
        ("warmup ratio (training.warmup_ratio)", f"{train.warmup_ratio:g}"),
        (
            "validation carve (training.validation_fraction, min_validation_per_label)",
            _validation_carve(config),
        ),
        (
            "early stopping patience, epochs (training.early_stopping_patience)",
            "off: all epochs" if patience is None else patience,
        ),
    ]
    table = [{"setting": name, "value": str(value), "status": ASSUMED} for name, value in rows]
    return [*table, _sentence_encoder(config), *_classifiers(config), *_variants(specs)]


def _variants(specs: Sequence[TaskSpec]) -> list[dict[str, str]]:
    """A row per registered variant run in place of a study task (e.g. coarser labels)."""
    return [
        {
            "setting": f"task {spec.id}",
            "value": f"{spec.name}: {len(spec.labels)} labels ({', '.join(spec.label_names)})",
            "status": f"differs from the study: a registered variant of {spec.variant_of}",
        }
        for spec in specs
        if spec.variant_of is not None
    ]


def _validation_carve(config: ExperimentConfig) -> str:
    train = config.training
    if train.validation_fraction == 0:
        return "none (no early stopping)"
    return (
        f"{train.validation_fraction:g} of each label's rows; none where that is under "
        f"{train.min_validation_per_label} rows for a label"
    )


def _max_tokens(spec: TaskSpec, config: ExperimentConfig) -> str:
    source = "the spec's prompts.max_tokens" if spec.prompts.max_tokens else "llm.max_tokens"
    return f"{effective_max_tokens(spec, config.llm)} ({source})"


def _sentence_encoder(config: ExperimentConfig) -> dict[str, str]:
    model = config.analysis.embedding_model
    similarity = (
        "similarity to real data uses the study's own encoder"
        if model.endswith(STUDY_SIMILARITY_ENCODER)
        else f"the study measured similarity with {STUDY_SIMILARITY_ENCODER}"
    )
    return {
        "setting": "sentence encoder for diversity and similarity (analysis.embedding_model)",
        "value": model,
        "status": f"assumed for diversity: the study does not name its encoder; {similarity}",
    }


def _classifiers(config: ExperimentConfig) -> list[dict[str, str]]:
    """A row only where the classifiers differ from the study's, which it does report."""
    models = config.training.models
    if set(models) <= STUDY_CLASSIFIERS:
        return []
    return [
        {
            "setting": "classifier encoders (training.models)",
            "value": ", ".join(models),
            "status": "differs from the study, which fine-tuned BERT-base and RoBERTa-base",
        }
    ]
