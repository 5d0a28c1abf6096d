"""A reused artifact is charged at the cost its manifest records, once per run, so reruns meet
the same cap."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tasks.artifacts import ArtifactStore
from tasks.budget import BudgetLedger, charge_reuse


def test_reuse_charges_the_recorded_cost_once_and_a_miss_charges_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ledger = BudgetLedger(cap_usd=1.0)
    assert charge_reuse(store, ledger, "annotations", "k1") is None
    assert ledger.spent_usd == 0.0
    frame = pd.DataFrame(
        {
            "task": ["t"],
            "row": [0],
            "row_id": ["r"],
            "annotations": [["a"]],
            "raw": [["a"]],
            "agreement_estimate": [1.0],
            "model": ["m"],
        }
    )
    written = store.write("annotations", "k1", frame, "annotations", {"cost_usd": 0.25})
    assert charge_reuse(store, ledger, "annotations", "k1") == written
    # Reused again in the same run (a second task, a rerun of the flow run): not charged again.
    assert charge_reuse(store, ledger, "annotations", "k1") == written
    assert ledger.spent_usd == 0.25
