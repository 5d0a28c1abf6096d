"""A thin wrapper over the official `openai` client's Batch API: upload, create, poll, download.

Every call goes through `LLMClient`'s retry policy. Creating a batch is the one call a retry
could duplicate (the batch may exist although its reply was lost), so a retry first looks for
the batch by the intent id it carries in its metadata.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from typing import Any, Literal

import openai
from openai.types import Batch

from llmsynth_core.config import LLMConfig
from llmsynth_core.errors import GenerationError
from llmsynth_core.llm_types import LLMRequest
from tasks.llm_client import LLMClient, request_body

INTENT_KEY = "llmsynth_intent"
COMPLETION_WINDOW: Literal["24h"] = "24h"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_NO_BATCH_API_STATUS = frozenset({404, 405, 501})


class NoBatchAPI(GenerationError):
    """The endpoint has no Batch API."""


def endpoint_path(request: LLMRequest) -> str:
    """The path a batch's requests go to, as the Batch API names it."""
    return "/v1/chat/completions" if request.style == "chat" else "/v1/completions"


def batch_input(requests: Sequence[LLMRequest]) -> bytes:
    """The JSONL input file: one line per request, its request hash as the custom_id."""
    lines = (
        json.dumps(
            {
                "custom_id": request.request_hash(),
                "method": "POST",
                "url": endpoint_path(request),
                "body": request_body(request),
            },
            sort_keys=True,
        )
        for request in requests
    )
    return ("\n".join(lines) + "\n").encode()


def refuse_embedded(llm: LLMConfig) -> None:
    """Refuse runtime.batch before anything starts when the generator is the embedded server."""
    if llm.is_embedded:
        raise NoBatchAPI(
            "runtime.batch needs an endpoint with a Batch API (/v1/batches), and llm.endpoint "
            "'embedded' is the local llama.cpp server, which has none; drop --batch (or set "
            "runtime.batch: false) to generate live"
        )


def require_batch_api(llm: LLMConfig, timeout_s: float) -> None:
    """Refuse runtime.batch, before anything is submitted, where the generator's endpoint has
    no Batch API (the embedded server without asking; any other after GET /batches)."""
    refuse_embedded(llm)

    async def probe() -> None:
        api_key = os.environ.get(llm.api_key_env)
        async with LLMClient(
            llm.endpoint, api_key, timeout_s, api_key_env=llm.api_key_env, max_retries=2
        ) as client:
            await BatchClient(client).probe()

    asyncio.run(probe())


class BatchClient:
    """Batch API calls on one endpoint, sharing an `LLMClient`'s connection pool and retries."""

    def __init__(self, client: LLMClient) -> None:
        self._client = client
        self._sdk = client.sdk

    @property
    def base_url(self) -> str:
        return self._client.base_url

    async def probe(self) -> None:
        """Raise `NoBatchAPI`, before anything is submitted, unless GET /batches answers."""

        async def first_page() -> object:
            try:
                return await self._sdk.batches.list(limit=1)
            except openai.APIStatusError as exc:
                if exc.status_code in _NO_BATCH_API_STATUS:
                    raise NoBatchAPI(
                        f"{self.base_url} has no Batch API (GET {self.base_url}/batches answered "
                        f"HTTP {exc.status_code}); servers such as the embedded llama.cpp, vLLM "
                        "and Ollama have none. Drop --batch (or set runtime.batch: false) to "
                        "generate live."
                    ) from None
                raise

        await self._client.retrying("probing the Batch API", first_page)

    async def upload(self, requests: Sequence[LLMRequest]) -> str:
        """Upload the requests as a batch input file; returns its file id."""
        data = batch_input(requests)
        uploaded = await self._client.retrying(
            "uploading a batch input file",
            lambda: self._sdk.files.create(
                file=("llmsynth-batch.jsonl", data, "application/jsonl"), purpose="batch"
            ),
        )
        return uploaded.id

    async def create(self, intent_id: str, file_id: str, endpoint: str) -> Batch:
        """Create the batch for an intent, exactly once: a retry looks for it first."""
        attempts = 0

        async def create_once() -> Batch:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                found = await self.find(intent_id)
                if found is not None:
                    return found
            return await self._sdk.batches.create(
                completion_window=COMPLETION_WINDOW,
                endpoint=endpoint,  # type: ignore[arg-type]
                input_file_id=file_id,
                metadata={INTENT_KEY: intent_id},
            )

        return await self._client.retrying("creating a batch", create_once)

    async def find(self, intent_id: str) -> Batch | None:
        """The batch carrying this intent id in its metadata, from the endpoint's batch list."""

        async def search() -> Batch | None:
            async for batch in self._sdk.batches.list(limit=100):
                if (batch.metadata or {}).get(INTENT_KEY) == intent_id:
                    return batch
            return None

        return await self._client.retrying("listing batches", search)

    async def retrieve(self, batch_id: str) -> Batch:
        return await self._client.retrying(
            "polling a batch", lambda: self._sdk.batches.retrieve(batch_id)
        )

    async def lines(self, file_id: str) -> list[dict[str, Any]]:
        """The JSON lines of a batch's output or error file."""

        async def download() -> bytes:
            return (await self._sdk.files.content(file_id)).content

        raw = await self._client.retrying("downloading batch results", download)
        return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
