"""OpenAI's Batch API for the loopback fake server: /v1/files and /v1/batches.

A created batch validates its input file, then plays out a `BatchPlan`: a number of polls
(validating, in_progress) before it ends completed, failed, expired or cancelled, with some
requests answered by error lines. Answers come from the server's responder, as live requests
would. `pause` holds one call of a kind (after the server has acted on it, before it answers)
until `resume`, so a test can kill a client at exactly that point.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

Outcome = Literal["completed", "failed", "expired", "cancelled"]
PausePoint = Literal["upload", "create", "retrieve", "content"]
# What the server returns for a call: a status and a JSON payload or raw bytes.
Answer = tuple[int, dict[str, Any] | bytes]
# (kind, body) -> completion payload dict; the server binds its responder into this.
Completer = Callable[[str, dict[str, Any]], dict[str, Any]]

_ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completion"}


@dataclass(frozen=True)
class BatchPlan:
    """How one created batch plays out."""

    polls: int = 2  # retrieves until it ends; before, validating then in_progress
    outcome: Outcome = "completed"
    # custom_ids answered by an error line (HTTP 500 in the line) instead of a completion.
    fail: Callable[[str], bool] | None = None
    # expired or cancelled: only the first n requests were answered (None: none).
    answered_first: int | None = None


@dataclass
class _Batch:
    id: str
    endpoint: str
    input_file_id: str
    metadata: dict[str, str]
    plan: BatchPlan
    lines: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    created_at: int
    polls_seen: int = 0
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "completed": 0, "failed": 0}
    )


class FakeBatchAPI:
    """State of the fake's files and batches; pass it to `FakeOpenAIServer(batch_api=...)`."""

    def __init__(self, plans: Iterable[BatchPlan] = (), default: BatchPlan = BatchPlan()) -> None:
        self.default = default
        self._plans: deque[BatchPlan] = deque(plans)
        self._lock = threading.Lock()
        self._files: dict[str, tuple[str, bytes]] = {}
        self._batches: dict[str, _Batch] = {}
        self._ids = itertools.count(1)
        self._pause: tuple[PausePoint, int] | None = None
        self._seen: Counter[str] = Counter()
        self.paused = threading.Event()
        self._release = threading.Event()

    # -- scripting and inspection ----------------------------------------------------------

    def plan(self, *plans: BatchPlan) -> None:
        """Queue plans, one per batch created from now on (then `default`)."""
        with self._lock:
            self._plans.extend(plans)

    def pause(self, point: PausePoint, nth: int = 1) -> None:
        """Hold the nth call of this kind (counted from now) until `resume`."""
        with self._lock:
            self._pause = (point, self._seen[point] + nth)
            self.paused.clear()
            self._release.clear()

    def resume(self) -> None:
        self._release.set()

    def batches(self) -> list[dict[str, Any]]:
        """Every created batch, oldest first: id, status, metadata, its custom_ids and those
        it answered with a completion."""
        with self._lock:
            return [
                {
                    "id": batch.id,
                    "status": batch.status,
                    "metadata": dict(batch.metadata),
                    "custom_ids": [line["custom_id"] for line in batch.lines],
                    "answered": [
                        line["custom_id"] for line in _jsonl(self._files[batch.output_file_id][1])
                    ]
                    if batch.output_file_id
                    else [],
                }
                for batch in self._batches.values()
            ]

    def resubmitted_answered(self) -> set[str]:
        """custom_ids submitted again after a batch had answered them (should stay empty)."""
        answered: set[str] = set()
        again: set[str] = set()
        for batch in self.batches():
            again |= answered & set(batch["custom_ids"])
            answered |= set(batch["answered"])
        return again

    def submitted(self) -> Counter[str]:
        """How many batches each custom_id was part of."""
        return Counter(cid for batch in self.batches() for cid in batch["custom_ids"])

    def answered(self) -> set[str]:
        """custom_ids some batch answered with a completion."""
        return {cid for batch in self.batches() for cid in batch["answered"]}

    def uploads(self) -> int:
        with self._lock:
            return sum(1 for name, _ in self._files.values() if name != "output")

    # -- used by the server's handler ------------------------------------------------------

    def handle(
        self,
        method: str,
        target: str,
        body: dict[str, Any],
        raw: bytes,
        content_type: str,
        complete: Completer,
    ) -> Answer:
        url = urlsplit(target)
        parts = url.path.rstrip("/").split("/")[2:]  # after "/v1"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if parts == ["files"] and method == "POST":
            return self._upload(raw, content_type)
        if len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            return self._content(parts[1])
        if parts == ["batches"] and method == "POST":
            return self._create(body, complete)
        if parts == ["batches"] and method == "GET":
            return self._list(query)
        if len(parts) == 2 and parts[0] == "batches" and method == "GET":
            return self._retrieve(parts[1], complete)
        if len(parts) == 3 and parts[0] == "batches" and parts[2] == "cancel":
            return self._cancel(parts[1], complete)
        return 404, _error(f"unknown endpoint {method} {url.path}")

    def _hold(self, point: PausePoint) -> None:
        with self._lock:
            self._seen[point] += 1
            hit = self._pause is not None and self._pause == (point, self._seen[point])
        if hit:
            self.paused.set()
            self._release.wait(timeout=120)

    def _upload(self, raw: bytes, content_type: str) -> Answer:
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields: dict[str, Any] = {}
        filename = "upload.jsonl"
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if name == "file":
                filename = part.get_filename() or filename
                fields["file"] = payload
            else:
                fields[str(name)] = payload.decode() if isinstance(payload, bytes) else payload
        if fields.get("purpose") != "batch" or not isinstance(fields.get("file"), bytes):
            return 400, _error("a batch input file needs purpose=batch and a file part")
        with self._lock:
            file_id = f"file-{next(self._ids):06d}"
            self._files[file_id] = (filename, fields["file"])
        self._hold("upload")
        return 200, _file_object(file_id, filename, fields["file"])

    def _content(self, file_id: str) -> Answer:
        with self._lock:
            found = self._files.get(file_id)
        if found is None:
            return 404, _error(f"no file {file_id}")
        self._hold("content")
        return 200, found[1]

    def _create(self, body: dict[str, Any], complete: Completer) -> Answer:
        endpoint = str(body.get("endpoint"))
        file_id = str(body.get("input_file_id"))
        if endpoint not in _ENDPOINTS or body.get("completion_window") != "24h":
            return 400, _error(f"unsupported endpoint {endpoint!r} or completion window")
        with self._lock:
            if file_id not in self._files:
                return 404, _error(f"no file {file_id}")
            lines, errors = _validate(self._files[file_id][1], endpoint)
            plan = self._plans.popleft() if self._plans else self.default
            batch = _Batch(
                id=f"batch_{next(self._ids):06d}",
                endpoint=endpoint,
                input_file_id=file_id,
                metadata={str(k): str(v) for k, v in (body.get("metadata") or {}).items()},
                plan=plan,
                lines=lines,
                errors=errors,
                created_at=int(time.time()),
            )
            batch.counts["total"] = len(lines)
            self._batches[batch.id] = batch
            view = self._view(batch)
        self._hold("create")
        return 200, view

    def _retrieve(self, batch_id: str, complete: Completer) -> Answer:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return 404, _error(f"no batch {batch_id}")
            if batch.status not in ("completed", "failed", "expired", "cancelled"):
                batch.polls_seen += 1
                self._advance(batch, complete)
            view = self._view(batch)
        self._hold("retrieve")
        return 200, view

    def _cancel(self, batch_id: str, complete: Completer) -> Answer:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return 404, _error(f"no batch {batch_id}")
            batch.plan = BatchPlan(polls=0, outcome="cancelled", answered_first=0)
            self._advance(batch, complete)
            return 200, self._view(batch)

    def _list(self, query: dict[str, str]) -> Answer:
        limit = int(query.get("limit", "20"))
        with self._lock:
            newest_first = list(reversed(self._batches.values()))
            after = query.get("after")
            if after is not None:
                ids = [batch.id for batch in newest_first]
                newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
            page = newest_first[:limit]
            data = [self._view(batch) for batch in page]
        return 200, {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(newest_first) > limit,
        }

    # -- the batch's life ------------------------------------------------------------------

    def _advance(self, batch: _Batch, complete: Completer) -> None:
        plan = batch.plan
        if batch.errors:
            batch.status = "failed"
            return
        if batch.polls_seen < plan.polls:
            batch.status = "in_progress"
            batch.counts["completed"] = len(batch.lines) * batch.polls_seen // (plan.polls + 1)
            return
        batch.status = plan.outcome
        if plan.outcome == "failed":
            batch.errors = [{"code": "server_error", "message": "the batch failed", "line": None}]
            return
        outputs, failures = [], []
        answered = len(batch.lines) if plan.outcome == "completed" else plan.answered_first or 0
        kind = _ENDPOINTS[batch.endpoint]
        for number, line in enumerate(batch.lines):
            custom_id = line["custom_id"]
            request_id = f"req_{hashlib.sha256(custom_id.encode()).hexdigest()[:12]}"
            if number >= answered:
                code = f"batch_{plan.outcome}"
                error = {"code": code, "message": f"this request was not run: batch {code}"}
                failures.append(_line(custom_id, None, error))
            elif plan.fail is not None and plan.fail(custom_id):
                body = _error("the fake failed this request")
                response = {"status_code": 500, "request_id": request_id, "body": body}
                failures.append(_line(custom_id, response, None))
            else:
                body = complete(kind, line["body"])
                response = {"status_code": 200, "request_id": request_id, "body": body}
                outputs.append(_line(custom_id, response, None))
        batch.output_file_id = self._store_output(outputs)
        batch.error_file_id = self._store_output(failures)
        batch.counts.update(completed=len(outputs), failed=len(failures))

    def _store_output(self, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        file_id = f"file-{next(self._ids):06d}"
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        self._files[file_id] = ("output", data)
        return file_id

    def _view(self, batch: _Batch) -> dict[str, Any]:
        ended = batch.status in ("completed", "failed", "expired", "cancelled")
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "completed_at": int(time.time()) if ended else None,
            "request_counts": dict(batch.counts),
            "metadata": dict(batch.metadata),
        }


