"""Real generation from the embedded models served by llama.cpp (slow: starts the server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmsynth_core.config import GenerationConfig, LLMConfig
from llmsynth_core.generation import generate_label
from llmsynth_core.prompts import PromptContext
from llmsynth_core.registry import load_registry
from tasks.llm_client import LLMClient
from tasks.llm_server import embedded_endpoints, served_models
from tests.slow.stack import free_ports

pytestmark = pytest.mark.slow


async def _generate(ctx: PromptContext, base_url: str) -> list[dict[str, object]]:
    async with LLMClient(base_url=base_url, timeout_s=120) as client:
        return await generate_label(ctx, client.complete, concurrency=1, endpoint_kind="embedded")


@pytest.mark.parametrize(
    ("embedded", "style", "task", "label", "servers"),
    [
        # Two single-threaded servers side by side, as runtime.parallel_chunks=2 starts them.
        ("smollm2-135m-instruct", "chat", "tweet_irony", "irony", 2),
        ("gemma3-270m", "completion", "ag_news", "Sports", 1),
    ],
)
def test_embedded_model_generates_real_text(
    embedded: str, style: str, task: str, label: str, servers: int, tmp_path: Path
) -> None:
    spec = load_registry()[task]
    llm = LLMConfig(model=embedded, embedded_model=embedded, prompt_style=style, max_tokens=48)  # type: ignore[arg-type]
    generation = GenerationConfig(modes=["zero_shot"], per_label=2, max_attempts_factor=8)
    ctx = PromptContext(spec, llm, generation, "zero_shot", label)
    port = free_ports(servers)
    with embedded_endpoints(embedded, port=port, count=servers, cache_dir=tmp_path) as urls:
        assert len(urls) == servers
        assert [served_models(p) for p in range(port, port + servers)] == [[embedded]] * servers
        rows = asyncio.run(_generate(ctx, urls[-1]))
    stopped = [served_models(p) for p in range(port, port + servers)]
    assert stopped == [None] * servers, "the servers we started must be stopped"
    accepted = [row for row in rows if row["accepted"]]
    assert len(accepted) == 2, rows
    texts = [str(row["text"]) for row in accepted]
    assert all(len(text.split()) >= 3 for text in texts)
    assert texts[0] != texts[1]
    assert all(int(row["completion_tokens"]) > 0 for row in rows)  # type: ignore[call-overload]
