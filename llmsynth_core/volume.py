"""Generation volume per label: quota met or short, requests, drops per gate, tokens, cost."""

from __future__ import annotations

import pandas as pd

VOLUME_COLUMNS = [
    "task",
    "mode",
    "label",
    "target",
    "accepted",
    "shortfall",
    "requests",
    "tokens",
    "cost_usd",
    "drops",
]


def volume_table(generations: pd.DataFrame, per_label: int) -> pd.DataFrame:
    """One row per (task, mode, label); `drops` reads 'near_duplicate=3, refusal=1'."""
    rows = []
    for (task, mode, label), group in generations.groupby(["task", "mode", "label"], sort=True):
        accepted = int(group["accepted"].sum())
        counts = group["reject_reason"].dropna().value_counts()
        rows.append(
            {
                "task": task,
                "mode": mode,
                "label": label,
                "target": per_label,
                "accepted": accepted,
                "shortfall": max(0, per_label - accepted),
                "requests": len(group),
                "tokens": int(group["prompt_tokens"].sum() + group["completion_tokens"].sum()),
                "cost_usd": float(group["cost_usd"].sum()),
                "drops": ", ".join(f"{reason}={n}" for reason, n in counts.items()),
            }
        )
    return pd.DataFrame(rows, columns=VOLUME_COLUMNS)


def shortfall_messages(volume: pd.DataFrame, max_attempts_factor: float) -> list[str]:
    """A sentence per label that missed its quota, saying what to change."""
    return [
        f"{row['task']}/{row['mode']}/{row['label']}: {row['accepted']} of {row['target']} "
        f"accepted after {row['requests']} requests (drops: {row['drops'] or 'none'}); raise "
        f"generation.max_attempts_factor (now {max_attempts_factor:g}) or loosen the gate "
        "that dropped most"
        for row in volume.to_dict("records")
        if int(row["shortfall"]) > 0
    ]


def task_totals(volume: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per task: accepted rows, requests, tokens and cost, summed over modes and labels."""
    columns = ["accepted", "requests", "tokens", "cost_usd"]
    totals = volume.groupby("task")[columns].sum()
    return {
        str(task): {column: float(row[column]) for column in columns}
        for task, row in totals.iterrows()
    }
