"""A real OpenAI-compatible HTTP server on loopback, with scripted replies and injected faults.

Tests point the official `openai` client (or anything else that speaks the API) at
`srv.base_url`; nothing in the SDK is patched.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from tests.fakes.batch_api import FakeBatchAPI

FaultKind = Literal["status", "delay", "reset", "malformed", "empty", "refusal"]

REFUSAL_TEXT = "I'm sorry, but I can't help with that request."

# OpenAI's own (type, code) pairs, so SDK error parsing sees familiar bodies.
_ERROR_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour; build it with the class methods, e.g. `Fault.status(429)`."""

    kind: FaultKind
    status_code: int = 500
    message: str = ""
    retry_after: float | None = None
    retry_after_ms: int | None = None
    delay_s: float = 0.0
    text: str = ""

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        message: str = "",
    ) -> Fault:
        """An HTTP error with an OpenAI-format JSON body and optional Retry-After headers."""
        return cls(
            "status",
            status_code=code,
            message=message or f"fake server error {code}",
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
        )

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait before answering normally, long enough to trip a client timeout."""
        return cls("delay", delay_s=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Drop the connection (TCP reset) without sending any reply."""
        return cls("reset")

    @classmethod
    def malformed(cls) -> Fault:
        """Answer 200 with a truncated, unparsable JSON body."""
        return cls("malformed")

    @classmethod
    def empty(cls) -> Fault:
        """Answer 200 with an empty completion text."""
        return cls("empty")

    @classmethod
    def refusal(cls, text: str = REFUSAL_TEXT) -> Fault:
        """Answer 200 with a refusal as the completion text."""
        return cls("refusal", text=text)


@dataclass(frozen=True)
class Reply:
    """What a responder returns: a completion text, or a fault to act out instead."""

    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    fault: Fault | None = None


Responder = Callable[[str, dict[str, Any]], Reply]


class RecordedRequest(NamedTuple):
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


_ADJECTIVES = ("quiet", "bright", "careful", "sudden", "narrow", "gentle", "heavy", "plain")
_NOUNS = ("river", "ledger", "garden", "signal", "harbor", "lantern", "meadow", "archive")
_VERBS = ("follows", "reaches", "crosses", "records", "shelters", "answers", "frames", "greets")


def _word_count(text: str) -> int:
    return len(text.split())


def _prompt_text(kind: str, body: dict[str, Any]) -> str:
    if kind == "chat":
        return " ".join(str(m.get("content") or "") for m in body.get("messages") or [])
    prompt = body.get("prompt")
    return " ".join(prompt) if isinstance(prompt, list) else str(prompt or "")


def _last_user_text(kind: str, body: dict[str, Any]) -> str:
    if kind == "chat":
        users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
        return str(users[-1].get("content") or "") if users else ""
    return _prompt_text(kind, body)


def echo_responder(kind: str, body: dict[str, Any]) -> Reply:
    """Deterministic 16-word sentence keyed on the last user message and seed; obeys max_tokens."""
    key = json.dumps([_last_user_text(kind, body), body.get("seed")], sort_keys=True)
    digest = hashlib.sha256(key.encode()).digest()
    pick = [digest[i] % 8 for i in range(6)]
    words = (
        f"Reply {digest.hex()[:8]}: the {_ADJECTIVES[pick[0]]} {_NOUNS[pick[1]]} "
        f"{_VERBS[pick[2]]} the {_ADJECTIVES[pick[3]]} {_NOUNS[pick[4]]} near the "
        f"{_NOUNS[pick[5]]} while everyone watched closely today."
    ).split()
    limit = body.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(words):
        return Reply(text=" ".join(words[:limit]), finish_reason="length")
    return Reply(text=" ".join(words))


def _error_body(code: int, message: str) -> dict[str, Any]:
    err_type, err_code = _ERROR_KINDS.get(code, ("server_error", "server_error"))
    return {"error": {"message": message, "type": err_type, "param": None, "code": err_code}}


