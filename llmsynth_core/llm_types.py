"""Provider-neutral LLM requests and responses; the request hash keys every cache."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmsynth_core.hashing import stable_hash


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class LLMRequest(BaseModel):
    """One call: chat messages or a completion prompt, plus sampling parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    style: Literal["chat", "completion"]
    model: str
    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 96
    seed: int | None = None
    stop: tuple[str, ...] = ()
    prompt_version: str = Field(default="", description="Template version; part of the hash.")

    @model_validator(mode="after")
    def _one_input(self) -> LLMRequest:
        if self.style == "chat" and not self.messages:
            raise ValueError("a chat request needs messages")
        if self.style == "completion" and self.prompt is None:
            raise ValueError("a completion request needs a prompt")
        return self

    def request_hash(self) -> str:
        """Everything that changes the reply, and nothing operational."""
        return self._hash

    def prompt_hash(self) -> str:
        """The rendered prompt alone (messages or completion prompt), without sampling settings."""
        return self._prompt_hash

    # Computed once per request: the cache, the row and the manifest all ask for them.
    @cached_property
    def _hash(self) -> str:
        return stable_hash(self.model_dump(mode="json"), length=32)

    @cached_property
    def _prompt_hash(self) -> str:
        return stable_hash(
            [m.model_dump() for m in self.messages] if self.messages else self.prompt
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        # A copy with other fields must not keep our hashes.
        copy.__dict__.pop("_hash", None)
        copy.__dict__.pop("_prompt_hash", None)
        return copy


class LLMResponse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    model: str = ""
    # Answered through a Batch API, and so billed at llm.batch_price_factor of the list price.
    batch: bool = False
