"""The fake server speaks the API well enough for the official `openai` client, sync and async."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAIServer, Fault, Reply

KEY = "sk-test-fake"


def _client(srv: FakeOpenAIServer, timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0, timeout=timeout)


def _chat(
    client: openai.OpenAI,
    content: str = "hello",
    *,
    seed: int | None = None,
    temperature: float = 1,
) -> str | None:
    completion = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": content}],
        seed=seed,
        temperature=temperature,
    )
    return completion.choices[0].message.content


def test_chat_completion_is_a_valid_sdk_object_with_usage() -> None:
    with FakeOpenAIServer() as srv, _client(srv) as client:
        completion = client.chat.completions.create(
            model="fake-model",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "write one review"},
            ],
        )
    choice = completion.choices[0]
    text = choice.message.content or ""
    assert completion.object == "chat.completion"
    assert completion.model == "fake-model"
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert 12 <= len(text.split()) <= 20
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 5  # "be brief" + "write one review"
    assert completion.usage.completion_tokens == len(text.split())
    assert completion.usage.total_tokens == 5 + len(text.split())


def test_default_responder_is_deterministic_and_distinct_per_request() -> None:
    with FakeOpenAIServer() as srv, _client(srv) as client:
        first = _chat(client, "alpha")
        again = _chat(client, "alpha")
        other = _chat(client, "beta")
        other_seed = _chat(client, "alpha", seed=7)
    assert first == again
    assert len({first, other, other_seed}) == 3


def test_default_responder_truncates_at_max_tokens() -> None:
    with FakeOpenAIServer() as srv, _client(srv) as client:
        completion = client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "x"}], max_tokens=3
        )
    assert completion.choices[0].finish_reason == "length"
    assert len((completion.choices[0].message.content or "").split()) == 3


def test_text_completion_endpoint() -> None:
    with FakeOpenAIServer() as srv, _client(srv) as client:
        completion = client.completions.create(model="fake-model", prompt="Once upon a time")
        assert srv.count("/v1/completions") == 1
        assert srv.count("/v1/chat/completions") == 0
    assert completion.object == "text_completion"
    assert completion.choices[0].text.startswith("Reply ")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 4


def test_models_list_follows_the_mutable_attribute() -> None:
    with FakeOpenAIServer(models=["a", "b"]) as srv, _client(srv) as client:
        assert [m.id for m in client.models.list()] == ["a", "b"]
        srv.models.append("c")
        assert [m.id for m in client.models.list()] == ["a", "b", "c"]


def test_scripted_responder_sees_kind_and_body() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def responder(kind: str, body: dict[str, Any]) -> Reply:
        seen.append((kind, body))
        return Reply(text="positive", finish_reason="stop", completion_tokens=1)

    with FakeOpenAIServer(responder) as srv, _client(srv) as client:
        assert _chat(client, "label this", temperature=0.3) == "positive"
    assert seen[0][0] == "chat"
    assert seen[0][1]["temperature"] == 0.3


def test_429_with_retry_after_surfaces_as_rate_limit_error() -> None:
    with FakeOpenAIServer() as srv, _client(srv) as client:
        srv.inject(Fault.status(429, retry_after=1, message="slow down"))
        with pytest.raises(openai.RateLimitError) as caught:
            _chat(client)
        assert srv.count() == 1
        assert _chat(client) is not None  # the fault was used up
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"
    assert "slow down" in caught.value.message


def test_status_faults_map_to_sdk_error_classes() -> None:
    with FakeOpenAIServer() as srv, _client(srv) as client:
        srv.inject(Fault.status(503), Fault.status(401), Fault.status(404))
        for expected in (
            openai.InternalServerError,
            openai.AuthenticationError,
            openai.NotFoundError,
        ):
            with pytest.raises(expected):
                _chat(client)


@pytest.mark.parametrize(
    ("fault", "timeout", "expected"),
    [
        (Fault.reset(), 5.0, openai.APIConnectionError),
        (Fault.delay(2.0), 0.3, openai.APITimeoutError),  # longer than the client's timeout
        (Fault.malformed(), 5.0, json.JSONDecodeError),
    ],
    ids=["reset", "delay", "malformed"],
)
def test_transport_faults_surface_as_sdk_errors_once(
    fault: Fault, timeout: float, expected: type[Exception]
) -> None:
    with FakeOpenAIServer() as srv, _client(srv, timeout=timeout) as client:
        srv.inject(fault)
        with pytest.raises(expected):
            _chat(client)
        assert _chat(client) is not None  # the fault was used up


def test_empty_and_refusal_faults_change_only_the_text() -> None:
    with FakeOpenAIServer() as srv, _client(srv) as client:
        srv.inject(Fault.empty(), Fault.refusal())
        assert _chat(client) == ""
        assert "can't help" in (_chat(client) or "")


def test_responder_can_return_a_fault() -> None:
    def responder(kind: str, body: dict[str, Any]) -> Reply:
        return Reply(fault=Fault.status(500))

    with (
        FakeOpenAIServer(responder) as srv,
        _client(srv) as client,
        pytest.raises(openai.InternalServerError),
    ):
        _chat(client)


def test_api_key_check_and_request_log_records_authorization() -> None:
    with FakeOpenAIServer(api_key=KEY) as srv:
        with _client(srv) as client:
            assert _chat(client, "hi") is not None
        wrong = openai.OpenAI(base_url=srv.base_url, api_key="sk-wrong", max_retries=0)
        with wrong, pytest.raises(openai.AuthenticationError):
            _chat(wrong)
        path, body, headers = srv.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert headers["authorization"] == f"Bearer {KEY}"


def test_known_models_only_gives_openai_style_404() -> None:
    with (
        FakeOpenAIServer(known_models_only=True) as srv,
        _client(srv) as client,
        pytest.raises(openai.NotFoundError) as caught,
    ):
        client.completions.create(model="nope", prompt="x")
    assert caught.value.code == "model_not_found"


def test_async_client_concurrent_requests_are_all_answered_and_counted() -> None:
    async def run(base_url: str) -> list[str | None]:
        async with openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0) as client:

            async def one(i: int) -> str | None:
                completion = await client.chat.completions.create(
                    model="fake-model", messages=[{"role": "user", "content": f"item {i}"}]
                )
                return completion.choices[0].message.content

            return await asyncio.gather(*(one(i) for i in range(20)))

    with FakeOpenAIServer(latency_s=0.05) as srv:
        texts = asyncio.run(run(srv.base_url))
        assert srv.count() == 20
        assert srv.count("/v1/chat/completions") == 20
        assert srv.count("/v1/models") == 0
    assert len(set(texts)) == 20


def test_counters_are_thread_safe_under_concurrent_sync_clients() -> None:
    with FakeOpenAIServer() as srv:
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                with _client(srv) as client:
                    for _ in range(5):
                        _chat(client)
            except BaseException as exc:  # surfaced below, so a failure can't hide
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert srv.count() == 40
        assert len(srv.requests) == 40


def test_base_url_requires_running_server() -> None:
    with pytest.raises(RuntimeError, match="context manager"):
        _ = FakeOpenAIServer().base_url