def _validate(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input file's lines, and OpenAI-style errors if any line is unusable."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, text in enumerate(data.decode().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            errors.append({"code": "invalid_json", "message": "not JSON", "line": number})
            continue
        problem = None
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or custom_id in seen:
            problem = "custom_id missing or repeated"
        elif line.get("method") != "POST" or line.get("url") != endpoint:
            problem = f"method must be POST and url {endpoint}"
        elif not isinstance(line.get("body"), dict) or not line["body"].get("model"):
            problem = "body must be an object with a model"
        if problem:
            errors.append({"code": "invalid_request", "message": problem, "line": number})
        else:
            seen.add(custom_id)
            lines.append(line)
    if not lines and not errors:
        errors.append({"code": "empty_file", "message": "the input file is empty", "line": None})
    return lines, errors


def _jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(text) for text in data.decode().splitlines() if text.strip()]


def _line(
    custom_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None
) -> dict[str, Any]:
    line_id = f"batch_req_{hashlib.sha256(custom_id.encode()).hexdigest()[:12]}"
    return {"id": line_id, "custom_id": custom_id, "response": response, "error": error}


def _file_object(file_id: str, filename: str, data: bytes) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(data),
        "created_at": int(time.time()),
        "filename": filename,
        "purpose": "batch",
        "status": "processed",
    }


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}
