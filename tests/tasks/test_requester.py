"""The request path: cache first, then budget, then rate limits, against a loopback server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from llmsynth_core.config import LLMConfig
from llmsynth_core.errors import BudgetExceeded
from llmsynth_core.llm_types import ChatMessage, LLMRequest
from tasks.budget import BudgetLedger
from tasks.llm_client import LLMClient
from tasks.ratelimit import RateLimiter
from tasks.request_cache import RequestCache
from tasks.requester import Requester
from tests.fakes.openai_server import FakeOpenAIServer


def _request(i: int) -> LLMRequest:
    return LLMRequest(
        style="chat",
        model="fake-model",
        messages=(ChatMessage(role="user", content=f"write sentence number {i}"),),
        max_tokens=20,
    )


async def _send(requester: Requester, n: int) -> float:
    started = time.monotonic()
    await asyncio.gather(*(requester(_request(i)) for i in range(n)))
    return time.monotonic() - started


def _requester(
    server: FakeOpenAIServer, tmp_path: Path, ledger: BudgetLedger, limiter: RateLimiter
) -> tuple[Requester, LLMClient, RequestCache]:
    client = LLMClient(server.base_url, timeout_s=10)
    cache = RequestCache(tmp_path / "cache.sqlite")
    llm = LLMConfig(output_price_per_mtok=1000.0)  # 20 tokens booked = $0.02 a request
    return Requester(client, cache, ledger, limiter, llm), client, cache


def test_requests_per_minute_limit_spaces_requests_and_cached_ones_skip_it(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[float, float]:
        with FakeOpenAIServer() as server:
            limiter = RateLimiter(requests_per_minute=120, tokens_per_minute=None)
            requester, client, cache = _requester(server, tmp_path, BudgetLedger(None), limiter)
            try:
                first = await _send(requester, 5)
                again = await _send(requester, 5)
                assert server.count() == 5
                assert requester.stats.sent == 5 and requester.stats.cached == 5
            finally:
                await client.aclose()
                cache.close()
        return first, again

    first, again = asyncio.run(scenario())
    # 2 per second after a burst of 2: the fifth request may start only 1.5 s in.
    assert first >= 1.45
    assert again < 1.0


def test_budget_counts_cached_replies_and_refuses_what_could_overrun(tmp_path: Path) -> None:
    async def scenario() -> None:
        with FakeOpenAIServer() as server:
            ledger = BudgetLedger(cap_usd=0.05)
            limiter = RateLimiter(None, None)
            requester, client, cache = _requester(server, tmp_path, ledger, limiter)
            try:
                for i in range(10):
                    try:
                        await requester(_request(i))
                    except BudgetExceeded:
                        break
                sent = server.count()
                # Each reply costs at most its booked $0.02; the cap allows two bookings.
                assert sent == 2
                assert 0 < ledger.spent_usd <= 0.05
                # A new ledger with the same cap: the two cached replies ($0.016 each) count,
                # so the next booking overruns again and nothing new is sent.
                fresh = Requester(client, cache, BudgetLedger(0.05), limiter, requester._llm)
                await fresh(_request(0))
                await fresh(_request(1))
                with pytest.raises(BudgetExceeded, match="max_cost_usd"):
                    for i in range(2, 10):
                        await fresh(_request(i))
                assert server.count() == sent
            finally:
                await client.aclose()
                cache.close()

    asyncio.run(scenario())
