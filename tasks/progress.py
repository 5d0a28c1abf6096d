"""Rich progress bars for long work, shared by every task running in this process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
                self._ids[name] = self._progress.add_task(name, total=total)

    def update(self, name: str, completed: int) -> None:
        with self._lock:
            if self._progress is not None and name in self._ids:
                self._progress.update(self._ids[name], completed=completed)

    def finish(self, name: str, total: int) -> None:
        self.add(name, total)
        self.update(name, total)


reporter = Reporter()
