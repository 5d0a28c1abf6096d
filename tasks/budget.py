"""The run's cost cap, held in the state database, so that every process of a flow run (on any
host that opens the same database) draws on one cap.

Money spent is a set of charges, one per run per item (a request hash, or a reused artifact):
a reply that a rerun or a second process reads back from the cache counts once. Money in
flight is a set of reservations, each owned by a process that keeps extending them while it
lives; a killed process's reservations lapse `RESERVATION_TTL_S` later instead of holding the
cap for ever. Without a cap nothing is booked.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import prefect.runtime.flow_run
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from llmsynth_core.config import RuntimeConfig
from llmsynth_core.errors import BudgetExceeded
from tasks.artifacts import ArtifactRef, ArtifactStore, local_state_dir
from tasks.state_db import (
    budget_charges,
    budget_reservations,
    budget_runs,
    db_now,
    insert_or_ignore,
    private_engine,
    state_db_url,
    state_engine,
    writing,
)

RESERVATION_TTL_S = 60.0
logger = logging.getLogger(__name__)


class BudgetLedger:
    """Money spent (served-from-cache replies count at their price) and money in flight, of
    one run (`run_key`), against `cap_usd`. Without an engine: a database of its own."""

    def __init__(
        self,
        cap_usd: float | None,
        engine: Engine | None = None,
        run_key: str | None = None,
        scope: str = "",
        ttl_s: float = RESERVATION_TTL_S,
    ) -> None:
        self.cap_usd = cap_usd
        self.run_key = run_key or f"process {owner_id()}"
        self.scope = scope
        self._engine = engine if engine is not None or cap_usd is None else private_engine()
        self._ttl_s = ttl_s

    @property
    def spent_usd(self) -> float:
        if self._engine is None:
            return 0.0
        with self._engine.connect() as connection:
            return float(connection.execute(sa.select(_spent(self.run_key))).scalar_one())

    def charge(self, item: str, cost_usd: float) -> None:
        """Book what an item (a request hash) cost; the run's second charge of it is ignored."""
        if self.cap_usd is None:
            return
        with self._booking() as connection:
            self._insert_charge(connection, item, cost_usd)

    def charge_artifact(self, address: str, cost_usd: float) -> None:
        """Book a reused artifact at its recorded cost, less what this run already paid for
        its requests (a chunk that this run's killed process had begun)."""
        if self.cap_usd is None:
            return
        with self._booking() as connection:
            paid = connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(budget_charges.c.cost_usd), 0.0)).where(
                    budget_charges.c.run_key == self.run_key, budget_charges.c.scope == address
                )
            ).scalar_one()
            insert_or_ignore(
                connection,
                budget_charges,
                run_key=self.run_key,
                item=f"artifact {address}",
                scope=address,
                cost_usd=max(0.0, cost_usd - float(paid)),
            )

    def reserve(self, estimate_usd: float) -> str | None:
        """Book a request's worst-case cost, or raise if it could take the run past the cap;
        the reservation's id (None without a cap), to settle."""
        if self.cap_usd is None:
            return None
        with self._booking() as connection:
            now = db_now(connection)
            held = budget_reservations.c
            # What a killed process held is released; what its reply would have cost is not
            # charged, and the rerun asks again.
            connection.execute(
                sa.delete(budget_reservations).where(
                    held.run_key == self.run_key, held.expires_at <= now
                )
            )
            committed = float(
                connection.execute(
                    sa.select(_spent(self.run_key) + _in_flight(self.run_key))
                ).scalar_one()
            )
            if committed + estimate_usd > self.cap_usd:
                raise BudgetExceeded(
                    f"budget cap reached: ${committed:.4f} spent or in flight (by every process "
                    f"of this run), and the next request could cost up to ${estimate_usd:.4f}, "
                    f"past runtime.max_cost_usd={self.cap_usd:g}. Every reply already received "
                    "is cached: rerun with a higher runtime.max_cost_usd (or --max-cost) to "
                    "resume where this run stopped."
                )
            reservation = secrets.token_hex(16)
            connection.execute(
                sa.insert(budget_reservations).values(
                    id=reservation,
                    run_key=self.run_key,
                    owner=owner_id(),
                    estimate_usd=estimate_usd,
                    ttl_s=self._ttl_s,
                    expires_at=now + self._ttl_s,
                )
            )
        _heartbeat.opened(connection.engine, self._ttl_s)
        return reservation

    def settle(self, reservation: str | None, item: str, cost_usd: float | None) -> None:
        """Replace a reservation by what the reply to `item` cost (None: the request failed,
        no charge)."""
        if reservation is None:
            return
        try:
            with self._booking() as connection:
                connection.execute(
                    sa.delete(budget_reservations).where(budget_reservations.c.id == reservation)
                )
                if cost_usd is not None:
                    self._insert_charge(connection, item, cost_usd)
        finally:
            assert self._engine is not None
            _heartbeat.closed(self._engine)

    def _insert_charge(self, connection: Connection, item: str, cost_usd: float) -> None:
        insert_or_ignore(
            connection,
            budget_charges,
            run_key=self.run_key,
            item=item,
            scope=self.scope,
            cost_usd=cost_usd,
        )

    @contextmanager
    def _booking(self) -> Iterator[Connection]:
        """A transaction holding the run's row lock, so that bookings of a run are serial on
        PostgreSQL (on SQLite the write lock is the whole database's)."""
        assert self._engine is not None
        with writing(self._engine) as connection:
            insert_or_ignore(connection, budget_runs, run_key=self.run_key)
            connection.execute(
                sa.select(budget_runs.c.run_key)
                .where(budget_runs.c.run_key == self.run_key)
                .with_for_update()
            )
            yield connection


