"""The run's cost cap, held in the state database, so that every process of a flow run (on any
host that opens the same database) draws on one cap.

Money spent is a set of charges, one per run per item (a request hash, or a reused artifact):
a reply that a rerun or a second process reads back from the cache counts once. Money in
flight is a set of reservations, each owned by a process that keeps extending them while it
lives; a killed process's reservations lapse `RESERVATION_TTL_S` later instead of holding the
cap for ever. Without a cap nothing is booked.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import prefect.runtime.flow_run
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from llmsynth_core.config import RuntimeConfig
from llmsynth_core.errors import BudgetExceeded
from tasks import heartbeat
from tasks.artifacts import ArtifactRef, ArtifactStore, local_state_dir
from tasks.heartbeat import owner_id
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


class BudgetLedger:
    """Money spent (served-from-cache replies count at their price) and money in flight, of
    one run (`run_key`), against `cap_usd`. Without an engine: a database of its own, which
    no other process sees, so its reservations need no heartbeat."""

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
        self._shared = engine  # None: nobody else books here
        self._engine = engine if engine is not None or cap_usd is None else private_engine()
        self._ttl_s = ttl_s if engine is not None else math.inf

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
        if self._shared is not None:
            heartbeat.hold(self._shared, self._ttl_s)
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
            if self._shared is not None:
                heartbeat.release(self._shared)

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
