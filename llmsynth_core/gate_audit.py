"""How the quality gates treat real, human-written text of a task.

A cleaner or filter applied to synthetic text must leave real text of the same task
essentially untouched: one that cuts "Of course ..." openers or drops "I'm sorry ..." comments
removes irony and remorse from the synthetic data only, and so manufactures a gap between
synthetic and real data on exactly the subjective tasks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from llmsynth_core.parsing import judge, normalise

# The gates that look at one text alone; real text must pass them with its words unchanged.
# Truncation applies only to replies that stopped at max_tokens, so real text ("stop") skips it.
PER_TEXT_REASONS = ("empty", "truncated", "refusal")
# Gates that real text may fail by nature (long IMDB reviews, repeated SMS): reported only.
CORPUS_REASONS = ("too_short", "too_long", "duplicate")


@dataclass
class RealTextAudit:
    """Counts over one task's real texts: changed words, per-text rejections, corpus gates."""

    n: int = 0
    changed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(self.reasons.get(reason, 0) for reason in PER_TEXT_REASONS)

    @property
    def tripped_share(self) -> float:
        """Share of texts the per-text gates reject or whose words they change."""
        return (self.changed + self.rejected) / self.n if self.n else 0.0

    def share(self, reason: str) -> float:
        return self.reasons.get(reason, 0) / self.n if self.n else 0.0


def audit_real_texts(
    texts: Iterable[str], min_chars: int, max_chars: int, keep_examples: int = 3
) -> RealTextAudit:
    """Judge each real text as a finished reply, in order, recording accepted ones as seen."""
    audit = RealTextAudit()
    seen: set[str] = set()
    for text in texts:
        audit.n += 1
        before = " ".join(text.split())
        verdict = judge(text, "stop", 1, sys.maxsize, seen=set())
        reason = verdict.reason
        if reason is None:
            if verdict.text != before:
                audit.changed += 1
                _example(audit, before, verdict.text, keep_examples)
            reason = _corpus_reason(verdict.text, min_chars, max_chars, seen)
        else:
            _example(audit, before, reason, keep_examples)
        if reason is not None:
            audit.reasons[reason] = audit.reasons.get(reason, 0) + 1
    return audit


def _corpus_reason(text: str, min_chars: int, max_chars: int, seen: set[str]) -> str | None:
    if len(text) < min_chars:
        return "too_short"
    if len(text) > max_chars:
        return "too_long"
    key = normalise(text)
    if key in seen:
        return "duplicate"
    seen.add(key)
    return None


def _example(audit: RealTextAudit, before: str, after: str, keep: int) -> None:
    if len(audit.examples) < keep:
        audit.examples.append((before[:160], after[:160]))


def audit_table(audits: Mapping[str, RealTextAudit]) -> str:
    """One line per task: the guarded shares first, the corpus gates' rates beside them."""
    head = ["task", "n", "changed%", *(f"{r}%" for r in PER_TEXT_REASONS), "guard%"]
    head += [f"{r}%" for r in CORPUS_REASONS]
    lines = [" | ".join(head)]
    for task, audit in audits.items():
        cells = [task, str(audit.n), _pct(audit.changed / audit.n if audit.n else 0.0)]
        cells += [_pct(audit.share(r)) for r in PER_TEXT_REASONS]
        cells += [_pct(audit.tripped_share)]
        cells += [_pct(audit.share(r)) for r in CORPUS_REASONS]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def _pct(share: float) -> str:
    return f"{100 * share:.2f}"
