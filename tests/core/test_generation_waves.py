"""The shared wave loop: live and batch senders make the same requests and accept the same rows."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from llmsynth_core.config import GenerationConfig, LLMConfig
from llmsynth_core.generation import (
    batch_sender,
    generate_label,
    generate_label_in_waves,
    live_sender,
)
from llmsynth_core.llm_types import LLMRequest, LLMResponse
from llmsynth_core.prompts import Example, PromptContext, plan_request
from llmsynth_core.taskspec import TaskSpec

Script = Callable[[int], str]
REFUSAL = "I'm sorry, but I can't help with that."


def _ctx(
    spec: TaskSpec, mode: str = "zero_shot", examples: Sequence[Example] = (), **gen: Any
) -> PromptContext:
    return PromptContext(
        spec=spec,
        llm=LLMConfig(input_price_per_mtok=1.0, output_price_per_mtok=2.0),
        generation=GenerationConfig(**gen),
        mode=mode,  # type: ignore[arg-type]
        label="World",
        examples=examples,
    )


class Endpoint:
    """Replies by request index (recovered from the seed), live one by one or a step at once."""

    def __init__(self, ctx: PromptContext, script: Script, batch: bool = False) -> None:
        self.index_of_seed = {plan_request(ctx, i).request.seed: i for i in range(600)}
        self.script = script
        self.batch = batch
        self.requests: dict[int, LLMRequest] = {}
        self.calls: list[list[int]] = []

    def _reply(self, request: LLMRequest) -> LLMResponse:
        index = self.index_of_seed[request.seed]
        assert index not in self.requests, f"request {index} sent twice"
        self.requests[index] = request
        return LLMResponse(
            text=self.script(index),
            finish_reason="stop",
            prompt_tokens=100,
            completion_tokens=10,
            batch=self.batch,
        )

    async def one(self, request: LLMRequest) -> LLMResponse:
        self.calls.append([self.index_of_seed[request.seed]])
        await asyncio.sleep(0)
        return self._reply(request)

    async def many(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        self.calls.append([self.index_of_seed[r.seed] for r in requests])
        await asyncio.sleep(0)
        return [self._reply(request) for request in requests]


def _every_third_refused(index: int) -> str:
    return REFUSAL if index % 3 == 1 else f"Dispatch {index}: border talks resume in Geneva."


def _both(
    ctx: PromptContext, script: Script, concurrency: int = 3
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Endpoint, Endpoint]:
    live, batch = Endpoint(ctx, script), Endpoint(ctx, script, batch=True)
    live_rows = asyncio.run(generate_label_in_waves(ctx, live_sender(live.one, concurrency), "x"))
    batch_rows = asyncio.run(generate_label_in_waves(ctx, batch_sender(batch.many), "x"))
    return live_rows, batch_rows, live, batch


def _without_cost(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "cost_usd"} for row in rows]


@pytest.mark.parametrize("mode", ["zero_shot", "few_shot"])
def test_live_and_batch_accept_exactly_the_same_rows(
    ag_news: TaskSpec, world_pool: list[Example], mode: str
) -> None:
    ctx = _ctx(ag_news, mode, world_pool, per_label=12, conversation_length=4)
    live_rows, batch_rows, live, batch = _both(ctx, _every_third_refused)
    assert _without_cost(live_rows) == _without_cost(batch_rows)
    # The very same requests, zero-shot histories included.
    assert live.requests == batch.requests
    assert sum(row["accepted"] for row in batch_rows) == 12
    # Refusals made a follow-up wave necessary, so the test covers more than one wave.
    assert len(batch_rows) > 12


def test_batch_replies_cost_the_batch_price(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, "zero_shot", per_label=4)
    live_rows, batch_rows, _, _ = _both(ctx, lambda i: f"Unique report {i} from the summit.")
    full = (100 * 1.0 + 10 * 2.0) / 1e6
    assert [row["cost_usd"] for row in live_rows] == pytest.approx([full] * 4)
    assert [row["cost_usd"] for row in batch_rows] == pytest.approx([full * 0.5] * 4)


def test_follow_up_batches_ask_for_the_shortfall_until_the_quota_is_exact(
    ag_news: TaskSpec, world_pool: list[Example]
) -> None:
    ctx = _ctx(ag_news, "few_shot", world_pool, per_label=9, max_attempts_factor=3.0)
    _, rows, _, batch = _both(ctx, _every_third_refused)
    # Few-shot requests are independent: each wave is one batch. Wave 0-8 accepts 6 (1, 4, 7
    # refused), wave 9-11 accepts 2 (10 refused), wave 12 accepts the last one.
    assert batch.calls == [list(range(9)), [9, 10, 11], [12]]
    assert sum(row["accepted"] for row in rows) == 9
    assert [row["request_index"] for row in rows] == list(range(13))


def test_zero_shot_batches_hold_one_turn_of_every_conversation(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=10, conversation_length=4, history_turns=4)
    _, rows, _, batch = _both(ctx, lambda i: f"Turn reply {i}: the harbour reopens today.")
    # Conversations 0-3, 4-7, 8-9: step k holds turn k of each, in conversation order.
    assert batch.calls == [[0, 4, 8], [1, 5, 9], [2, 6], [3, 7]]
    for index, request in batch.requests.items():
        start = index - index % 4
        history = [m.content for m in request.messages if m.role == "assistant"]
        expected = [f"Turn reply {j}: the harbour reopens today." for j in range(start, index)]
        assert history == expected
    assert len(rows) == 10 and all(row["accepted"] for row in rows)


def test_waves_stop_at_the_attempt_bound(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=4, max_attempts_factor=2.5, conversation_length=3)
    live_rows, batch_rows, live, batch = _both(ctx, lambda i: REFUSAL)
    bound = math.ceil(4 * 2.5)
    assert len(batch.requests) == len(live.requests) == bound
    assert _without_cost(live_rows) == _without_cost(batch_rows)
    assert not any(row["accepted"] for row in batch_rows)


def test_generate_label_is_the_live_sender(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=6, conversation_length=3)
    a, b = Endpoint(ctx, _every_third_refused), Endpoint(ctx, _every_third_refused)
    rows = asyncio.run(generate_label(ctx, a.one, 2, "x"))
    again = asyncio.run(generate_label_in_waves(ctx, live_sender(b.one, 2), "x"))
    assert rows == again and a.requests == b.requests


def test_a_sender_that_drops_replies_fails_loudly(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, "zero_shot", per_label=3, conversation_length=1)
    endpoint = Endpoint(ctx, lambda i: f"Report {i}.")

    async def short(requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        return (await endpoint.many(requests))[:-1]

    with pytest.raises(RuntimeError, match="3 requests got 2 replies"):
        asyncio.run(generate_label_in_waves(ctx, batch_sender(short), "x"))
