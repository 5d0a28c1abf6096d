from __future__ import annotations

import pytest

from llmsynth_core.ratelimit import RateLimits, TokenBucket


def test_requests_are_spaced_at_the_rate_after_a_one_second_burst() -> None:
    limits = RateLimits.from_limits(requests_per_minute=120, tokens_per_minute=None, now=0.0)
    waits = [limits.reserve(tokens=10, now=0.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])


def test_bucket_refills_with_time_but_never_past_capacity() -> None:
    bucket = TokenBucket.per_minute(60, now=0.0)
    assert bucket.reserve(1, now=0.0) == 0.0
    assert bucket.reserve(1, now=0.0) == pytest.approx(1.0)
    # An hour idle banks one second's worth, not an hour's.
    assert bucket.reserve(1, now=3600.0) == 0.0
    assert bucket.reserve(1, now=3600.0) == pytest.approx(1.0)


def test_token_limit_binds_on_big_requests_and_settling_refunds_the_overestimate() -> None:
    limits = RateLimits.from_limits(requests_per_minute=None, tokens_per_minute=6000, now=0.0)
    assert limits.reserve(100, now=0.0) == 0.0
    assert limits.reserve(300, now=0.0) == pytest.approx(3.0)  # 300 past the 100/s burst
    limits.settle(reserved_tokens=300, used_tokens=100, now=0.0)
    # Without the refund this would wait 4 s (100 + 300 + 100 booked against 100/s).
    assert limits.reserve(100, now=0.0) == pytest.approx(2.0)


def test_no_limits_never_wait() -> None:
    limits = RateLimits.from_limits(None, None, now=0.0)
    assert all(limits.reserve(10**6, now=0.0) == 0.0 for _ in range(100))


def test_a_non_positive_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="> 0"):
        TokenBucket.per_minute(0, now=0.0)
