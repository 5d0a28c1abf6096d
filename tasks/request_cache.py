"""A persistent per-request cache, so no completed (paid) call is ever sent twice.

It lives in the state database (`tasks/state_db.py`): a SQLite file on one machine, PostgreSQL
when several hosts share it. Every reply is committed before its request's caller goes on
(replies that arrive together share a transaction, `put_many`), so a run killed with SIGKILL
keeps every reply that had arrived, and a rerun with the same requests, on any host that opens
the same database, reads them back instead of calling again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from llmsynth_core.llm_types import LLMResponse
from tasks.state_db import driver_cursor, replies, sqlite_url, state_engine

# Bound parameters of one IN query (SQLite allows 32,766, PostgreSQL 65,535).
_IN_LIMIT = 1000
# Through the driver (`driver_cursor`): the same statements on SQLite and PostgreSQL.
_SELECT = "SELECT hash, reply FROM replies WHERE hash IN"
_INSERT = "INSERT INTO replies (hash, reply, at) VALUES ({}) ON CONFLICT DO NOTHING"


class RequestCache:
    def __init__(self, location: str | Path) -> None:
        """`location`: a state database URL, or the path of a SQLite file."""
        url = location if isinstance(location, str) else sqlite_url(location)
        self._engine = state_engine(url)

    def get(self, request_hash: str) -> LLMResponse | None:
        return self.get_many([request_hash])[0]

    def get_many(self, request_hashes: Sequence[str]) -> list[LLMResponse | None]:
        """The stored reply of each hash, in order (None where there is none), in one query."""
        found: dict[str, str] = {}
        with driver_cursor(self._engine) as db:
            for start in range(0, len(request_hashes), _IN_LIMIT):
                wanted = sorted(set(request_hashes[start : start + _IN_LIMIT]))
                db.cursor.execute(f"{_SELECT} ({db.markers(len(wanted))})", wanted)
                found.update(db.cursor.fetchall())
        return [
            None if (reply := found.get(key)) is None else LLMResponse.model_validate_json(reply)
            for key in request_hashes
        ]

    def put(self, request_hash: str, response: LLMResponse) -> None:
        """Store a reply; a reply already stored under the hash (by any process) is kept."""
        self.put_many([(request_hash, response)])

    def put_many(self, items: Sequence[tuple[str, LLMResponse]]) -> list[None]:
        """`put` for each (hash, reply), in one transaction; one None per item (a `Coalescer`
        answers each caller)."""
        now = time.time()
        rows = [(key, response.model_dump_json(), now) for key, response in items]
        with driver_cursor(self._engine, write=True) as db:
            db.cursor.executemany(_INSERT.format(db.markers(3)), rows)
        return [None] * len(items)

    def __len__(self) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(replies)).scalar_one()
            )

    def close(self) -> None:
        """Nothing to release: the engine is the process's, shared by every cache on it."""
