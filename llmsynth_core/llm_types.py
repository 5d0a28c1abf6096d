"""Provider-neutral LLM requests and responses; the request hash keys every cache."""

from __future__ import annotations

from typing import Literal

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
        return stable_hash(self.model_dump(mode="json"), length=32)


class LLMResponse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    model: str = ""
