"""Label chunks run in lanes: each lane (one endpoint) takes the next chunk as soon as its
last one ends, so a slow chunk never leaves another server idle."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from flows.generate import _run_lanes
from tasks.artifacts import ArtifactRef

# Chunk 0 is slow; the others are quick.
SECONDS = [0.3, 0.02, 0.02, 0.02, 0.02, 0.02]


def _ref(index: int) -> ArtifactRef:
    return ArtifactRef(uri=f"mem://{index}", schema_name="generations", rows=index, sha256="0")


@pytest.mark.usefixtures("prefect_harness")
def test_a_free_lane_takes_the_next_chunk_while_a_slow_one_runs() -> None:
    started: list[tuple[int, str]] = []

    def call(index: int, url: str) -> Coroutine[Any, Any, ArtifactRef]:
        async def run() -> ArtifactRef:
            started.append((index, url))
            await asyncio.sleep(SECONDS[index])
            return _ref(index)

        return run()

    refs = _run_lanes(len(SECONDS), ["a", "b"], call)
    assert [ref.rows for ref in refs] == list(range(len(SECONDS)))
    # While lane a ran the slow chunk 0, lane b ran every other chunk (waves would alternate).
    assert started[0] == (0, "a")
    assert [url for _, url in started[1:]] == ["b"] * (len(SECONDS) - 1)


@pytest.mark.usefixtures("prefect_harness")
def test_after_a_failure_no_new_chunk_starts_and_running_ones_finish() -> None:
    finished: list[int] = []

    def call(index: int, url: str) -> Coroutine[Any, Any, ArtifactRef]:
        async def run() -> ArtifactRef:
            if index == 1:
                raise RuntimeError("budget stop")
            await asyncio.sleep(SECONDS[index])
            finished.append(index)
            return _ref(index)

        return run()

    with pytest.raises(RuntimeError, match="budget stop"):
        _run_lanes(len(SECONDS), ["a", "b"], call)
    # Chunk 0 was running when chunk 1 failed: it finished; nothing after it started.
    assert finished == [0]
