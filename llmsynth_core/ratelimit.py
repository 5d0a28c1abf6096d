"""Token buckets for an endpoint's requests-per-minute and tokens-per-minute limits.

Pure arithmetic on a clock the caller passes in; the async waiting lives in `tasks/`. A
reservation may drive a bucket below zero: the caller then waits until it would have refilled,
which keeps callers in arrival order without a queue.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`rate_per_s` refill, at most `capacity` banked."""

    rate_per_s: float
    capacity: float
    level: float
    updated: float

    @classmethod
    def per_minute(cls, limit: float, now: float) -> TokenBucket:
        """Bursts of at most one second's share: providers enforce per-minute limits over
        shorter windows too, so a whole minute's quota sent at once would earn 429s."""
        if limit <= 0:
            raise ValueError(f"a per-minute limit must be > 0; got {limit!r}")
        burst = max(1.0, limit / 60.0)
        return cls(rate_per_s=limit / 60.0, capacity=burst, level=burst, updated=now)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.capacity, self.level + elapsed * self.rate_per_s)
        self.updated = max(self.updated, now)

    def reserve(self, amount: float, now: float) -> float:
        """Take `amount` now; returns the seconds to wait before using it."""
        self._refill(now)
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate_per_s

    def refund(self, amount: float, now: float) -> None:
        """Give back what a reservation over-estimated (or take more when it under-estimated)."""
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)


@dataclass
class RateLimits:
    """Both limits of one endpoint; either may be absent."""

    requests: TokenBucket | None
    tokens: TokenBucket | None

    @classmethod
    def from_limits(
        cls, requests_per_minute: int | None, tokens_per_minute: int | None, now: float
    ) -> RateLimits:
        return cls(
            requests=TokenBucket.per_minute(requests_per_minute, now)
            if requests_per_minute
            else None,
            tokens=TokenBucket.per_minute(tokens_per_minute, now) if tokens_per_minute else None,
        )

    def reserve(self, tokens: int, now: float) -> float:
        """Seconds to wait before sending one request of about `tokens` tokens."""
        waits = [0.0]
        if self.requests is not None:
            waits.append(self.requests.reserve(1, now))
        if self.tokens is not None:
            waits.append(self.tokens.reserve(tokens, now))
        return max(waits)

    def settle(self, reserved_tokens: int, used_tokens: int, now: float) -> None:
        """Correct the token bucket once the reply says how many tokens were really used."""
        if self.tokens is not None:
            self.tokens.refund(reserved_tokens - used_tokens, now)
