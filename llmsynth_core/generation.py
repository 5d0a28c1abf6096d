"""Generating one label's synthetic examples until its quota is met.

Requests are issued in rounds by index; rows are judged in index order, so the accepted set is
the same on every run whatever order replies arrive in (and, with a request cache, on reruns).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

from llmsynth_core.costs import request_cost
from llmsynth_core.gates import QualityGates
from llmsynth_core.llm_types import LLMRequest, LLMResponse
from llmsynth_core.prompts import (
    PlannedRequest,
    PromptContext,
    Turn,
    last_user_message,
    plan_request,
)

Call = Callable[[LLMRequest], Awaitable[LLMResponse]]
Progress = Callable[[int, int], None]


class _Judge:
    """Judges replies strictly in index order, as soon as every earlier reply is in.

    Judging while later replies are still in flight overlaps the gates' CPU work with network
    waits; the order, and so the accepted set, is exactly that of judging after the round.
    """

    def __init__(self, ctx: PromptContext, endpoint_kind: str, on_progress: Progress | None):
        self.ctx = ctx
        self.target = ctx.generation.per_label
        self.endpoint_kind = endpoint_kind
        self.on_progress = on_progress
        self.gates = QualityGates(
            ctx.generation, {example.id: example.text for example in ctx.examples}
        )
        self.replies: dict[int, tuple[PlannedRequest, LLMResponse]] = {}
        self.rows: list[dict[str, Any]] = []
        self.accepted = 0
        self.next_index = 0

    def add(self, index: int, planned: PlannedRequest, response: LLMResponse) -> None:
        self.replies[index] = (planned, response)
        judged = self.next_index
        while self.next_index in self.replies:
            self._judge(*self.replies[self.next_index])
            self.next_index += 1
        if self.on_progress and self.next_index > judged:
            self.on_progress(self.accepted, self.target)

    def _judge(self, planned: PlannedRequest, response: LLMResponse) -> None:
        verdict = self.gates.judge(response.text, response.finish_reason, planned.example_ids)
        reason = verdict.reason if self.accepted < self.target or verdict.reason else "surplus"
        if reason is None:
            self.accepted += 1
            self.gates.accept(verdict.text)
        cost = request_cost(response.prompt_tokens, response.completion_tokens, self.ctx.llm)
        self.rows.append(_row(planned, response, verdict.text, reason, self.endpoint_kind, cost))


async def generate_label(
    ctx: PromptContext,
    call: Call,
    concurrency: int,
    endpoint_kind: str,
    on_progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """All attempted rows for one (task, mode, label); exactly `per_label` accepted if possible."""
    target = ctx.generation.per_label
    budget = math.ceil(target * ctx.generation.max_attempts_factor)
    judge = _Judge(ctx, endpoint_kind, on_progress)
    next_index = 0
    limit = asyncio.Semaphore(concurrency)
    while judge.accepted < target and next_index < budget:
        batch = range(next_index, min(budget, next_index + target - judge.accepted))
        next_index = batch.stop
        await _run_round(ctx, call, limit, batch, judge)
    return judge.rows


async def _run_round(
    ctx: PromptContext,
    call: Call,
    limit: asyncio.Semaphore,
    batch: range,
    judge: _Judge,
) -> None:
    """Send a round: independent requests in parallel, each conversation's turns in order."""
    chained = ctx.mode == "zero_shot" and ctx.llm.prompt_style == "chat"
    length = ctx.generation.conversation_length if chained else 1
    chains: dict[int, list[int]] = {}
    for index in batch:
        chains.setdefault(index // length, []).append(index)

    async def run_chain(indices: list[int]) -> None:
        # The limit holds a whole conversation, not one request: its turns go out back to back,
        # so a server that caches the last prompt (llama.cpp) evaluates only each new turn.
        # Requesting turn by turn interleaved the conversations, and every turn re-read the
        # whole history (turn 6 of a 64-token chat cost 4-6 s instead of under 1 s). As many
        # requests are in flight as before: a conversation has one at a time.
        async with limit:
            for index in indices:
                history = _history(judge.replies, index, length) if chained else []
                planned = plan_request(ctx, index, history)
                response = await call(planned.request)
                judge.add(index, planned, response)

    # Let every chain finish its request in flight before raising, so no reply already paid
    # for is dropped (a budget stop or a failed request in one chain ends the others cleanly).
    outcomes = await asyncio.gather(
        *(run_chain(indices) for indices in chains.values()), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _history(
    replies: dict[int, tuple[PlannedRequest, LLMResponse]], index: int, length: int
) -> list[Turn]:
    start = index - index % length
    turns = []
    for earlier in range(start, index):
        planned, response = replies[earlier]
        user = last_user_message(planned.request)
        turns.append(Turn(user=user, assistant=response.text.strip()))
    return turns


def _row(
    planned: PlannedRequest,
    response: LLMResponse,
    text: str,
    reason: str | None,
    endpoint_kind: str,
    cost_usd: float,
) -> dict[str, Any]:
    request = planned.request
    return {
        "task": planned.task_id,
        "mode": planned.mode,
        "label": planned.label,
        "text": text,
        "raw_text": response.text,
        "accepted": reason is None,
        "reject_reason": reason,
        "request_index": planned.index,
        "conversation": planned.conversation,
        "turn": planned.turn,
        "style": planned.style,
        "length": planned.length,
        "few_shot_ids": list(planned.example_ids),
        "model": request.model,
        "endpoint_kind": endpoint_kind,
        "prompt_version": request.prompt_version,
        "prompt_hash": request.prompt_hash(),
        "request_hash": request.request_hash(),
        "seed": request.seed if request.seed is not None else -1,
        "finish_reason": response.finish_reason,
        "prompt_tokens": response.prompt_tokens,
        "completion_tokens": response.completion_tokens,
        "latency_s": response.latency_s,
        # What the reply cost when it was bought; a rerun served from the cache pays nothing.
        "cost_usd": cost_usd,
    }