def _spent(run_key: str) -> sa.ScalarSelect[float]:
    charged = sa.func.coalesce(sa.func.sum(budget_charges.c.cost_usd), 0.0)
    return sa.select(charged).where(budget_charges.c.run_key == run_key).scalar_subquery()


def _in_flight(run_key: str) -> sa.ScalarSelect[float]:
    held = sa.func.coalesce(sa.func.sum(budget_reservations.c.estimate_usd), 0.0)
    return sa.select(held).where(budget_reservations.c.run_key == run_key).scalar_subquery()


_owner: tuple[int, str] | None = None


def owner_id() -> str:
    """This process, as the owner of its reservations: host, pid and a nonce (pids recur)."""
    global _owner
    if _owner is None or _owner[0] != os.getpid():
        _owner = (os.getpid(), f"{socket.gethostname()} pid {os.getpid()} {secrets.token_hex(4)}")
    return _owner[1]


class _Heartbeat:
    """Extends this process's reservations from a thread while it holds any: each reservation
    lives `ttl_s` past the last beat, which comes every quarter of that."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[Engine] = Counter()
        self._period: dict[Engine, float] = {}
        self._thread: threading.Thread | None = None

    def opened(self, engine: Engine, ttl_s: float) -> None:
        with self._lock:
            self._open[engine] += 1
            self._period[engine] = min(self._period.get(engine, ttl_s / 4), ttl_s / 4)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="budget-heartbeat")
                self._thread.daemon = True
                self._thread.start()

    def closed(self, engine: Engine) -> None:
        with self._lock:
            self._open[engine] -= 1
            if self._open[engine] <= 0:
                del self._open[engine], self._period[engine]

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._open:
                    self._thread = None
                    return
                engines, period = list(self._open), min(self._period.values())
            time.sleep(period)
            for engine in engines:
                try:
                    _extend(engine)
                except sa.exc.SQLAlchemyError as exc:  # the next beat may get through
                    logger.warning("could not extend budget reservations: %s", type(exc).__name__)


def _extend(engine: Engine) -> None:
    held = budget_reservations.c
    with writing(engine) as connection:
        now = db_now(connection)
        connection.execute(
            sa.update(budget_reservations)
            .where(held.owner == owner_id())
            .values(expires_at=now + held.ttl_s)
        )


_heartbeat = _Heartbeat()


def _after_fork() -> None:
    """A forked child holds no reservations, no heartbeat thread, and maybe a copied lock."""
    global _heartbeat
    _heartbeat = _Heartbeat()


os.register_at_fork(after_in_child=_after_fork)


def artifact_address(kind: str, key: str) -> str:
    return f"{kind}/{key}"


def run_ledger(store_root: str, runtime: RuntimeConfig, kind: str, key: str) -> BudgetLedger:
    """The ledger of the current flow run (outside a flow run, of this process), charging for
    artifact `kind`/`key`: every task that spends money books on it, so runtime.max_cost_usd
    caps their sum across the run's processes and hosts."""
    flow_run_id = prefect.runtime.flow_run.id
    run_key = f"flow run {flow_run_id}" if flow_run_id else f"{store_root} in {owner_id()}"
    cap = runtime.max_cost_usd
    engine = None
    if cap is not None:
        engine = state_engine(state_db_url(runtime.state_db, local_state_dir(store_root)))
    return BudgetLedger(cap, engine, run_key, artifact_address(kind, key))


def charge_reuse(
    store: ArtifactStore, ledger: BudgetLedger, kind: str, key: str
) -> ArtifactRef | None:
    """The artifact already written under this key, if any, its recorded cost charged to the
    ledger once: a reused artifact counts at its price, as a served-from-cache reply does."""
    found = store.manifest(kind, key)
    if found is None:
        return None
    ledger.charge_artifact(artifact_address(kind, key), float(found.get("cost_usd", 0.0)))
    return ArtifactRef.model_validate(found["artifact"])