class FakeOpenAIServer:
    """OpenAI-compatible server in a background thread; use as a context manager.

    Faults from `inject` are used up one per request (any endpoint, in arrival order) before
    the responder is asked; `requests` logs every request, header names lower-cased.
    """

    def __init__(
        self,
        responder: Responder = echo_responder,
        *,
        models: Iterable[str] = ("fake-model",),
        latency_s: float = 0.0,
        api_key: str | None = None,
        known_models_only: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        batch_api: FakeBatchAPI | None = None,
        request_log: str | None = None,
    ) -> None:
        self.responder = responder
        # When set, each request's path and body are appended there as a JSON line as it
        # arrives: how a test counts the requests of a fake that runs as its own process.
        self.request_log = request_log
        # Loopback and an ephemeral port by default; a test host's address to serve a network.
        self.host = host
        self.bind_port = port
        # /v1/files and /v1/batches; without it they answer 404, as llama.cpp, vLLM and Ollama.
        self.batch_api = batch_api
        self.models: list[str] = list(models)
        self.latency_s = latency_s
        # When set, requests must carry `Authorization: Bearer <api_key>` or get a 401.
        self.api_key = api_key
        # When true, a model id not in `models` gets OpenAI's 404 model_not_found.
        self.known_models_only = known_models_only
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind (an ephemeral loopback port by default) and serve in a daemon thread."""
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        httpd = _Server((self.host, self.bind_port), handler)
        self._httpd = httpd
        self._stopping.clear()
        # A short poll keeps `stop` (and so every `with` block) from waiting the default 0.5 s.
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- scripting and inspection ----------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each is used up by the next request, before any normal reply."""
        with self._lock:
            self._faults.extend(faults)

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = None) -> int:
        """Number of requests received, optionally only those to exactly `path`."""
        with self._lock:
            return sum(1 for r in self._requests if path is None or r.path == path)

    def clear(self) -> None:
        """Forget logged requests and pending faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    # -- used by the handler ---------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self._requests.append(request)
            if self.request_log is not None:
                line = json.dumps({"path": request.path, "body": request.body}, sort_keys=True)
                with open(self.request_log, "a", encoding="utf-8") as log:
                    log.write(line + "\n")
            return self._faults.popleft() if self._faults else None

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    # The stdlib backlog of 5 drops bursts of concurrent connects, which clients see as resets.
    request_queue_size = 256
    daemon_threads = True
    # Handlers stuck in a delay fault must not hold up shutdown.
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    # Keep-alive, as real servers do; every reply therefore carries Content-Length.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Silence per-request stderr lines in test output.

    def do_GET(self) -> None:
        self._handle(body={})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Type", "").startswith("multipart/"):
            self._handle(body={}, raw=raw)  # a file upload
            return
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            self._record_and_send_error(400, "request body is not valid JSON")
            return
        if not isinstance(body, dict):
            self._record_and_send_error(400, "request body must be a JSON object")
            return
        self._handle(body=body)

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _record_and_send_error(self, code: int, message: str) -> None:
        self.fake._record(RecordedRequest(self._path(), {}, self._headers()))
        self._send_json(code, _error_body(code, message))

    def _handle(self, body: dict[str, Any], raw: bytes = b"") -> None:
        path = self._path()
        headers = self._headers()
        fault = self.fake._record(RecordedRequest(path, body, headers))
        try:
            self.fake._sleep(self.fake.latency_s)
            if fault is not None and self._act_out(fault):
                return
            if not self._authorized(headers):
                return
            if self.fake.batch_api is not None and path.startswith(("/v1/files", "/v1/batches")):
                self._batch_call(body, raw, headers.get("content-type", ""))
                return
            self._route(path, body, fault)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The client gave up (e.g. its timeout fired); nothing left to answer.

    def _authorized(self, headers: dict[str, str]) -> bool:
        expected = self.fake.api_key
        if expected is None:
            return True
        given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given == expected:
            return True
        # Echo the offending key as OpenAI does, so tests can check clients redact it.
        message = f"Incorrect API key provided: {given or '(none)'}."
        self._send_json(401, _error_body(401, message))
        return False

    def _route(self, path: str, body: dict[str, Any], fault: Fault | None) -> None:
        method = self.command
        if method == "GET" and path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                for m in list(self.fake.models)
            ]
            self._send_json(200, {"object": "list", "data": data})
        elif method == "POST" and path == "/v1/chat/completions":
            self._complete("chat", body, fault)
        elif method == "POST" and path == "/v1/completions":
            self._complete("completion", body, fault)
        else:
            self._send_json(404, _error_body(404, f"unknown endpoint {method} {path}"))

    def _batch_call(self, body: dict[str, Any], raw: bytes, content_type: str) -> None:
        assert self.fake.batch_api is not None

        def complete(kind: str, line_body: dict[str, Any]) -> dict[str, Any]:
            model = str(line_body.get("model") or "")
            return _completion_payload(kind, model, line_body, self.fake.responder(kind, line_body))

        code, payload = self.fake.batch_api.handle(
            self.command, self.path, body, raw, content_type, complete
        )
        if isinstance(payload, bytes):
            self._send_raw(code, payload)
        else:
            self._send_json(code, payload)

    def _act_out(self, fault: Fault) -> bool:
        """Perform a fault; True when the request is fully handled by it."""
        if fault.kind == "delay":
            self.fake._sleep(fault.delay_s)
            return False
        if fault.kind == "status":
            extra: dict[str, str] = {}
            if fault.retry_after is not None:
                extra["Retry-After"] = f"{fault.retry_after:g}"
            if fault.retry_after_ms is not None:
                extra["retry-after-ms"] = str(fault.retry_after_ms)
            body = _error_body(fault.status_code, fault.message)
            self._send_json(fault.status_code, body, extra)
            return True
        if fault.kind == "reset":
            self._reset_connection()
            return True
        if fault.kind == "malformed":
            self._send_raw(200, b'{"id": "cmpl-broken", "object": "chat.completion", "choices": [')
            return True
        return False  # empty / refusal change the text of a normal reply.

    def _reset_connection(self) -> None:
        # SO_LINGER with zero timeout makes close() send RST instead of a polite FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _complete(self, kind: str, body: dict[str, Any], fault: Fault | None) -> None:
        model = str(body.get("model") or "")
        if self.fake.known_models_only and model not in self.fake.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            self._send_json(404, _error_body(404, message))
            return
        reply = self.fake.responder(kind, body)
        if fault is not None and fault.kind in ("empty", "refusal"):
            reply = Reply(text=fault.text, finish_reason="stop")
        if reply.fault is not None:
            if self._act_out(reply.fault):
                return
            if reply.fault.kind in ("empty", "refusal"):
                reply = Reply(text=reply.fault.text, finish_reason="stop")
        self._send_json(200, _completion_payload(kind, model, body, reply))

    def _send_json(self, code: int, payload: object, extra: dict[str, str] | None = None) -> None:
        self._send_raw(code, json.dumps(payload).encode(), extra)

    def _send_raw(self, code: int, data: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _completion_payload(
    kind: str, model: str, body: dict[str, Any], reply: Reply
) -> dict[str, Any]:
    prompt_tokens = reply.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = _word_count(_prompt_text(kind, body))
    completion_tokens = reply.completion_tokens
    if completion_tokens is None:
        completion_tokens = _word_count(reply.text)
    choice: dict[str, Any] = {"index": 0, "finish_reason": reply.finish_reason, "logprobs": None}
    if kind == "chat":
        choice["message"] = {"role": "assistant", "content": reply.text, "refusal": None}
        object_name, id_prefix = "chat.completion", "chatcmpl"
    else:
        choice["text"] = reply.text
        object_name, id_prefix = "text_completion", "cmpl"
    return {
        "id": f"{id_prefix}-{hashlib.sha256(reply.text.encode()).hexdigest()[:12]}",
        "object": object_name,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fake",
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Serve the echo responder until killed: the fake as its own process, on a test host."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per reply")
    parser.add_argument("--request-log", help="append each request as a JSON line to this file")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        latency_s=args.latency, host=args.host, port=args.port, request_log=args.request_log
    ).start()
    print(f"serving {server.base_url}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
