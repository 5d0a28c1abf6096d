"""A persistent per-request cache, so no completed (paid) call is ever sent twice.

SQLite in WAL mode with a commit per reply: a run killed with SIGKILL keeps every reply that
had arrived, and a rerun with the same requests reads them back instead of calling again.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from llmsynth_core.llm_types import LLMResponse


class RequestCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS replies (hash TEXT PRIMARY KEY, reply TEXT, at REAL)"
        )

    def get(self, request_hash: str) -> LLMResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT reply FROM replies WHERE hash = ?", (request_hash,)
            ).fetchone()
        return None if row is None else LLMResponse.model_validate_json(row[0])

    def put(self, request_hash: str, response: LLMResponse) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO replies VALUES (?, ?, ?)",
                (request_hash, response.model_dump_json(), time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
