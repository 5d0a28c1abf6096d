"""Rendering the study's prompts into LLM requests (chat and completion styles)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llmsynth_core.config import GenerationConfig, LLMConfig, Mode
from llmsynth_core.lengths import effective_max_tokens
from llmsynth_core.llm_types import ChatMessage, LLMRequest
from llmsynth_core.sampling import draw, request_rng
from llmsynth_core.taskspec import TaskSpec, template_fields

# How completion prompts are assembled from their templates. Part of the generation key of
# completion-style runs only, so bumping it regenerates those and leaves chat runs alone.
# 2: zero-shot prompts carry the style and length slots, as the chat prompts do.
COMPLETION_LAYOUT_VERSION = 2
# Slot lines added to a zero-shot completion prompt whose template does not place them itself.
_SLOT_LINES = {"style": "Style: {style}", "length": "Length: {length}"}


@dataclass(frozen=True)
class Example:
    """A real training example shown in a few-shot prompt."""

    id: str
    text: str


@dataclass(frozen=True)
class PlannedRequest:
    """One generation request and what went into it (for provenance)."""

    task_id: str
    mode: Mode
    label: str
    index: int
    request: LLMRequest
    style: str
    length: str
    example_ids: tuple[str, ...] = ()
    conversation: int = 0
    turn: int = 0


@dataclass(frozen=True)
class Turn:
    """A finished exchange in a zero-shot conversation."""

    user: str
    assistant: str


@dataclass
class PromptContext:
    """Everything needed to render requests for one task, label and mode."""

    spec: TaskSpec
    llm: LLMConfig
    generation: GenerationConfig
    mode: Mode
    label: str
    examples: Sequence[Example] = field(default_factory=tuple)


def label_fields(spec: TaskSpec, label: str) -> dict[str, str]:
    label_spec = spec.label(label)
    return {"label": label_spec.phrase, "label_description": label_spec.description}


def format_examples(examples: Sequence[Example], max_chars: int) -> str:
    """Numbered examples for a chat prompt, each cut to max_chars."""
    return "\n".join(
        f"Example {i}: {_clip(example.text, max_chars)}" for i, example in enumerate(examples, 1)
    )


def _clip(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 3].rstrip() + "..."


def plan_request(ctx: PromptContext, index: int, history: Sequence[Turn] = ()) -> PlannedRequest:
    """The request with index `index` within its label; zero-shot chat turns see `history`."""
    gen, spec = ctx.generation, ctx.spec
    rng = request_rng(ctx.llm.seed, spec.id, spec.prompts.version, ctx.mode, ctx.label, index)
    slots = {
        **label_fields(spec, ctx.label),
        "style": rng.choice(spec.prompts.styles),
        "length": rng.choice(spec.prompts.lengths),
    }
    examples = draw(rng, ctx.examples, gen.few_shot_k) if ctx.mode == "few_shot" else []
    conversation, turn = divmod(index, gen.conversation_length)
    seed = rng.randrange(2**31)
    if ctx.llm.prompt_style == "chat":
        messages = _chat_messages(ctx, slots, examples, turn, history)
        request = _request(ctx, seed, messages=messages)
    else:
        request = _request(ctx, seed, prompt=_completion_prompt(ctx, slots, examples))
    return PlannedRequest(
        task_id=spec.id,
        mode=ctx.mode,
        label=ctx.label,
        index=index,
        request=request,
        style=slots["style"],
        length=slots["length"],
        example_ids=tuple(example.id for example in examples),
        conversation=conversation,
        turn=turn,
    )


def _request(
    ctx: PromptContext,
    seed: int,
    messages: tuple[ChatMessage, ...] = (),
    prompt: str | None = None,
) -> LLMRequest:
    completion = ctx.llm.prompt_style == "completion"
    return LLMRequest(
        style=ctx.llm.prompt_style,
        model=ctx.llm.model,
        messages=messages,
        prompt=prompt,
        temperature=ctx.llm.temperature,
        top_p=ctx.llm.top_p,
        max_tokens=effective_max_tokens(ctx.spec, ctx.llm),
        seed=seed,
        stop=tuple(ctx.spec.prompts.completion.stop) if completion else (),
        prompt_version=f"{ctx.spec.id}@{ctx.spec.prompts.version}",
    )


def _chat_messages(
    ctx: PromptContext,
    slots: dict[str, str],
    examples: Sequence[Example],
    turn: int,
    history: Sequence[Turn],
) -> tuple[ChatMessage, ...]:
    chat = ctx.spec.prompts.chat
    system = ChatMessage(role="system", content=chat.context.format(**slots))
    if ctx.mode == "few_shot":
        body = format_examples(examples, ctx.generation.few_shot_max_chars)
        user = chat.few_shot.format(**slots, examples=body)
        return (system, ChatMessage(role="user", content=user))
    follow_up = turn > 0 and turn % ctx.generation.diversity_every == 0
    user = (chat.diversity if follow_up else chat.generation).format(**slots)
    kept = list(history)[-ctx.generation.history_turns :] if ctx.generation.history_turns else []
    earlier = [
        message
        for past in kept
        for message in (
            ChatMessage(role="user", content=past.user),
            ChatMessage(role="assistant", content=past.assistant),
        )
    ]
    return (system, *earlier, ChatMessage(role="user", content=user))


def _completion_prompt(
    ctx: PromptContext, slots: dict[str, str], examples: Sequence[Example]
) -> str:
    completion = ctx.spec.prompts.completion
    if ctx.mode == "zero_shot":
        return _with_slot_lines(completion.zero_shot, slots)
    shown = "\n\n".join(
        completion.example.format(
            text=_clip(example.text, ctx.generation.few_shot_max_chars), label=slots["label"]
        )
        for example in examples
    )
    return completion.few_shot.format(**slots, examples=shown)


def _with_slot_lines(template: str, slots: dict[str, str]) -> str:
    """The rendered zero-shot template, with a `Style:` and a `Length:` line for the slots it does
    not place itself, just before its last line (the one the model continues)."""
    placed = template_fields(template)
    lines = [line.format(**slots) for name, line in _SLOT_LINES.items() if name not in placed]
    rendered = template.format(**slots)
    if not lines:
        return rendered
    head, newline, cue = rendered.rpartition("\n")
    return "\n".join([head, *lines, cue] if newline else [*lines, cue])


def last_user_message(request: LLMRequest) -> str:
    """The newest user turn of a chat request (what a conversation's history keeps)."""
    return next(m.content for m in reversed(request.messages) if m.role == "user")
