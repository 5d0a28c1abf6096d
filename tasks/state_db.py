"""The state database: the request cache and the budget ledger, shared by whoever opens it.

One SQLite file next to the artifacts on one machine (the default, `request-cache.sqlite`
where the cache always lived, so existing caches keep working); PostgreSQL by URL when
processes on several hosts must share it (`LLMSYNTH_STATE_DB` or `runtime.state_db`).
Other modules add their tables to `metadata`; `state_engine` creates whatever is missing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool, StaticPool

from llmsynth_core.db_url import check_state_db_url
from llmsynth_core.errors import ConfigError

STATE_DB_ENV = "LLMSYNTH_STATE_DB"
DEFAULT_FILE = "request-cache.sqlite"

metadata = sa.MetaData()

# The request cache. Columns as the SQLite-only cache had them, so its files open unchanged.
replies = sa.Table(
    "replies",
    metadata,
    sa.Column("hash", sa.Text, primary_key=True),
    sa.Column("reply", sa.Text),
    sa.Column("at", sa.Float),
)

# The budget: one row per run that bookings lock, so that checks against the cap are serial.
budget_runs = sa.Table("budget_runs", metadata, sa.Column("run_key", sa.Text, primary_key=True))
# Money spent, once per run per item (a request hash, or a reused artifact); `scope` is the
# artifact the item was spent for, so a reused artifact is charged only what its requests were
# not.
budget_charges = sa.Table(
    "budget_charges",
    metadata,
    sa.Column("run_key", sa.Text, primary_key=True),
    sa.Column("item", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, nullable=False, index=True),
    sa.Column("cost_usd", sa.Float, nullable=False),
)
# Money in flight: a request's worst-case cost until its reply settles it; counted only until
# `expires_at`, which its owner process keeps moving while it lives.
budget_reservations = sa.Table(
    "budget_reservations",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("run_key", sa.Text, nullable=False, index=True),
    sa.Column("owner", sa.Text, nullable=False, index=True),
    sa.Column("estimate_usd", sa.Float, nullable=False),
    sa.Column("ttl_s", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

_engines: dict[tuple[int, str], Engine] = {}
_tables: dict[tuple[int, str], frozenset[str]] = {}
_engines_lock = threading.Lock()


def _forget_engines_in_child() -> None:
    # The parent's pooled connections are the parent's: never used, nor closed, in a child.
    global _engines_lock
    _engines_lock = threading.Lock()
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()
    _tables.clear()


os.register_at_fork(after_in_child=_forget_engines_in_child)
# Serialises PostgreSQL's CREATE TABLEs across processes (concurrent ones collide).
_CREATE_LOCK_KEY = 0x6C6C6D73  # "llms"


def state_db_url(configured: str | None, state_dir: Path) -> str:
    """The state database to use: LLMSYNTH_STATE_DB, else `runtime.state_db`, else the SQLite
    file in `state_dir` (the store's local state directory)."""
    from_env = os.environ.get(STATE_DB_ENV, "").strip()
    if from_env:
        try:
            return check_state_db_url(from_env, STATE_DB_ENV)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return configured or sqlite_url(state_dir / DEFAULT_FILE)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def state_engine(url: str) -> Engine:
    """The engine for `url` in this process (made once), with every table of `metadata`."""
    key = (os.getpid(), url)  # a forked child must not share its parent's connections
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _new_engine(url)
        names = frozenset(metadata.tables)
        if _tables.get(key) != names:
            _create_tables(engine)
            _tables[key] = names
        return engine


def private_engine() -> Engine:
    """An in-memory SQLite database of this process alone (a ledger that nothing shares)."""
    engine = _new_engine("sqlite://")
    _create_tables(engine)
    return engine


def _new_engine(url: str) -> Engine:
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver the extra installs
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the state database is PostgreSQL but {exc.name} is not installed; "
            "pip install 'llmsynth[postgres]'"
        ) from None


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # Connections are pooled: opening one per use cost ~0.3 ms, and closing the last one
        # checkpointed the WAL into the database file, ~1 ms a reply at 100,000 replies. A
        # forked child makes engines of its own (`state_engine`) and drops the parent's pool.
        engine = sa.create_engine(
            url,
            poolclass=QueuePool,
            connect_args={"timeout": 60, "check_same_thread": False},
        )
    else:
        engine = sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun below, not by the driver (which would begin them lazily).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A writer takes the write lock first: a deferred transaction that reads and then
        # writes can fail to upgrade its lock under WAL instead of waiting for it.
        writes = connection.get_execution_options().get("state_db_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def _create_tables(engine: Engine) -> None:
    with writing(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_CREATE_LOCK_KEY)))
        metadata.create_all(connection)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on exit, and on SQLite holding the write lock
    from its start."""
    with engine.connect() as connection:
        connection.execution_options(state_db_write=True)
        with connection.begin():
            yield connection


@contextmanager
def driver_cursor(engine: Engine, write: bool = False) -> Iterator[DriverCursor]:
    """A DBAPI cursor on one of the engine's pooled connections, for the hottest statements
    (the request cache's, once or twice a request): SQLAlchemy's work around a statement cost
    ~5x the statement on SQLite (~100 us against ~10-25 us an item, in batches of two).
    `write`: one transaction, committed on exit (on SQLite holding the write lock from its
    start, as `writing` does); rolled back on an error."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        if write and engine.dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        try:
            yield DriverCursor(cursor, "?" if engine.dialect.paramstyle == "qmark" else "%s")
        except BaseException:
            connection.rollback()
            raise
        if write:
            connection.commit()
        cursor.close()
    finally:
        connection.close()  # back to the pool, whose reset ends any transaction left open


@dataclass(frozen=True)
class DriverCursor:
    """A DBAPI cursor and the driver's parameter marker (`?` on SQLite, `%s` on psycopg)."""

    cursor: Any
    marker: str

    def markers(self, count: int) -> str:
        return ", ".join([self.marker] * count)


def insert_or_ignore(connection: Connection, table: sa.Table, **values: object) -> None:
    """Insert a row unless one with its primary key exists (the first writer wins)."""
    insert_or_ignore_many(connection, table, [values])


def insert_or_ignore_many(
    connection: Connection, table: sa.Table, rows: Sequence[Mapping[str, object]]
) -> None:
    """`insert_or_ignore` for each row, in one statement executed for all of them."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(table).on_conflict_do_nothing(), list(rows))


def db_now(connection: Connection) -> float:
    """The database's clock in Unix seconds: one clock for every host that shares it."""
    expression = (
        "extract(epoch from clock_timestamp())"
        if connection.dialect.name == "postgresql"
        else "(julianday('now') - 2440587.5) * 86400.0"
    )
    return float(connection.execute(sa.text(f"SELECT {expression}")).scalar_one())
