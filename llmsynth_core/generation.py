"""Generating one label's synthetic examples until its quota is met.

Requests are issued in waves by index, each asking for the label's shortfall; rows are judged
in index order, so the accepted set is the same on every run whatever order replies arrive in
(and, with a request cache, on reruns), and whether they were sent live or in batches.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from llmsynth_core.costs import reply_cost
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
# Answers a step's requests together (a Batch API), replies in the order of the requests.
CallMany = Callable[[Sequence[LLMRequest]], Awaitable[Sequence[LLMResponse]]]
Progress = Callable[[int, int], None]
Row = dict[str, Any]
RowSink = Callable[[Row], None]
T = TypeVar("T")


class LabelRun:
    """One label's requests, replies and verdicts; judges replies strictly in index order, as
    soon as every earlier reply is in.

    Judging while later replies are still in flight overlaps the gates' CPU work with network
    waits; the order, and so the accepted set, is exactly that of judging after the round.
    """

    def __init__(
        self,
        ctx: PromptContext,
        endpoint_kind: str,
        on_progress: Progress | None,
        on_row: RowSink | None = None,
    ):
        self.ctx = ctx
        self.target = ctx.generation.per_label
        self.endpoint_kind = endpoint_kind
        self.on_progress = on_progress
        self.gates = QualityGates(
            ctx.generation, {example.id: example.text for example in ctx.examples}
        )
        self.chained = ctx.mode == "zero_shot" and ctx.llm.prompt_style == "chat"
        self.conversation_length = ctx.generation.conversation_length if self.chained else 1
        self.replies: dict[int, tuple[PlannedRequest, LLMResponse]] = {}
        self.rows: list[Row] = []
        self.on_row = on_row or self.rows.append
        self.accepted = 0
        self.next_index = 0

    def plan(self, index: int) -> PlannedRequest:
        """Request `index`; a zero-shot chat turn needs its conversation's earlier replies."""
        history = _history(self.replies, index, self.conversation_length) if self.chained else []
        return plan_request(self.ctx, index, history)

    def chains(self, wave: range) -> Iterator[list[int]]:
        """The wave's requests by conversation, each in turn order (one each when unchained),
        made as they are taken: a wave is a run of indices, so a conversation's turns are
        consecutive."""
        length = self.conversation_length
        return (list(turns) for _, turns in itertools.groupby(wave, lambda i: i // length))

    def steps(self, wave: range) -> list[list[int]]:
        """The wave as rounds whose requests are all known up front: turn k of every
        conversation, after turn k-1 of each has its reply; independent requests in one."""
        chains = list(self.chains(wave))
        depth = max((len(chain) for chain in chains), default=0)
        return [[chain[k] for chain in chains if k < len(chain)] for k in range(depth)]

    def add(self, index: int, planned: PlannedRequest, response: LLMResponse) -> None:
        self.replies[index] = (planned, response)
        judged = self.next_index
        while self.next_index in self.replies:
            self._judge(*self.replies[self.next_index])
            self._forget(self.next_index)
            self.next_index += 1
        if self.on_progress and self.next_index > judged:
            self.on_progress(self.accepted, self.target)

    def _judge(self, planned: PlannedRequest, response: LLMResponse) -> None:
        verdict = self.gates.judge(response.text, response.finish_reason, planned.example_ids)
        reason = verdict.reason if self.accepted < self.target or verdict.reason else "surplus"
        if reason is None:
            self.accepted += 1
            self.gates.accept(verdict.text)
        cost = reply_cost(response, self.ctx.llm)
        self.on_row(_row(planned, response, verdict.text, reason, self.endpoint_kind, cost))

    def _forget(self, index: int) -> None:
        # A judged reply is kept only while a later turn of its conversation may still need it
        # as history; kept for the whole run, the replies of 25,000 requests held ~3 KB each.
        length = self.conversation_length
        if (index + 1) % length == 0:
            for turn in range(index + 1 - length, index + 1):
                self.replies.pop(turn, None)


# Sends one wave (a range of request indices) and adds every reply to the run.
Sender = Callable[[LabelRun, range], Awaitable[None]]


async def generate_label_in_waves(
    ctx: PromptContext,
    send: Sender,
    endpoint_kind: str,
    on_progress: Progress | None = None,
    on_row: RowSink | None = None,
) -> list[Row]:
    """All attempted rows for one (task, mode, label); exactly `per_label` accepted if possible.

    With `on_row`, each row goes to it in index order as soon as it is judged (to be written
    out in batches) and the returned list is empty.

    Each wave asks for the label's shortfall, until the quota or the attempt bound
    (per_label * max_attempts_factor) is reached. Which indices a wave holds depends only on
    the verdicts of earlier waves, so any sender (live or batch) that gets the same replies
    makes the same requests and accepts the same rows.
    """
    target = ctx.generation.per_label
    budget = math.ceil(target * ctx.generation.max_attempts_factor)
    run = LabelRun(ctx, endpoint_kind, on_progress, on_row)
    next_index = 0
    while run.accepted < target and next_index < budget:
        wave = range(next_index, min(budget, next_index + target - run.accepted))
        next_index = wave.stop
        await send(run, wave)
    return run.rows


async def generate_label(
    ctx: PromptContext,
    call: Call,
    concurrency: int,
    endpoint_kind: str,
    on_progress: Progress | None = None,
    on_row: RowSink | None = None,
) -> list[Row]:
    """`generate_label_in_waves` with requests sent live, `concurrency` at a time."""
    return await generate_label_in_waves(
        ctx, live_sender(call, concurrency), endpoint_kind, on_progress, on_row
    )


def live_sender(call: Call, concurrency: int) -> Sender:
    """Sends a wave request by request: independent requests in parallel, each conversation's
    turns in order."""

    async def send(run: LabelRun, wave: range) -> None:
        async def run_chain(indices: list[int]) -> None:
            # A worker holds a whole conversation, not one request: its turns go out back to
            # back, so a server that caches the last prompt (llama.cpp) evaluates only each new
            # turn. Requesting turn by turn interleaved the conversations, and every turn
            # re-read the whole history (turn 6 of a 64-token chat cost 4-6 s instead of under
            # 1 s). As many requests are in flight as before: a conversation has one at a time.
            for index in indices:
                planned = run.plan(index)
                run.add(index, planned, await call(planned.request))

        # Let every chain finish its request in flight before raising, so no reply already
        # paid for is dropped (a budget stop or a failed request in one chain ends the others
        # cleanly).
        await _run_each(run_chain, run.chains(wave), concurrency)

    return send


async def _run_each(run: Callable[[T], Awaitable[None]], items: Iterable[T], workers: int) -> None:
    """`run(item)` for every item, in order, `workers` at a time; then the first item's failure.

    What `gather(..., return_exceptions=True)` over all items does, with `workers` coroutines
    alive instead of one per item: a waiting coroutine held ~2 KB, 25,000 of them per chunk of
    a large round. Every item still runs after a failure, as under gather.
    """
    failures: list[tuple[int, Exception]] = []
    numbered = enumerate(items)

    async def worker() -> None:
        for position, item in numbered:
            try:
                await run(item)
            except Exception as exc:
                failures.append((position, exc))

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
    if failures:
        raise min(failures, key=lambda failure: failure[0])[1]


def batch_sender(call_many: CallMany) -> Sender:
    """Sends a wave step by step, each step's requests together (one batch per step): all
    of a wave's independent requests at once, a conversation's turns one step each."""

    async def send(run: LabelRun, wave: range) -> None:
        for step in run.steps(wave):
            planned = [run.plan(index) for index in step]
            replies = await call_many([p.request for p in planned])
            if len(replies) != len(planned):
                raise RuntimeError(f"{len(planned)} requests got {len(replies)} replies")
            for index, one, reply in zip(step, planned, replies, strict=True):
                run.add(index, one, reply)

    return send


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
) -> Row:
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
