"""One label chunk's way to the endpoint: request cache, budget, rate limits, then the client.

Order matters: a cached reply is free and skips the limits; a new request first books its
worst-case cost against the run's cap, then waits for the rate limits, and its reply is cached
before anything else can fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from llmsynth_core.config import ExperimentConfig, LLMConfig
from llmsynth_core.costs import reply_cost, request_cost, request_tokens
from llmsynth_core.llm_types import LLMRequest, LLMResponse
from tasks.budget import BudgetLedger
from tasks.coalesce import Coalescer
from tasks.llm_client import LLMClient
from tasks.ratelimit import RateLimiter, limiter_for
from tasks.request_cache import RequestCache
from tasks.state_db import state_db_url


@dataclass
class CallStats:
    """What a chunk has sent and spent so far (for progress displays)."""

    sent: int = 0
    cached: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @property
    def requests_per_s(self) -> float:
        return self.sent / max(time.monotonic() - self.started, 1e-9)


class Requester:
    def __init__(
        self,
        client: LLMClient,
        cache: RequestCache,
        ledger: BudgetLedger,
        limiter: RateLimiter,
        llm: LLMConfig,
    ) -> None:
        self.client = client
        self._cache = cache
        self._ledger = ledger
        self._limiter = limiter
        self._llm = llm
        self.stats = CallStats()
        # Lookups and writes of requests in flight together share a query or a transaction,
        # in a worker thread; a write is durable before its caller goes on, as one by one.
        self._lookups = Coalescer(cache.get_many)
        self._stores = Coalescer(cache.put_many)

    async def __call__(self, request: LLMRequest) -> LLMResponse:
        hit = await self._lookups(request.request_hash())
        if hit is not None:
            return self._served(request, hit)
        request_hash = request.request_hash()
        prompt_tokens = request_tokens(request)
        reserved_tokens = prompt_tokens + request.max_tokens
        estimate = request_cost(prompt_tokens, request.max_tokens, self._llm)
        reservation = self._ledger.reserve(estimate)
        try:
            await self._limiter.acquire(reserved_tokens)
            response = await self.client.complete(request)
        except BaseException:
            self._ledger.settle(reservation, request_hash, None)
            raise
        await self._stores((request_hash, response))
        cost = self._count(response)
        self._ledger.settle(reservation, request_hash, cost)
        used = response.prompt_tokens + response.completion_tokens
        self._limiter.settle(reserved_tokens, used)
        return response

    def cached(self, request: LLMRequest) -> LLMResponse | None:
        """The reply already bought for this request, charged to the ledger at the price paid
        for it (live or batch), or None."""
        hit = self._cache.get(request.request_hash())
        return None if hit is None else self._served(request, hit)

    def _served(self, request: LLMRequest, hit: LLMResponse) -> LLMResponse:
        self._ledger.charge(request.request_hash(), reply_cost(hit, self._llm))
        self.stats.cached += 1
        return hit

    def keep(self, request: LLMRequest, response: LLMResponse) -> float:
        """Cache a reply just bought (live or from a batch) and count it; returns its cost."""
        self._cache.put(request.request_hash(), response)
        return self._count(response)

    def _count(self, response: LLMResponse) -> float:
        cost = reply_cost(response, self._llm)
        self.stats.sent += 1
        self.stats.tokens += response.prompt_tokens + response.completion_tokens
        self.stats.cost_usd += cost
        return cost


@asynccontextmanager
async def open_requester(
    config: ExperimentConfig,
    state_dir: Path,
    base_url: str,
    ledger: BudgetLedger,
    llm: LLMConfig | None = None,
) -> AsyncIterator[Requester]:
    """A Requester on the run's request cache (in the state database; by default a file in
    `state_dir`) and the endpoint's shared limiter; closes both. `llm` (key, prices) defaults
    to the generator's; the annotator panel passes its own."""
    cache = RequestCache(state_db_url(config.runtime.state_db, state_dir))
    llm, runtime = llm or config.llm, config.runtime
    client = LLMClient(
        base_url=base_url,
        api_key=None if llm.is_embedded else os.environ.get(llm.api_key_env),
        api_key_env=llm.api_key_env,
        timeout_s=runtime.request_timeout_s,
        transport=runtime.http_client,
    )
    limiter = limiter_for(
        base_url, llm.model, runtime.requests_per_minute, runtime.tokens_per_minute
    )
    try:
        yield Requester(client, cache, ledger, limiter, llm)
    finally:
        await client.aclose()
        cache.close()
