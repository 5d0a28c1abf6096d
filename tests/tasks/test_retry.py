"""The retry policy on real Prefect task runs, sync and async (which evaluate it differently)."""

from __future__ import annotations

import asyncio

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from llmsynth_core.errors import GenerationError
from tasks.retry import transport_failures_only

pytestmark = pytest.mark.usefixtures("prefect_harness")


CALLS: list[str] = []  # module-level: Prefect copies flow parameters


def _failing(first: BaseException) -> int:
    CALLS.append(type(first).__name__)
    if len(CALLS) == 1:
        raise first
    return len(CALLS)


RETRIED = task(
    retries=2,
    retry_delay_seconds=0,
    retry_condition_fn=transport_failures_only,
    cache_policy=NO_CACHE,
)


@RETRIED
def sync_step(first: BaseException) -> int:
    return _failing(first)


@RETRIED
async def async_step(first: BaseException) -> int:
    await asyncio.sleep(0)
    return _failing(first)


@flow
def run_sync(first: BaseException) -> int:
    return sync_step(first)


@flow
def run_async(first: BaseException) -> int:
    async def call() -> int:
        return await async_step(first)

    return asyncio.run(call())


@pytest.mark.parametrize("runner", [run_sync, run_async], ids=["sync", "async"])
def test_a_transport_failure_is_retried(runner: object) -> None:
    CALLS.clear()
    assert runner(ConnectionResetError("peer went away")) == 2  # type: ignore[operator]


@pytest.mark.parametrize("runner", [run_sync, run_async], ids=["sync", "async"])
def test_a_problem_the_user_must_fix_is_not_retried(runner: object) -> None:
    CALLS.clear()
    with pytest.raises(GenerationError, match="bad key"):
        runner(GenerationError("bad key"))  # type: ignore[operator]
    assert CALLS == ["GenerationError"]
