"""Rich progress bars for long work, shared by every task running in this process."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import prefect.runtime.flow_run
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

# Each artifact update costs the Prefect server about 40 ms of CPU (an UPDATE plus an event; on
# SQLite, measured with py-spy in bench/generation.py), which on a shared machine comes out of
# the generation's own budget: update each progress artifact at most this often.
_ARTIFACT_INTERVAL_S = 10.0
_log = logging.getLogger(__name__)


class Reporter:
    """No-op until `live()` is entered (by the CLI); tests and workers stay quiet."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._ids: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    @contextmanager
    def live(self, console: Console | None = None) -> Iterator[None]:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            transient=False,
        )
        with progress:
            self._progress = progress
            try:
                yield
            finally:
                self._progress = None
                self._ids.clear()

    def add(self, name: str, total: int) -> None:
        with self._lock:
            if self._progress is not None and name not in self._ids:
                self._ids[name] = self._progress.add_task(name, total=total, detail="")

    def update(self, name: str, completed: int | None, detail: str | None = None) -> None:
        """Move a bar to `completed` (None: leave it) and set its detail text (None: keep it)."""
        with self._lock:
            if self._progress is not None and name in self._ids:
                task_id = self._ids[name]
                if detail is None:
                    self._progress.update(task_id, completed=completed)
                else:
                    self._progress.update(task_id, completed=completed, detail=detail)

    def finish(self, name: str, total: int) -> None:
        self.add(name, total)
        self.update(name, total)


reporter = Reporter()


class ProgressArtifact:
    """A Prefect progress artifact (shown on the flow run's page); a no-op outside a flow run."""

    def __init__(self, key: str, name: str) -> None:
        self.name = name
        self._id: UUID | None = None
        self._last = 0.0
        self._pending: tuple[float, str | None] | None = None
        self._description: str | None = None
        self._sender: asyncio.Task[None] | None = None
        if prefect.runtime.flow_run.id:
            # Artifact keys allow lowercase letters, digits and dashes only.
            key = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")
            created = create_progress_artifact(0.0, key=key, description=name, _sync=True)  # type: ignore[call-arg]
            self._id = created if isinstance(created, UUID) else None

    def update(
        self, done: int, total: int, final: bool = False, description: str | None = None
    ) -> None:
        # Each update is an API call: at most one per interval, and always the final one.
        now = time.monotonic()
        due = final or done >= total or now - self._last >= _ARTIFACT_INTERVAL_S
        # An update without a description keeps the last one: the final value must not send
        # a stale or empty description in place of one still waiting to be sent.
        self._description = description if description is not None else self._description
        if self._id is None or not due:
            return
        self._last = now
        description = self._description
        percent = 100.0 * min(done, total) / max(total, 1)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _send(self._id, percent, description)
            return
        # On an event loop a blocking API call would stall every request in flight: one sender
        # task sends from a worker thread, one value at a time, so the server gets them in order
        # (the latest value replaces one still waiting).
        self._pending = (percent, description)
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._drain(self._id))

    async def finish(self, done: int, total: int) -> None:
        """Send the final value and wait until the server has every update."""
        self.update(done, total, final=True)
        if self._sender is not None:
            await self._sender

    async def _drain(self, artifact_id: UUID) -> None:
        while self._pending is not None:
            (percent, description), self._pending = self._pending, None
            try:
                await asyncio.to_thread(_send, artifact_id, percent, description)
            except Exception as exc:  # progress display must never fail the generation
                _log.warning("progress artifact %s not updated: %s", self.name, exc)


def _send(artifact_id: UUID, percent: float, description: str | None = None) -> None:
    update_progress_artifact(artifact_id, percent, description, _sync=True)  # type: ignore[call-arg]
