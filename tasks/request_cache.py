"""A persistent per-request cache, so no completed (paid) call is ever sent twice.

It lives in the state database (`tasks/state_db.py`): a SQLite file on one machine, PostgreSQL
when several hosts share it. Every reply is committed on its own as it arrives, so a run
killed with SIGKILL keeps every reply that had arrived, and a rerun with the same requests, on
any host that opens the same database, reads them back instead of calling again.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from llmsynth_core.llm_types import LLMResponse
from tasks.state_db import insert_or_ignore, replies, sqlite_url, state_engine, writing


class RequestCache:
    def __init__(self, location: str | Path) -> None:
        """`location`: a state database URL, or the path of a SQLite file."""
        url = location if isinstance(location, str) else sqlite_url(location)
        self._engine = state_engine(url)

    def get(self, request_hash: str) -> LLMResponse | None:
        with self._engine.connect() as connection:
            reply = connection.execute(
                sa.select(replies.c.reply).where(replies.c.hash == request_hash)
            ).scalar_one_or_none()
        return None if reply is None else LLMResponse.model_validate_json(reply)

    def put(self, request_hash: str, response: LLMResponse) -> None:
        """Store a reply; a reply already stored under the hash (by any process) is kept."""
        with writing(self._engine) as connection:
            insert_or_ignore(
                connection,
                replies,
                hash=request_hash,
                reply=response.model_dump_json(),
                at=time.time(),
            )

    def __len__(self) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(replies)).scalar_one()
            )

    def close(self) -> None:
        """Nothing to release: the engine is the process's, shared by every cache on it."""
