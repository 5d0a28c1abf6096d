"""Requests/min and tokens/min limits of an endpoint, shared by every task in this process."""

from __future__ import annotations

import asyncio
import threading
import time

from llmsynth_core.ratelimit import RateLimits


class RateLimiter:
    """Thread-safe front of `RateLimits`: each event loop sleeps its own wait."""

    def __init__(self, requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
        self._limits = RateLimits.from_limits(
            requests_per_minute, tokens_per_minute, time.monotonic()
        )
        self._lock = threading.Lock()
        self.enabled = requests_per_minute is not None or tokens_per_minute is not None

    async def acquire(self, tokens: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            wait = self._limits.reserve(tokens, time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)

    def settle(self, reserved_tokens: int, used_tokens: int) -> None:
        if self.enabled:
            with self._lock:
                self._limits.settle(reserved_tokens, used_tokens, time.monotonic())


_limiters: dict[tuple[str, str, int | None, int | None], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(
    base_url: str, model: str, requests_per_minute: int | None, tokens_per_minute: int | None
) -> RateLimiter:
    """One limiter per endpoint and model: the provider counts all our requests together."""
    key = (base_url, model, requests_per_minute, tokens_per_minute)
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = RateLimiter(requests_per_minute, tokens_per_minute)
        return _limiters[key]
