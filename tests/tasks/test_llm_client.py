"""LLMClient against a real loopback server: retries only what is retryable, fails fast."""

from __future__ import annotations

import asyncio
import random
import socket
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import openai
import pytest

from llmsynth_core.config import load_experiment, preset_path
from llmsynth_core.errors import GenerationError
from llmsynth_core.llm_types import ChatMessage, LLMRequest, LLMResponse
from llmsynth_core.prompts import PromptContext, plan_request
from llmsynth_core.registry import load_registry
from tasks.llm_client import LLMClient, backoff_s, retry_after_s
from tests.fakes.openai_server import FakeOpenAIServer, Fault, Reply, echo_responder

T = TypeVar("T")
SECRET = "sk-test-SECRET123"
CHAT = "/v1/chat/completions"

CHAT_REQUEST = LLMRequest(
    style="chat",
    model="fake-model",
    messages=(
        ChatMessage(role="system", content="You write short product reviews."),
        ChatMessage(role="user", content="Write one positive review."),
    ),
    temperature=0.7,
    top_p=0.9,
    max_tokens=64,
    seed=11,
    stop=("\n\n",),
)
TEXT_REQUEST = LLMRequest(style="completion", model="fake-model", prompt="Review: great", seed=3)
# The SDK's two HTTP clients (runtime.http_client): transport failures must read the same.
TRANSPORTS = pytest.mark.parametrize("transport", ["aiohttp", "httpx"])


