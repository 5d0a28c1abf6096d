"""Async adapter over the official `openai` client for any OpenAI-compatible endpoint.

The SDK's own retries are off (`max_retries=0`) so that one policy rules: transport failures
(429, 5xx, timeouts, dropped connections, malformed bodies) are retried with backoff, and
everything else fails at once with a `GenerationError` that says how to fix it.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import httpx
import openai

from llmsynth_core.config import HttpClient
from llmsynth_core.errors import GenerationError
from llmsynth_core.llm_types import LLMRequest, LLMResponse

T = TypeVar("T")

NO_KEY_PLACEHOLDER = "sk-no-key"
# 408 is the server saying our request timed out; treated like a client-side timeout.
_RETRYABLE_STATUS = frozenset({408, 429})
_MAX_SERVER_MESSAGE = 300


class _MalformedReply(Exception):
    """A 2xx reply whose body is not a usable completion."""


@dataclass(frozen=True)
class _Attempt:
    """Why one attempt failed in a retryable way, and any wait the server asked for."""

    cause: str
    retry_after_s: float | None = None


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, then `retry-after`), if any."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max_s, base_s * 2**attempt)]."""
    return rng.uniform(0.0, min(max_s, base_s * (2**attempt)))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default certificate verification context, built once per process.

    Loading the CA bundle costs about 0.1 s per client; a run with many label chunks, or a rerun
    served from the cache, paid it once per chunk.
    """
    return httpx.create_ssl_context()


def _body(request: LLMRequest) -> dict[str, object]:
    """The JSON body of a request; unset seed and stop are left out, not sent as null."""
    body: dict[str, object] = {
        "model": request.model,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    if request.style == "chat":
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    else:
        body["prompt"] = request.prompt or ""
    if request.seed is not None:
        body["seed"] = request.seed
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def request_body(request: LLMRequest) -> dict[str, object]:
    """The JSON body the endpoint gets for a request (also a Batch API input line's body)."""
    return _body(request)


def response_from_body(body: object, request: LLMRequest, batch: bool = False) -> LLMResponse:
    """A reply from a completion's JSON body (a Batch API output line); ValueError if unusable."""
    try:
        response = _response_from_json(body, request, 0.0)
    except _MalformedReply as exc:
        raise ValueError(f"unusable completion body ({exc})") from None
    return response.model_copy(update={"batch": batch})


def _response_from_json(body: object, request: LLMRequest, latency_s: float) -> LLMResponse:
    """The reply in a chat.completion or text_completion body, read as the SDK's models read
    it (a chat reply's text is its content, else its refusal) without building them: ~65 us a
    reply of CPU, which on a CPU-bound machine is requests/s."""
    kind = "chat.completion" if request.style == "chat" else "text_completion"
    try:
        if not isinstance(body, dict):
            raise TypeError(f"a JSON {type(body).__name__}, not an object")
        choice = body["choices"][0]
        if request.style == "chat":
            message = choice["message"]
            text = message.get("content") or message.get("refusal") or ""
        else:
            text = choice.get("text") or ""
        usage = body.get("usage") or {}
        return LLMResponse(
            text=text,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            latency_s=latency_s,
            model=body.get("model") or request.model,
        )
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise _MalformedReply(f"{kind} without a usable choice ({exc})") from exc


# The SDK's two HTTP clients, with its defaults (timeouts, pool limits, redirects). aiohttp,
# the SDK's documented choice for high concurrency, parses HTTP in C: ~0.5 ms less CPU a
# request than httpx's pure-Python h11 (bench/generation.py), which on a CPU-bound machine is
# requests/s.
_HTTP_CLIENTS: dict[HttpClient, Callable[..., Any]] = {
    "aiohttp": openai.DefaultAioHttpClient,
    "httpx": openai.DefaultAsyncHttpxClient,
}


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _is_connection_error(cause: BaseException) -> bool:
    """A failure to connect, or a connection lost, as opposed to a reply that did not come."""
    timeouts = (asyncio.TimeoutError, aiohttp.ServerTimeoutError)
    return isinstance(cause, aiohttp.ClientConnectionError | OSError) and not isinstance(
        cause, timeouts
    )


class LLMClient:
    """Calls one OpenAI-compatible endpoint with our retry policy; use as an async context manager.

    The underlying HTTP pool belongs to the event loop that first uses it, so make one client
    per loop.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        *,
        max_retries: int = 6,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        retry_after_max_s: float = 120.0,
        api_key_env: str = "OPENAI_API_KEY",
        transport: HttpClient = "aiohttp",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 seconds; got {timeout_s!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0; got {max_retries!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.api_key_env = api_key_env
        self._key_given = api_key is not None
        self._secret = api_key or ""
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key if api_key is not None else NO_KEY_PLACEHOLDER,
            timeout=timeout_s,
            max_retries=0,
            http_client=_HTTP_CLIENTS[transport](verify=_ssl_context()),
        )

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()

    def __repr__(self) -> str:
        # Never show the key, not even in debug output.
        return f"LLMClient(base_url={self.base_url!r}, timeout_s={self.timeout_s!r})"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """One completion, chat or text style; latency is that of the attempt that succeeded."""
        if request.style == "chat":
            return await self._with_retries(
                "chat completion", request.model, lambda: self._chat(request)
            )
        return await self._with_retries("completion", request.model, lambda: self._text(request))

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves (GET /models)."""
        return await self._with_retries("listing models", None, self._models)

    @property
    def sdk(self) -> openai.AsyncOpenAI:
        """The underlying SDK client (its own retries off), for calls wrapped in `retrying`."""
        return self._client

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """`call` under this client's retry policy: transport failures retried with backoff,
        anything else a `GenerationError` that says what to fix."""
        return await self._with_retries(what, None, call)

    # Both post the body we build through the SDK's documented low-level `post`: the same client,
    # transport, timeouts and error types as `chat.completions.create`, without `create`
    # re-walking its typed parameters on every call (a quarter of the client's CPU per request,
    # measured with bench/generation.py), and read the reply's JSON without the SDK's models.
    async def _chat(self, request: LLMRequest) -> LLMResponse:
        return await self._post("/chat/completions", request)

    async def _text(self, request: LLMRequest) -> LLMResponse:
        return await self._post("/completions", request)

    async def _post(self, path: str, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        content = await self._client.post(path, cast_to=bytes, body=_body(request))
        return _response_from_json(json.loads(content), request, time.perf_counter() - started)

    async def _models(self) -> list[str]:
        return [model.id async for model in self._client.models.list()]

    async def _with_retries(
        self,
        what: str,
        model: str | None,
        call: Callable[[], Awaitable[T]],
    ) -> T:
        last = _Attempt("no attempt made")
        for attempt in range(self.max_retries + 1):
            try:
                return await call()
            except openai.APIStatusError as exc:
                if exc.status_code not in _RETRYABLE_STATUS and exc.status_code < 500:
                    # `from None`: the SDK error's text may echo the key back from the server.
                    raise self._fatal(exc, what, model) from None
                last = self._status_attempt(exc)
            except openai.APIConnectionError as exc:
                last = self._connection_attempt(exc)
            except (
                json.JSONDecodeError,
                openai.APIResponseValidationError,
                _MalformedReply,
            ) as exc:
                last = _Attempt(f"malformed response body ({self._redact(str(exc))})")
            if attempt < self.max_retries:
                await self._sleep(self._delay(attempt, last))
        attempts = self.max_retries + 1
        raise GenerationError(
            f"{what} against {self.base_url} failed after {attempts} attempt(s); last cause: "
            f"{last.cause}. Check that the server is up and not overloaded, or raise "
            "max_retries / timeout_s."
        )

    def _delay(self, attempt: int, last: _Attempt) -> float:
        if last.retry_after_s is not None:
            return min(last.retry_after_s, self.retry_after_max_s)
        return backoff_s(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)

    def _connection_attempt(self, exc: openai.APIConnectionError) -> _Attempt:
        # The SDK's aiohttp transport reports every aiohttp connection error (a refused
        # connect, a dropped one) as a connect timeout: the error it wraps tells them apart.
        cause = _root_cause(exc)
        if isinstance(exc, openai.APITimeoutError) and not _is_connection_error(cause):
            return _Attempt(f"no reply within timeout_s={self.timeout_s:g}")
        reason = type(cause).__name__ if cause is not exc else "connection error"
        return _Attempt(f"connection to {self.base_url} failed ({reason})")

    def _status_attempt(self, exc: openai.APIStatusError) -> _Attempt:
        code = exc.status_code
        detail = self._server_message(exc)
        if code == 429:
            wait = retry_after_s(exc.response.headers)
            return _Attempt(f"HTTP 429 rate limited ({detail})", retry_after_s=wait)
        return _Attempt(f"HTTP {code} from the server ({detail})")

    def _fatal(self, exc: openai.APIStatusError, what: str, model: str | None) -> GenerationError:
        code = exc.status_code
        detail = self._server_message(exc)
        if code in (401, 403):
            no_key = "" if self._key_given else " (no key was given, so a placeholder was sent)"
            return GenerationError(
                f"{what}: {self.base_url} rejected the API key{no_key} (HTTP {code}: {detail}); "
                f"set {self.api_key_env} to a valid key"
                + (f" with access to model {model!r}" if code == 403 and model else "")
            )
        if code == 404:
            subject = f"the model id {model!r} or " if model else ""
            return GenerationError(
                f"{what}: HTTP 404 from {self.base_url} ({detail}); {subject}the base URL "
                f"{self.base_url!r} is wrong. List the served model ids with "
                f"LLMClient.list_models() (GET {self.base_url}/models), and check the base URL "
                "ends in /v1."
            )
        return GenerationError(
            f"{what}: {self.base_url} rejected the request"
            + (f" for model {model!r}" if model else "")
            + f" (HTTP {code}: {detail}); check that the server supports the sampling "
            "parameters sent (temperature, top_p, max_tokens, seed, stop)."
        )

    def _server_message(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        text = str(message) if message else exc.message
        return self._redact(text)[:_MAX_SERVER_MESSAGE]

    def _redact(self, text: str) -> str:
        # Servers (OpenAI included) may echo the offending key back in error messages.
        return text.replace(self._secret, "***") if self._secret else text
