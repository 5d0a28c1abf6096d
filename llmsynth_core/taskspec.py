"""Task specifications: one YAML file per classification task, validated into frozen models."""

from __future__ import annotations

import functools
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from llmsynth_core.errors import ConfigError, validated

Style = Literal["chat", "completion"]

# Placeholders each template may use; anything else is a typo caught at load time.
CHAT_SLOTS = {
    "context": {"label", "label_description"},
    "generation": {"label", "label_description", "style", "length"},
    "diversity": {"label", "label_description", "style", "length"},
    "few_shot": {"label", "label_description", "style", "length", "examples"},
}
COMPLETION_SLOTS = {
    "zero_shot": {"label", "label_description", "style", "length"},
    "few_shot": {"label", "label_description", "style", "length", "examples"},
    "example": {"text", "label"},
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _without_unset(
    model: BaseModel, handler: SerializerFunctionWrapHandler, field: str
) -> dict[str, Any]:
    """The model's dump without `field` while it is None. Cache keys hash spec dumps: a spec
    that does not set a field added later dumps exactly as it did before the field existed, so
    its generation, training and annotation keys stay put."""
    data: dict[str, Any] = handler(model)
    if getattr(model, field) is None:
        data.pop(field, None)
    return data


class LabelSpec(_Frozen):
    """One class: its name as stored in the data, and how prompts phrase it."""

    name: str = Field(min_length=1)
    description: str = Field(min_length=1, description="One line saying what the label means.")
    prompt_name: str | None = Field(
        default=None, description="How prompts name the label; defaults to `name`."
    )

    @property
    def phrase(self) -> str:
        return self.prompt_name or self.name


class HubSource(_Frozen):
    """Where online users find the same data on the Hugging Face Hub (opt-in)."""

    path: str
    config: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = Field(
        default=None, description="Names of integer hub labels, in id order, when they differ."
    )


class DataSpec(_Frozen):
    """Where the real data lives, relative to the data directory (or absolute)."""

    train: str
    test: str
    text_column: str = "text"
    label_column: str = "label"
    agreement_column: str | None = Field(
        default=None, description="Per-instance annotator agreement in [0, 1], if the data has it."
    )
    hub: HubSource | None = None


class ChatPrompts(_Frozen):
    """The study's chat prompting: a context (system) prompt, then generation requests."""

    context: str
    generation: str
    diversity: str
    few_shot: str


class CompletionPrompts(_Frozen):
    """Completion-style prompts for base models, which continue text rather than obey."""

    zero_shot: str
    few_shot: str
    example: str = "{text}"
    stop: list[str] = Field(default_factory=lambda: ["\n\n"])


class PromptSpec(_Frozen):
    version: str = Field(description="Bump when any template changes; it keys request caches.")
    chat: ChatPrompts
    completion: CompletionPrompts
    styles: list[str] = Field(min_length=1)
    lengths: list[str] = Field(min_length=1)
    max_tokens: int | None = Field(
        default=None,
        ge=8,
        le=4096,
        description="This task's reply limit, in place of llm.max_tokens (null: llm.max_tokens); "
        "for tasks whose length slots ask for more words than that allows.",
    )

    @model_serializer(mode="wrap")
    def _omit_unset_max_tokens(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_unset(self, handler, "max_tokens")

    @model_validator(mode="after")
    def _check_placeholders(self) -> PromptSpec:
        for group, allowed_by_field in (("chat", CHAT_SLOTS), ("completion", COMPLETION_SLOTS)):
            templates = getattr(self, group)
            for field, allowed in allowed_by_field.items():
                try:
                    used = template_fields(getattr(templates, field))
                except ValueError as exc:
                    raise ValueError(
                        f"prompts.{group}.{field} is not a valid template ({exc}); "
                        "write literal braces as {{ and }}"
                    ) from None
                # An empty name is a positional `{}`, which rendering by keyword cannot fill.
                unknown = sorted(name or "{}" for name in used - allowed)
                if unknown:
                    raise ValueError(
                        f"prompts.{group}.{field} uses unknown placeholder(s) {unknown}; "
                        f"allowed: {sorted(allowed)}"
                    )
        return self


class TaskSpec(_Frozen):
    """Everything llmsynth knows about one task."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    description: str
    domain: str = Field(description="Kind of text, e.g. 'news article', 'tweet'.")
    subjectivity: int = Field(
        ge=1,
        le=5,
        description="1 = most objective ... 5 = most subjective (author-assigned; see "
        "analysis.comparisons_file for a ranking fitted to judgments).",
    )
    labels: list[LabelSpec] = Field(min_length=2)
    data: DataSpec
    prompts: PromptSpec
    variant_of: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]+$",
        description="The task this one is a registered variant of (e.g. a coarser label set "
        "of the same data); reports label it as a variant, not as the study's task.",
    )

    @model_serializer(mode="wrap")
    def _omit_unset_variant(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_unset(self, handler, "variant_of")

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[LabelSpec]) -> list[LabelSpec]:
        names = [label.name for label in labels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"labels must be unique; remove the repeated {dupes}")
        return labels

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    def label(self, name: str) -> LabelSpec:
        for label in self.labels:
            if label.name == name:
                return label
        raise ConfigError(
            f"task {self.id!r} has no label {name!r}; choose one of {self.label_names}"
        )


def template_fields(template: str) -> set[str]:
    """The named placeholders of a str.format template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def parse_task_spec(raw: object, source: str) -> TaskSpec:
    """Validate a parsed YAML document, naming the file and field on error."""
    return validated(TaskSpec, raw, source)


def load_task_spec(path: Path) -> TaskSpec:
    """The spec in `path`; YAML parsing and validation run once per distinct file content."""
    return _parse_task_file(path, path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=512)
def _parse_task_file(path: Path, text: str) -> TaskSpec:
    spec = parse_task_spec(yaml.safe_load(text), str(path))
    if spec.id != path.stem:
        raise ConfigError(f"{path}: id {spec.id!r} must match the file name {path.stem!r}")
    return spec
