"""Generating one label's rows against a scripted fake LLM call."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from llmsynth_core.config import GenerationConfig, LLMConfig
from llmsynth_core.generation import generate_label
from llmsynth_core.llm_types import LLMRequest, LLMResponse
from llmsynth_core.prompts import Example, PromptContext, plan_request
from llmsynth_core.taskspec import TaskSpec

Script = Callable[[int], str]
REFUSAL = "I'm sorry, but I can't help with that."
DUPLICATE = "This is the same text every time."


def _ctx(
    spec: TaskSpec, mode: str = "zero_shot", examples: Sequence[Example] = (), **gen: Any
) -> PromptContext:
    return PromptContext(
        spec=spec,
        llm=LLMConfig(),
        generation=GenerationConfig(**gen),
        mode=mode,  # type: ignore[arg-type]
        label="World",
        examples=examples,
    )


class ScriptedLLM:
    """A fake endpoint: replies by request index (recovered from the request seed)."""

    def __init__(self, ctx: PromptContext, script: Script, jitter: int | None = None) -> None:
        # The seed is drawn before the messages are rendered, so history does not change it.
        self.index_of_seed = {plan_request(ctx, i).request.seed: i for i in range(500)}
        assert len(self.index_of_seed) == 500
        self.script = script
        self.jitter = random.Random(jitter) if jitter is not None else None
        self.requests: dict[int, LLMRequest] = {}
        self.arrivals: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: LLMRequest) -> LLMResponse:
        index = self.index_of_seed[request.seed]
        assert index not in self.requests, f"request {index} sent twice"
        self.requests[index] = request
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.jitter is not None:
                await asyncio.sleep(self.jitter.random() * 0.004)
        finally:
            self.in_flight -= 1
        self.arrivals.append(index)
        return LLMResponse(text=self.script(index), finish_reason="stop", completion_tokens=9)


def _run(ctx: PromptContext, llm: ScriptedLLM, concurrency: int = 1) -> list[dict[str, Any]]:
    return asyncio.run(generate_label(ctx, llm, concurrency, "fake"))


def _mixed(index: int) -> str:
    if index % 3 == 1:
        return REFUSAL
    if index % 3 == 2:
        return DUPLICATE
    return f"Story number {index}: a summit ends without agreement."


def test_quota_is_met_exactly_and_no_extra_requests_are_sent(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=5, max_attempts_factor=3.0)
    llm = ScriptedLLM(ctx, _mixed)
    rows = _run(ctx, llm)

    # By hand: round 0-4 accepts 0, 2 (first duplicate text), 3; round 5-6 accepts 6;
    # 7 is a refusal, 8 a repeated duplicate, 9 accepted -> quota of 5 after 10 requests.
    assert [row["request_index"] for row in rows] == list(range(10))
    assert sorted(llm.requests) == list(range(10))
    assert [row["request_index"] for row in rows if row["accepted"]] == [0, 2, 3, 6, 9]
    assert {row["request_index"]: row["reject_reason"] for row in rows if not row["accepted"]} == {
        1: "refusal",
        4: "refusal",
        5: "duplicate",
        7: "refusal",
        8: "duplicate",
    }
    accepted = [row for row in rows if row["accepted"]]
    assert accepted[1]["text"] == DUPLICATE
    assert accepted[0]["text"] == "Story number 0: a summit ends without agreement."
    assert all(row["label"] == "World" and row["task"] == "ag_news" for row in rows)
    assert all(row["endpoint_kind"] == "fake" and row["seed"] >= 0 for row in rows)


def test_all_good_replies_need_exactly_per_label_requests(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=7)
    llm = ScriptedLLM(ctx, lambda i: f"Unique report {i} on the ceasefire talks.")
    rows = _run(ctx, llm)
    assert len(rows) == 7 and all(row["accepted"] for row in rows)
    assert len(llm.requests) == 7


def test_shortfall_stops_at_the_attempt_budget(ag_news: TaskSpec) -> None:
    # ceil(3 * 2.5) = 8; truncating instead of rounding up would give 7.
    ctx = _ctx(ag_news, per_label=3, max_attempts_factor=2.5)
    llm = ScriptedLLM(ctx, lambda i: REFUSAL)
    rows = _run(ctx, llm)
    assert len(llm.requests) == 8
    assert [row["request_index"] for row in rows] == list(range(8))
    assert not any(row["accepted"] for row in rows)
    assert {row["reject_reason"] for row in rows} == {"refusal"}
    assert all(row["raw_text"] == REFUSAL for row in rows)


def test_partial_shortfall_keeps_what_was_accepted(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=4, max_attempts_factor=2.0)
    llm = ScriptedLLM(
        ctx,
        lambda i: "Leaders meet in Geneva today." if i % 2 else "LEADERS meet in Geneva, today!",
    )
    rows = _run(ctx, llm)
    assert len(rows) == 8 == len(llm.requests)
    assert [row["request_index"] for row in rows if row["accepted"]] == [0]
    assert [row["reject_reason"] for row in rows[1:]] == ["duplicate"] * 7


@pytest.mark.parametrize("mode", ["zero_shot", "few_shot"])
def test_rows_are_in_index_order_and_identical_under_concurrency(
    ag_news: TaskSpec, world_pool: list[Example], mode: str
) -> None:
    ctx = _ctx(
        ag_news,
        mode,
        examples=world_pool,
        per_label=10,
        max_attempts_factor=3.0,
        conversation_length=4,
    )
    serial = _run(ctx, ScriptedLLM(ctx, _mixed))
    runs, fakes = [], []
    for jitter in (1, 2):
        llm = ScriptedLLM(ctx, _mixed, jitter=jitter)
        runs.append(_run(ctx, llm, concurrency=4))
        fakes.append(llm)

    indices = [row["request_index"] for row in serial]
    assert indices == sorted(indices) == list(range(len(serial)))
    assert runs[0] == runs[1] == serial
    assert sum(row["accepted"] for row in serial) == 10
    # The test only means something if replies really overlapped and arrived out of order.
    assert all(1 < llm.max_in_flight <= 4 for llm in fakes)
    assert any(llm.arrivals != sorted(llm.arrivals) for llm in fakes)
    if mode == "few_shot":
        assert all(len(row["few_shot_ids"]) == 3 for row in serial)


def test_zero_shot_conversations_carry_previous_replies(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=7, conversation_length=3, history_turns=4)
    llm = ScriptedLLM(ctx, lambda i: f"  Reply for request {i} about the summit.  ", jitter=3)
    rows = _run(ctx, llm, concurrency=3)
    assert len(rows) == 7

    for index, request in sorted(llm.requests.items()):
        start = index - index % 3
        messages = request.messages
        assert messages[0].role == "system"
        earlier = messages[1:-1]
        expected_assistants = [
            f"Reply for request {j} about the summit." for j in range(start, index)
        ]
        assert [m.content for m in earlier if m.role == "assistant"] == expected_assistants
        assert [m.content for m in earlier if m.role == "user"] == [
            llm.requests[j].messages[-1].content for j in range(start, index)
        ]
        assert [m.role for m in earlier] == ["user", "assistant"] * (index - start)
        assert rows[index]["conversation"] == index // 3
        assert rows[index]["turn"] == index % 3


def test_one_at_a_time_each_conversation_is_sent_whole_before_the_next(
    ag_news: TaskSpec,
) -> None:
    # A server that keeps the last prompt's cache (llama.cpp) evaluates only the new turn when
    # a conversation's turns arrive back to back; interleaved, every turn re-reads its history.
    ctx = _ctx(ag_news, per_label=9, conversation_length=3, history_turns=4)
    llm = ScriptedLLM(ctx, lambda i: f"Reply {i}: markets rally as a summit ends.", jitter=5)
    _run(ctx, llm, concurrency=1)
    assert llm.arrivals == list(range(9))


def test_conversations_overlap_up_to_the_concurrency(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=12, conversation_length=3, history_turns=4)
    llm = ScriptedLLM(ctx, lambda i: f"Reply {i}: markets rally as a summit ends.", jitter=7)
    _run(ctx, llm, concurrency=2)
    assert llm.max_in_flight == 2
    # Each conversation's turns still arrive in order.
    for start in range(0, 12, 3):
        turns = [i for i in llm.arrivals if start <= i < start + 3]
        assert turns == [start, start + 1, start + 2]


def test_few_shot_requests_are_independent(ag_news: TaskSpec, world_pool: list[Example]) -> None:
    ctx = _ctx(ag_news, "few_shot", examples=world_pool, per_label=4, conversation_length=2)
    llm = ScriptedLLM(ctx, lambda i: f"Unique dispatch {i} from the border region.")
    rows = _run(ctx, llm, concurrency=2)
    pool_ids = {example.id for example in world_pool}
    for index, request in llm.requests.items():
        assert [m.role for m in request.messages] == ["system", "user"]
        assert set(rows[index]["few_shot_ids"]) <= pool_ids


def test_progress_is_reported_as_replies_are_judged(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=5, max_attempts_factor=3.0)
    seen: list[tuple[int, int]] = []
    llm = ScriptedLLM(ctx, _mixed)
    rows = asyncio.run(
        generate_label(ctx, llm, 1, "fake", lambda done, want: seen.append((done, want)))
    )
    # One request in flight at a time: each reply is judged, and reported, on arrival.
    assert len(seen) == len(rows) == 10
    accepted_so_far = [sum(r["accepted"] for r in rows[: i + 1]) for i in range(len(rows))]
    assert seen == [(n, 5) for n in accepted_so_far]
    assert seen[-1] == (5, 5)


def test_rows_carry_request_provenance(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=2)
    llm = ScriptedLLM(ctx, lambda i: f"Unique report {i} on the ceasefire talks.")
    rows = _run(ctx, llm)
    for row in rows:
        request = llm.requests[row["request_index"]]
        assert row["request_hash"] == request.request_hash()
        assert row["prompt_hash"] == request.prompt_hash() != request.request_hash()
        assert row["seed"] == request.seed
        assert row["prompt_version"] == "ag_news@1"
        assert row["completion_tokens"] == 9


def test_a_conversation_split_across_rounds_keeps_its_history(ag_news: TaskSpec) -> None:
    # Round one is requests 0-4 (request 1 is refused), so round two is request 5 alone: the
    # last turn of the conversation of 3 and 4, whose replies were judged in round one.
    ctx = _ctx(ag_news, per_label=5, conversation_length=3, history_turns=4)
    llm = ScriptedLLM(ctx, lambda i: REFUSAL if i == 1 else f"Reply {i}: the summit ends.")
    rows = _run(ctx, llm, concurrency=2)
    assert [row["request_index"] for row in rows] == list(range(6))
    assistants = [m.content for m in llm.requests[5].messages if m.role == "assistant"]
    assert assistants == ["Reply 3: the summit ends.", "Reply 4: the summit ends."]


def test_rows_handed_to_a_sink_are_the_rows_otherwise_returned(ag_news: TaskSpec) -> None:
    ctx = _ctx(ag_news, per_label=6, max_attempts_factor=3.0, conversation_length=2)
    returned = _run(ctx, ScriptedLLM(ctx, _mixed, jitter=4), concurrency=3)
    streamed: list[dict[str, Any]] = []
    llm = ScriptedLLM(ctx, _mixed, jitter=5)
    assert asyncio.run(generate_label(ctx, llm, 3, "fake", on_row=streamed.append)) == []
    assert streamed == returned


def test_a_round_keeps_only_concurrency_coroutines_and_runs_every_chain_after_a_failure(
    ag_news: TaskSpec,
) -> None:
    ctx = _ctx(ag_news, per_label=40, conversation_length=1)
    scripted = ScriptedLLM(ctx, lambda i: f"Unique report {i} on the ceasefire talks.", jitter=6)
    alive: list[int] = []

    async def call(request: LLMRequest) -> LLMResponse:
        alive.append(len(asyncio.all_tasks()))
        index = scripted.index_of_seed[request.seed]
        if index in (9, 3):
            await asyncio.sleep(0.01 if index == 3 else 0)  # 9 fails first, 3 is raised
            raise ValueError(f"request {index} failed")
        return await scripted(request)

    with pytest.raises(ValueError, match="request 3 failed"):
        asyncio.run(generate_label(ctx, call, 4, "fake"))
    # Under a gather over the whole round, each of its 40 requests had a waiting task.
    assert max(alive) <= 4 + 1
    assert sorted(scripted.requests) == sorted(set(range(40)) - {3, 9})
