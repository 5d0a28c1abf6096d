"""One label chunk's rounds through the Batch API, with the request cache, budget and store.

A round's requests first come from the request cache (live and batch replies are stored under
the same key, so neither mode pays for a reply the other bought); a batch left open by a killed
run is taken up again next; what is still unanswered goes out as one batch, or live when there
are fewer than `runtime.batch_min_requests`. Requests a batch did not answer (failed, expired)
are submitted again, never the answered ones. A batch's worst-case cost is booked on the budget
before it is created and settled when its results are downloaded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openai.types import Batch

from llmsynth_core.config import LLMConfig, RuntimeConfig
from llmsynth_core.costs import request_estimate
from llmsynth_core.errors import GenerationError
from llmsynth_core.hashing import stable_hash
from llmsynth_core.llm_types import LLMRequest, LLMResponse
from tasks.batch_client import TERMINAL, BatchClient, endpoint_path
from tasks.batch_store import BatchStore, Intent
from tasks.budget import BudgetLedger
from tasks.llm_client import response_from_body
from tasks.progress import ProgressArtifact, reporter
from tasks.requester import Requester

# A request still unanswered after this many batches fails the chunk: the endpoint keeps
# rejecting it, and another day's wait would not help (an expiry or two under load would).
MAX_SUBMISSIONS = 5


@dataclass
class BatchStats:
    """What a chunk sent which way, for progress lines and the closing note."""

    created: int = 0  # batches created by this process
    resumed: int = 0  # batches a killed run had left, taken up again
    batched: int = 0  # requests answered through batches
    failed: int = 0  # requests a batch did not answer (submitted again)
    live: int = 0  # requests sent live (rounds below runtime.batch_min_requests)
    waited_s: float = 0.0


class BatchProgress:
    """A chunk's batches in the terminal and as a Prefect progress artifact: state,
    completed/failed counts and time waited (the artifact is made at the first batch)."""

    def __init__(self, key: str, name: str) -> None:
        self.key = key
        self.name = name
        self.line = ""
        self._artifact: ProgressArtifact | None = None
        self._done = 0
        self._total = 0

    def show(self, batch: Batch, waited_s: float) -> None:
        counts = batch.request_counts
        completed, failed = (counts.completed, counts.failed) if counts else (0, 0)
        total = counts.total if counts and counts.total else 0
        minutes, seconds = divmod(int(waited_s), 60)
        self.line = (
            f"batch {batch.status}: {completed}/{total} done, {failed} failed, "
            f"waited {minutes}m{seconds:02d}s"
        )
        reporter.update(self.name, None, self.line)
        if self._artifact is None:
            self._artifact = ProgressArtifact(self.key, f"{self.name} (batches)")
        final = batch.status in TERMINAL
        done, all_ = self._done + completed + failed, self._total + total
        self._artifact.update(done, max(all_, 1), final=final, description=self.line)
        if final:
            self._done, self._total = done, all_

    async def finish(self) -> None:
        if self._artifact is not None:
            await self._artifact.finish(self._done, max(self._total, 1))


class BatchRequester:
    """Answers a round's requests (`batch_sender`'s CallMany), replies in request order."""

    def __init__(
        self,
        requester: Requester,
        client: BatchClient,
        store: BatchStore,
        ledger: BudgetLedger,
        llm: LLMConfig,
        runtime: RuntimeConfig,
        chunk_key: str,
        progress: BatchProgress | None = None,
    ) -> None:
        self._requester = requester
        self._client = client
        self._store = store
        self._ledger = ledger
        self._llm = llm
        self._runtime = runtime
        self._chunk_key = chunk_key
        self._progress = progress
        self.stats = BatchStats()

    async def __call__(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        replies: dict[str, LLMResponse] = {}
        missing: dict[str, LLMRequest] = {}
        for request in requests:
            key = request.request_hash()
            if key in replies or key in missing:
                continue
            hit = self._requester.cached(request)
            if hit is None:
                missing[key] = request
            else:
                replies[key] = hit
        if missing:
            replies.update(await self._take_up_open(missing))
            replies.update(await self._send(_without(missing, replies)))
        return [replies[request.request_hash()] for request in requests]

    async def _send(self, missing: dict[str, LLMRequest]) -> dict[str, LLMResponse]:
        replies: dict[str, LLMResponse] = {}
        errors: dict[str, str] = {}
        for _ in range(MAX_SUBMISSIONS):
            if not missing:
                return replies
            if len(missing) < self._runtime.batch_min_requests:
                replies.update(await self._live(list(missing.values())))
                return replies
            answered, errors = await self._complete(None, list(missing.values()))
            replies.update(answered)
            missing = _without(missing, answered)
        if not missing:
            return replies
        sample = "; ".join(sorted(set(errors.values()))[:3]) or "no reason given"
        raise GenerationError(
            f"{len(missing)} requests stayed unanswered after {MAX_SUBMISSIONS} batches at "
            f"{self._client.base_url} ({sample}); every answered request is cached: fix the "
            "cause and rerun, or drop --batch to send the rest live"
        )

    async def _take_up_open(self, missing: dict[str, LLMRequest]) -> dict[str, LLMResponse]:
        """Finish the batches a killed run left open that hold some of these requests."""
        replies: dict[str, LLMResponse] = {}
        for intent in self._store.intents(self._chunk_key):
            if intent.finished:
                continue
            keys = set(self._store.request_states(intent.intent_id))
            if not keys & missing.keys():
                continue
            todo = [request for key, request in missing.items() if key in keys]
            if intent.batch_id is None and len(todo) != len(keys):
                # Never submitted, and some of its requests are answered by now: a new intent
                # for the rest is made below.
                found = await self._client.find(intent.intent_id)
                if found is None:
                    self._store.finish(intent.intent_id, "abandoned", [], [])
                    continue
            answered, _ = await self._complete(intent, todo)
            replies.update(answered)
        return replies

    async def _complete(
        self, intent: Intent | None, requests: list[LLMRequest]
    ) -> tuple[dict[str, LLMResponse], dict[str, str]]:
        """Submit the requests as a new intent's batch (intent None) or find an open intent's,
        wait for it and keep its answers. Its worst-case cost is booked before anything is
        written or submitted, and settled to what its answers cost."""
        by_key = {request.request_hash(): request for request in requests}
        estimate = sum(request_estimate(request, self._llm, batch=True) for request in requests)
        reservation = self._ledger.reserve(estimate)
        try:
            fresh = intent is None
            if intent is None:
                keyset = stable_hash([self._chunk_key, sorted(by_key)])
                endpoint = endpoint_path(requests[0])
                intent = self._store.open(self._chunk_key, keyset, endpoint, list(by_key))
            batch = await self._submitted(intent, requests, fresh)
            batch = await self._wait(batch)
            answered, errors = await self._download(batch, by_key)
        finally:
            # Each answer was charged by its request hash as it was kept (as a live reply is),
            # so the reservation goes with no charge of its own.
            self._ledger.settle(reservation, "", None)
        failed = set(by_key) - set(answered)
        self._store.finish(intent.intent_id, batch.status, answered, failed)
        self.stats.batched += len(answered)
        self.stats.failed += len(failed)
        if batch.status == "cancelled":
            # Someone cancelled it on purpose: stop rather than submit the rest again.
            raise GenerationError(
                f"batch {batch.id} at {self._client.base_url} was cancelled with {len(failed)} "
                "requests unanswered; its answers are cached. Rerun to submit the rest again, "
                "or drop --batch to send them live."
            )
        return answered, errors

    async def _submitted(self, intent: Intent, requests: list[LLMRequest], fresh: bool) -> Batch:
        if intent.batch_id is not None:
            self.stats.resumed += 1
            return await self._client.retrieve(intent.batch_id)
        if not fresh:
            # Killed between creating the batch and recording its id: the batch list knows.
            found = await self._client.find(intent.intent_id)
            if found is not None:
                self._store.record_batch(intent.intent_id, found.id)
                self.stats.resumed += 1
                return found
        file_id = intent.input_file_id
        if file_id is None:
            file_id = await self._client.upload(requests)
            self._store.record_file(intent.intent_id, file_id)
        batch = await self._client.create(intent.intent_id, file_id, intent.endpoint)
        self._store.record_batch(intent.intent_id, batch.id)
        self.stats.created += 1
        return batch

    async def _wait(self, batch: Batch) -> Batch:
        """Poll until the batch ends, waits doubling from batch_poll_s to batch_poll_max_s."""
        delay, started = self._runtime.batch_poll_s, time.monotonic()
        while True:
            waited = time.monotonic() - started
            if self._progress is not None:
                self._progress.show(batch, self.stats.waited_s + waited)
            if batch.status in TERMINAL:
                self.stats.waited_s += waited
                return batch
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._runtime.batch_poll_max_s)
            batch = await self._client.retrieve(batch.id)

    async def _download(
        self, batch: Batch, by_key: dict[str, LLMRequest]
    ) -> tuple[dict[str, LLMResponse], dict[str, str]]:
        """The batch's answers (cached and charged as they are read), and why the others
        failed."""
        answered: dict[str, LLMResponse] = {}
        errors: dict[str, str] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            for line in await self._client.lines(file_id) if file_id else []:
                key = line.get("custom_id")
                request = by_key.get(key) if isinstance(key, str) else None
                if request is None or key in answered:
                    continue
                response = line.get("response") or {}
                if response.get("status_code") == 200:
                    try:
                        reply = response_from_body(response.get("body"), request, batch=True)
                    except ValueError as exc:
                        errors[request.request_hash()] = str(exc)
                        continue
                    key = request.request_hash()
                    self._ledger.charge(key, self._requester.keep(request, reply))
                    answered[key] = reply
                else:
                    errors[request.request_hash()] = _line_error(line)
        if batch.errors and batch.errors.data:
            reason = "; ".join(f"{e.code}: {e.message}" for e in batch.errors.data[:3])
            errors.update({key: reason for key in by_key if key not in answered})
        for key in by_key:
            if key not in answered and key not in errors:
                errors[key] = f"batch {batch.status} without an answer"
        return answered, errors

    async def _live(self, requests: list[LLMRequest]) -> dict[str, LLMResponse]:
        """A small round live, `runtime.concurrency` at a time; every reply in flight is
        kept before a failure is raised."""
        limit = asyncio.Semaphore(self._runtime.concurrency)

        async def one(request: LLMRequest) -> LLMResponse:
            async with limit:
                return await self._requester(request)

        outcomes = await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
        replies: dict[str, LLMResponse] = {}
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            replies[request.request_hash()] = outcome
        self.stats.live += len(requests)
        return replies

    async def aclose(self) -> None:
        """Send the last progress and release the store."""
        try:
            if self._progress is not None:
                await self._progress.finish()
        finally:
            self._store.close()

    def summary(self) -> str:
        stats = self.stats
        return (
            f"{stats.created + stats.resumed} batches, {stats.batched} batched, "
            f"{stats.failed} failed, {stats.live} live"
        )


def _without(requests: dict[str, LLMRequest], answered: dict[str, Any]) -> dict[str, LLMRequest]:
    return {key: request for key, request in requests.items() if key not in answered}


def _line_error(line: dict[str, Any]) -> str:
    error = line.get("error") or {}
    response = line.get("response") or {}
    body = response.get("body") if isinstance(response, dict) else None
    if not error and isinstance(body, dict):
        error = body.get("error") or {}
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    status = response.get("status_code") if isinstance(response, dict) else None
    return f"{code or status or 'error'}: {str(message or '')[:200]}"
