"""Many awaited calls of a blocking function answered by one call on a batch, in a thread.

A reply's cache write used to be a transaction of its own on the event loop's thread: at
100,000 requests that was minutes of blocked loop. Callers that ask while a batch is being
answered form the next batch, so each waits at most for two batches, and a write is durable
when its caller resumes (as before), at a fraction of the transactions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`await coalescer(item)`: `many(items)` answers, in order, every item asked for while the
    previous call ran; a failure of `many` is raised to every caller of its batch."""

    def __init__(self, many: Callable[[list[K]], Sequence[V]]) -> None:
        self._many = many
        self._pending: list[tuple[K, asyncio.Future[V]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def __call__(self, item: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._drain is None:
            self._drain = asyncio.create_task(self._answer())
        # A cancelled caller leaves its item in the batch: a reply paid for is still stored.
        return await asyncio.shield(future)

    async def _answer(self) -> None:
        batch: list[tuple[K, asyncio.Future[V]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    answers = await asyncio.to_thread(self._many, [item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    future.set_result(answer)
        finally:
            self._drain = None
            for _, future in batch + self._pending:  # left unanswered only by a cancellation
                if not future.done():
                    future.cancel()
