"""Where batch submissions are remembered, so a killed run never submits the same requests twice.

An intent (a label chunk's key and the request keys of one batch) is written before the batch
is created, and its id travels in the batch's metadata: a run killed at any point finds its
batch again, by the recorded id or, if it died between creating the batch and recording it, in
the endpoint's batch list. A finished intent records which requests were answered; only the
others are ever submitted again, under a new intent.

The tables live in their own `MetaData` on any SQLAlchemy engine: a SQLite file next to the
request cache by default, or a database every host shares.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tasks.state_db import sqlite_url, state_engine

BATCH_STATE_FILE = "batch-state.sqlite"

batch_metadata = sa.MetaData()

intents = sa.Table(
    "llmsynth_batch_intents",
    batch_metadata,
    sa.Column("intent_id", sa.String(64), primary_key=True),
    sa.Column("chunk_key", sa.String(128), nullable=False, index=True),
    # Hash of the chunk key and the sorted request keys: a resubmission of the same requests
    # finds the intent before it.
    sa.Column("keyset", sa.String(64), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("input_file_id", sa.String(128)),
    sa.Column("batch_id", sa.String(128)),
    # The batch's final status (completed, failed, expired, cancelled); null while open.
    sa.Column("outcome", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
)

requests = sa.Table(
    "llmsynth_batch_requests",
    batch_metadata,
    sa.Column("intent_id", sa.String(64), sa.ForeignKey(intents.c.intent_id), primary_key=True),
    sa.Column("request_key", sa.String(64), primary_key=True),
    # pending until the batch is downloaded, then answered or failed.
    sa.Column("state", sa.String(16), nullable=False),
)


@dataclass(frozen=True)
class Intent:
    """One planned or submitted batch of a label chunk."""

    intent_id: str
    chunk_key: str
    keyset: str
    attempt: int
    endpoint: str
    input_file_id: str | None
    batch_id: str | None
    outcome: str | None

    @property
    def finished(self) -> bool:
        return self.outcome is not None


class BatchStore:
    """Intents and their requests on an SQLAlchemy engine (tables created if missing)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        batch_metadata.create_all(engine)

    def latest(self, keyset: str) -> Intent | None:
        """The newest intent for exactly these requests, finished or not."""
        query = (
            sa.select(intents).where(intents.c.keyset == keyset).order_by(intents.c.attempt.desc())
        )
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        return None if row is None else _intent(row)

    def open(
        self, chunk_key: str, keyset: str, endpoint: str, request_keys: Sequence[str]
    ) -> Intent:
        """Write a new intent, with its requests pending, before anything is submitted."""
        previous = self.latest(keyset)
        intent = Intent(
            intent_id=uuid.uuid4().hex,
            chunk_key=chunk_key,
            keyset=keyset,
            attempt=0 if previous is None else previous.attempt + 1,
            endpoint=endpoint,
            input_file_id=None,
            batch_id=None,
            outcome=None,
        )
        with self.engine.begin() as conn:
            conn.execute(
                intents.insert().values(
                    intent_id=intent.intent_id,
                    chunk_key=chunk_key,
                    keyset=keyset,
                    attempt=intent.attempt,
                    endpoint=endpoint,
                    created_at=time.time(),
                )
            )
            conn.execute(
                requests.insert(),
                [
                    {"intent_id": intent.intent_id, "request_key": key, "state": "pending"}
                    for key in request_keys
                ],
            )
        return intent

    def record_file(self, intent_id: str, file_id: str) -> Intent:
        return self._update(intent_id, input_file_id=file_id)

    def record_batch(self, intent_id: str, batch_id: str) -> Intent:
        return self._update(intent_id, batch_id=batch_id)

    def finish(
        self, intent_id: str, outcome: str, answered: Iterable[str], failed: Iterable[str]
    ) -> Intent:
        """Close an intent with its batch's final status and each request's fate."""
        with self.engine.begin() as conn:
            for state, keys in (("answered", list(answered)), ("failed", list(failed))):
                if keys:
                    conn.execute(
                        requests.update()
                        .where(requests.c.intent_id == intent_id)
                        .where(requests.c.request_key.in_(keys))
                        .values(state=state)
                    )
        return self._update(intent_id, outcome=outcome, finished_at=time.time())

    def intents(self, chunk_key: str | None = None) -> list[Intent]:
        """Every intent (of one chunk), oldest first."""
        query = sa.select(intents).order_by(intents.c.created_at)
        if chunk_key is not None:
            query = query.where(intents.c.chunk_key == chunk_key)
        with self.engine.connect() as conn:
            return [_intent(row) for row in conn.execute(query).mappings()]

    def request_states(self, intent_id: str) -> dict[str, str]:
        query = sa.select(requests.c.request_key, requests.c.state).where(
            requests.c.intent_id == intent_id
        )
        with self.engine.connect() as conn:
            return {key: state for key, state in conn.execute(query)}

    def submissions(self) -> Counter[str]:
        """How many intents each request key was part of."""
        query = sa.select(requests.c.request_key)
        with self.engine.connect() as conn:
            return Counter(key for (key,) in conn.execute(query))

    def close(self) -> None:
        self.engine.dispose()

    def _update(self, intent_id: str, **values: object) -> Intent:
        with self.engine.begin() as conn:
            conn.execute(intents.update().where(intents.c.intent_id == intent_id).values(**values))
            row = (
                conn.execute(sa.select(intents).where(intents.c.intent_id == intent_id))
                .mappings()
                .one()
            )
        return _intent(row)


def _intent(row: sa.RowMapping) -> Intent:
    return Intent(
        intent_id=row["intent_id"],
        chunk_key=row["chunk_key"],
        keyset=row["keyset"],
        attempt=row["attempt"],
        endpoint=row["endpoint"],
        input_file_id=row["input_file_id"],
        batch_id=row["batch_id"],
        outcome=row["outcome"],
    )


def local_batch_store(state_dir: Path) -> BatchStore:
    """The batch store in a SQLite file of its own (tests; runs use the state database)."""
    return BatchStore(state_engine(sqlite_url(state_dir / BATCH_STATE_FILE)))