class RecordingSleep:
    """Stands in for asyncio.sleep: remembers each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _run(
    srv: FakeOpenAIServer,
    action: Callable[[LLMClient], Awaitable[T]],
    **kwargs: Any,
) -> tuple[T, RecordingSleep]:
    sleep = RecordingSleep()
    options: dict[str, Any] = {"api_key": SECRET, "timeout_s": 5.0, "sleep": sleep}
    options.update(kwargs)

    async def go() -> T:
        async with LLMClient(srv.base_url, **options) as client:
            return await action(client)

    return asyncio.run(go()), sleep


def _complete(srv: FakeOpenAIServer, request: LLMRequest = CHAT_REQUEST, **kwargs: Any) -> Any:
    return _run(srv, lambda client: client.complete(request), **kwargs)


def _fails(srv: FakeOpenAIServer, request: LLMRequest = CHAT_REQUEST, **kwargs: Any) -> str:
    """The error message; also checks the printed traceback adds no chained SDK error."""
    with pytest.raises(GenerationError) as caught:
        _complete(srv, request, **kwargs)
    printed = "".join(traceback.format_exception(caught.value))
    assert "During handling" not in printed and "direct cause" not in printed
    return str(caught.value)


# -- success --------------------------------------------------------------------------------


def test_chat_success_fills_every_response_field_and_sends_sampling_params() -> None:
    with FakeOpenAIServer() as srv:
        response, sleep = _complete(srv)
        _, body, headers = srv.requests[0]
    expected = echo_responder("chat", body).text
    assert isinstance(response, LLMResponse)
    assert response.text == expected
    assert response.finish_reason == "stop"
    assert response.prompt_tokens == 9  # whitespace words of both messages
    assert response.completion_tokens == len(expected.split())
    assert response.model == "fake-model"
    assert response.latency_s > 0
    assert sleep.delays == []
    assert body["messages"][0] == {"role": "system", "content": "You write short product reviews."}
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.9, 64)
    assert (body["seed"], body["stop"]) == (11, ["\n\n"])
    assert headers["authorization"] == f"Bearer {SECRET}"


def test_completion_style_uses_the_completions_endpoint() -> None:
    with FakeOpenAIServer() as srv:
        response, _ = _complete(srv, TEXT_REQUEST)
        assert srv.count("/v1/completions") == 1
        assert srv.count(CHAT) == 0
        body = srv.requests[0].body
    assert body["prompt"] == "Review: great"
    assert response.text == echo_responder("completion", body).text
    assert response.prompt_tokens == 2
    assert response.completion_tokens == len(response.text.split())


def test_missing_usage_reads_as_zero_tokens_and_length_finish_is_kept() -> None:
    def responder(kind: str, body: dict[str, Any]) -> Reply:
        return Reply(text="cut", finish_reason="length", prompt_tokens=0, completion_tokens=0)

    with FakeOpenAIServer(responder) as srv:
        response, _ = _complete(srv)
    assert (response.text, response.finish_reason) == ("cut", "length")
    assert (response.prompt_tokens, response.completion_tokens) == (0, 0)


def test_empty_and_refusal_texts_are_data_not_errors() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.empty(), Fault.refusal())
        empty, _ = _complete(srv)
        refusal, _ = _complete(srv)
        assert srv.count() == 2
    assert empty.text == ""
    assert "can't help" in refusal.text


def test_no_key_sends_a_placeholder_for_local_servers() -> None:
    with FakeOpenAIServer() as srv:
        _complete(srv, api_key=None)
        assert srv.requests[0].headers["authorization"] == "Bearer sk-no-key"


def test_list_models() -> None:
    with FakeOpenAIServer(models=["m1", "m2"]) as srv:
        models, _ = _run(srv, lambda client: client.list_models())
    assert models == ["m1", "m2"]


# -- retried failures -----------------------------------------------------------------------


def test_429_retry_after_is_honoured_then_success() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.status(429, retry_after=1))
        response, sleep = _complete(srv)
        assert srv.count(CHAT) == 2
    assert response.text
    assert sleep.delays == [1.0]


def test_429_retry_after_ms_takes_precedence() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.status(429, retry_after=9, retry_after_ms=250))
        _, sleep = _complete(srv)
    assert sleep.delays == [0.25]


def test_429_without_header_uses_jittered_backoff() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.status(429), Fault.status(429))
        _, sleep = _complete(srv, backoff_base_s=0.5)
        assert srv.count() == 3
    assert len(sleep.delays) == 2
    assert 0 <= sleep.delays[0] <= 0.5
    assert 0 <= sleep.delays[1] <= 1.0


def test_503_twice_then_success() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.status(503), Fault.status(503))
        response, sleep = _complete(srv, rng=random.Random(0))
        assert srv.count(CHAT) == 3
    assert response.text
    assert len(sleep.delays) == 2


@TRANSPORTS
def test_connection_reset_then_success(transport: str) -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.reset())
        response, sleep = _complete(srv, transport=transport)
        assert srv.count() == 2
    assert response.text
    assert len(sleep.delays) == 1


@TRANSPORTS
def test_delay_beyond_timeout_is_retried(transport: str) -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.delay(3.0))
        response, sleep = _complete(srv, timeout_s=0.3, transport=transport)
        assert srv.count() == 2
    assert response.text
    assert len(sleep.delays) == 1


def test_malformed_body_then_success() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.malformed())
        response, _ = _complete(srv, TEXT_REQUEST)
        assert srv.count() == 2
    assert response.text


def test_list_models_is_retried_too() -> None:
    with FakeOpenAIServer(models=["m1"]) as srv:
        srv.inject(Fault.status(502))
        models, _ = _run(srv, lambda client: client.list_models())
        assert srv.count("/v1/models") == 2
    assert models == ["m1"]


# -- fail fast ------------------------------------------------------------------------------


def test_401_fails_fast_names_the_env_var_and_never_the_key() -> None:
    # The fake echoes the rejected key in its error, as OpenAI does.
    with FakeOpenAIServer(api_key="sk-the-right-one") as srv:
        message = _fails(srv)
        assert srv.count() == 1
        assert SECRET in str(srv.requests[0].headers)  # the key really was sent
    assert "OPENAI_API_KEY" in message
    assert "set OPENAI_API_KEY to a valid key" in message
    assert "401" in message
    assert SECRET not in message


def test_403_names_a_custom_env_var() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.status(403, message=f"key {SECRET} lacks access"))
        message = _fails(srv, api_key_env="MY_LLM_KEY")
        assert srv.count() == 1
    assert "set MY_LLM_KEY to a valid key" in message
    assert SECRET not in message


def test_client_repr_hides_the_key() -> None:
    async def make() -> str:
        async with LLMClient("http://127.0.0.1:1/v1", SECRET, 1.0) as client:
            return repr(client)

    assert SECRET not in asyncio.run(make())


def test_404_fails_fast_naming_model_and_base_url() -> None:
    with FakeOpenAIServer(known_models_only=True, models=["served"]) as srv:
        message = _fails(srv)
        assert srv.count() == 1
        base_url = srv.base_url
    assert "'fake-model'" in message
    assert base_url in message
    assert "list_models" in message


@pytest.mark.parametrize("code", [400, 422])
def test_invalid_request_fails_fast(code: int) -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.status(code, message="top_p out of range"))
        message = _fails(srv)
        assert srv.count() == 1
    assert f"HTTP {code}" in message
    assert "top_p out of range" in message


# -- exhausted ------------------------------------------------------------------------------


def test_retries_exhausted_names_the_last_cause() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.status(500), Fault.status(503, message="overloaded"))
        message = _fails(srv, max_retries=1)
        assert srv.count() == 2
        assert srv.pending_faults() == 0
    assert "2 attempt(s)" in message
    assert "HTTP 503" in message
    assert "overloaded" in message


def test_zero_retries_means_exactly_one_call() -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.status(503))
        _fails(srv, max_retries=0)
        assert srv.count() == 1


@TRANSPORTS
def test_timeouts_exhausted_name_the_timeout(transport: str) -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.delay(3.0), Fault.delay(3.0))
        message = _fails(srv, max_retries=1, timeout_s=0.2, transport=transport)
    assert "timeout_s=0.2" in message
    assert "connection to" not in message


@TRANSPORTS
def test_dropped_connections_exhausted_name_the_connection_not_a_timeout(transport: str) -> None:
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.reset(), Fault.reset())
        message = _fails(srv, max_retries=1, transport=transport)
        base_url = srv.base_url
    assert f"last cause: connection to {base_url} failed (" in message
    assert "timeout" not in message.split("last cause:")[1].split(".")[0]


@TRANSPORTS
def test_unreachable_server_names_the_connection_failure(transport: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleep = RecordingSleep()

    async def go() -> None:
        url = f"http://127.0.0.1:{port}/v1"
        async with LLMClient(url, None, 2.0, sleep=sleep, transport=transport) as client:
            await client.complete(CHAT_REQUEST)

    with pytest.raises(GenerationError, match=r"connection to http://127\.0\.0\.1.* failed \("):
        asyncio.run(go())
    assert len(sleep.delays) == 6


# -- pure helpers ---------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped() -> None:
    rng = random.Random(1)
    samples = [backoff_s(10, 0.5, 30.0, rng) for _ in range(200)]
    assert all(0 <= s <= 30.0 for s in samples)
    assert max(samples) > 15  # spread over the whole window, not pinned to the cap
    assert all(0 <= backoff_s(0, 0.5, 30.0, rng) <= 0.5 for _ in range(50))


def test_retry_after_parsing() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_s({"retry-after": later}, now=now.timestamp()) == pytest.approx(7.0)
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None


def test_constructor_rejects_bad_runtime_settings() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        LLMClient("http://127.0.0.1:1/v1", timeout_s=0)
    with pytest.raises(ValueError, match="max_retries"):
        LLMClient("http://127.0.0.1:1/v1", max_retries=-1)


def test_each_task_sends_its_effective_max_tokens() -> None:
    """IMDB's spec sets max_tokens 448 for its long reviews; ag_news follows llm.max_tokens."""
    config = load_experiment(preset_path("paper"))
    registry = load_registry()
    sent = {}
    with FakeOpenAIServer() as srv:
        for task_id in ("imdb", "ag_news"):
            spec = registry[task_id]
            ctx = PromptContext(
                spec, config.llm, config.generation, "zero_shot", spec.label_names[0]
            )
            _complete(srv, plan_request(ctx, 0).request)
            sent[task_id] = srv.requests[-1].body["max_tokens"]
    assert config.llm.max_tokens == 256
    assert sent == {"imdb": 448, "ag_news": 256}


def test_the_configured_http_client_is_the_one_used() -> None:
    async def clients() -> list[type]:
        made = []
        for transport in ("aiohttp", "httpx"):
            async with LLMClient("http://127.0.0.1:1/v1", transport=transport) as client:
                made.append(type(client.sdk._client))
        return made

    aio, plain = asyncio.run(clients())
    assert issubclass(aio, openai.DefaultAioHttpClient)
    assert not issubclass(plain, openai.DefaultAioHttpClient)
    assert issubclass(plain, openai.DefaultAsyncHttpxClient)
