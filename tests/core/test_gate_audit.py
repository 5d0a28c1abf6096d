"""The per-text quality gates leave real, human-written text of every task essentially alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmsynth_core.config import GenerationConfig
from llmsynth_core.data import load_split
from llmsynth_core.gate_audit import audit_real_texts, audit_table
from llmsynth_core.registry import load_registry

# At most this share of a task's real training texts may be rejected by the per-text gates
# (empty, truncated, refusal) or have their words changed by cleaning.
MAX_TRIPPED_SHARE = 0.01


def test_audit_counts_changes_rejections_and_corpus_gates() -> None:
    texts = [
        "A plain   sentence\nof text.",  # whitespace only: not a change
        "1. A numbered line of text.",  # numbering stripped: a change
        "   ",  # empty
        "A plain sentence of text.",  # a duplicate of the first
        "Tiny.",  # too short
        "x" * 50,  # too long
    ]
    audit = audit_real_texts(texts, min_chars=10, max_chars=40)
    assert audit.n == 6
    assert audit.changed == 1
    assert audit.reasons == {"empty": 1, "duplicate": 1, "too_short": 1, "too_long": 1}
    assert audit.tripped_share == pytest.approx(2 / 6)
    assert audit.examples[0] == ("1. A numbered line of text.", "A numbered line of text.")
    assert "guard%" in audit_table({"toy": audit}).splitlines()[0]


def test_per_text_gates_leave_real_training_texts_alone(datasets_dir: Path) -> None:
    generation = GenerationConfig()
    audits = {}
    for task_id, spec in sorted(load_registry().items()):
        texts = load_split(spec, datasets_dir, "train")["text"].astype(str)
        audits[task_id] = audit_real_texts(texts, generation.min_chars, generation.max_chars)
    table = audit_table(audits)
    print("\n" + table)
    tripped = {
        task: audit for task, audit in audits.items() if audit.tripped_share > MAX_TRIPPED_SHARE
    }
    examples = "\n".join(
        f"  {task}: {before!r} -> {after!r}"
        for task, audit in tripped.items()
        for before, after in audit.examples
    )
    assert not tripped, (
        f"the per-text gates reject or change more than {MAX_TRIPPED_SHARE:.0%} of the real "
        f"training texts of {sorted(tripped)}; fix the gate (never exempt a task):\n"
        f"{table}\nexamples:\n{examples}"
    )
