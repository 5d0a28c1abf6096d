"""Coalescer: callers that ask in one turn of the event loop share a call of the batch function."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmsynth_core.llm_types import LLMResponse
from tasks.coalesce import Coalescer
from tasks.request_cache import RequestCache


def test_callers_asking_together_share_a_call_and_get_their_own_answers() -> None:
    calls: list[list[int]] = []

    def many(items: list[int]) -> list[int]:
        calls.append(items)
        return [item * 10 for item in items]

    async def main() -> list[int]:
        double = Coalescer(many)
        first = await asyncio.gather(*(double(i) for i in range(5)))
        return [*first, await double(7)]

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 70]
    # Asked in the same turn of the loop, the five share a call; a later caller has its own.
    assert calls == [[0, 1, 2, 3, 4], [7]]


def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_runs() -> None:
    def many(items: list[int]) -> list[int]:
        if 2 in items:
            raise ValueError("no 2")
        return items

    async def main() -> tuple[list[object], int]:
        same = Coalescer(many)
        together = await asyncio.gather(*(same(i) for i in (1, 2, 3)), return_exceptions=True)
        return together, await same(4)

    together, later = asyncio.run(main())
    assert all(isinstance(outcome, ValueError) for outcome in together)
    assert later == 4


def test_a_cancelled_caller_still_has_its_item_stored(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "cache.sqlite")
    reply = LLMResponse(text="kept", prompt_tokens=1, completion_tokens=1)

    async def main() -> None:
        store = Coalescer(cache.put_many)
        caller = asyncio.create_task(store(("h1", reply)))
        await asyncio.sleep(0)  # h1 is asked for
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await store(("h2", reply))  # runs after the first batch

    asyncio.run(main())
    assert cache.get_many(["h1", "h2", "h3"]) == [reply, reply, None]
