"""The run's cost cap, shared by every generation and annotation task of a flow run in this
process."""

from __future__ import annotations

import threading

import prefect.runtime.flow_run

from llmsynth_core.errors import BudgetExceeded
from tasks.artifacts import ArtifactRef, ArtifactStore


class BudgetLedger:
    """Money spent (served-from-cache replies count at their price) and money in flight."""

    def __init__(self, cap_usd: float | None) -> None:
        self.cap_usd = cap_usd
        self.spent_usd = 0.0
        self._reserved_usd = 0.0
        self._lock = threading.Lock()

    def charge(self, cost_usd: float) -> None:
        with self._lock:
            self.spent_usd += cost_usd

    def reserve(self, estimate_usd: float) -> None:
        """Book a request's worst-case cost, or raise if it could take the run past the cap."""
        with self._lock:
            committed = self.spent_usd + self._reserved_usd
            if self.cap_usd is not None and committed + estimate_usd > self.cap_usd:
                raise BudgetExceeded(
                    f"budget cap reached: ${committed:.4f} spent or in flight, and the next "
                    f"request could cost up to ${estimate_usd:.4f}, past "
                    f"runtime.max_cost_usd={self.cap_usd:g}. Every reply already received is "
                    "cached: rerun with a higher runtime.max_cost_usd (or --max-cost) to resume "
                    "where this run stopped."
                )
            self._reserved_usd += estimate_usd

    def settle(self, estimate_usd: float, cost_usd: float | None) -> None:
        """Replace a reservation by what the reply cost (None: the request failed, no charge)."""
        with self._lock:
            self._reserved_usd -= estimate_usd
            if cost_usd is not None:
                self.spent_usd += cost_usd


_ledgers: dict[str, BudgetLedger] = {}
_ledgers_lock = threading.Lock()


def ledger_for(run_key: str, cap_usd: float | None) -> BudgetLedger:
    """One ledger per flow run, so parallel label chunks draw on the same cap."""
    with _ledgers_lock:
        ledger = _ledgers.get(run_key)
        if ledger is None or ledger.cap_usd != cap_usd:
            ledger = _ledgers[run_key] = BudgetLedger(cap_usd)
        return ledger


def run_ledger(store_root: str, cap_usd: float | None) -> BudgetLedger:
    """The ledger of the current flow run (outside a flow run, of the store): every task that
    spends money charges this one, so runtime.max_cost_usd caps their sum."""
    flow_run_id = prefect.runtime.flow_run.id
    return ledger_for(str(flow_run_id) if flow_run_id else store_root, cap_usd)


def charge_reuse(
    store: ArtifactStore, ledger: BudgetLedger, kind: str, key: str
) -> ArtifactRef | None:
    """The artifact already written under this key, if any, its recorded cost charged to the
    ledger: a reused artifact counts at its price, as a served-from-cache reply does."""
    found = store.manifest(kind, key)
    if found is None:
        return None
    ledger.charge(float(found.get("cost_usd", 0.0)))
    return ArtifactRef.model_validate(found["artifact"])
