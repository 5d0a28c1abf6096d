from __future__ import annotations

import pandas as pd

from llmsynth_core.volume import shortfall_messages, task_totals, volume_table


def _rows(label: str, reasons: list[str | None]) -> list[dict[str, object]]:
    return [
        {
            "task": "t",
            "mode": "zero_shot",
            "label": label,
            "accepted": reason is None,
            "reject_reason": reason,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost_usd": 0.5,
        }
        for reason in reasons
    ]


def test_volume_counts_quota_drops_tokens_and_cost_per_label() -> None:
    frame = pd.DataFrame(
        _rows("a", [None, None, "near_duplicate"]) + _rows("b", [None, "refusal", "refusal"])
    )
    volume = volume_table(frame, per_label=2).set_index("label")
    assert volume.loc["a", "shortfall"] == 0
    assert volume.loc["b", "accepted"] == 1 and volume.loc["b", "shortfall"] == 1
    assert volume.loc["b", "drops"] == "refusal=2"
    assert volume.loc["a", "tokens"] == 45 and volume.loc["a", "cost_usd"] == 1.5
    messages = shortfall_messages(volume.reset_index(), max_attempts_factor=1.5)
    assert len(messages) == 1
    assert messages[0].startswith("t/zero_shot/b: 1 of 2 accepted after 3 requests")
    assert "generation.max_attempts_factor" in messages[0]
    totals = task_totals(volume.reset_index())
    assert totals == {"t": {"accepted": 3.0, "requests": 6.0, "tokens": 90.0, "cost_usd": 3.0}}
