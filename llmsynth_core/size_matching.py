"""Size matching: how many rows of each label every training source uses, so that real and
synthetic data are compared at the same size and class balance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

SizePolicy = Literal["equal", "none"]
REAL = "real"
# Learning-curve points are named real@k: "@" appears in no mode or mixture name.
CURVE_PREFIX = "real@"


class LabelSizes(BaseModel):
    """One label of one task: rows wanted, rows each source has, rows each source trains on.

    Sources are "real" (its training split) and each generation mode (its accepted rows);
    a mixture's synthetic part follows its mode's count.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    label: str
    wanted: int
    have: dict[str, int]
    used: dict[str, int]

    @property
    def short(self) -> dict[str, int]:
        """The sources that have fewer rows than wanted, with what they have."""
        return {source: n for source, n in self.have.items() if n < self.wanted}

    @property
    def capped(self) -> bool:
        """Some source trains on fewer rows of this label than wanted."""
        return any(n < self.wanted for n in self.used.values())

    def describe(self, policy: SizePolicy) -> str:
        """One sentence: who fell short and what every source uses instead."""
        reasons = ", ".join(f"{_has(source)} {n:,}" for source, n in self.short.items())
        where = f"{self.task}/{self.label}"
        counts = set(self.used.values())
        if policy == "equal" and len(counts) == 1:
            common = counts.pop()
            return (
                f"{where}: every source trains on {common:,} row{'' if common == 1 else 's'}, "
                f"not the {self.wanted:,} wanted ({reasons})"
            )
        each = ", ".join(f"{source} {n:,}" for source, n in self.used.items())
        return f"{where}: sources train on {each} of the {self.wanted:,} wanted ({reasons})"

    def warning(self, policy: SizePolicy) -> str:
        """The run log's line for a capped label: the counts, then `describe`."""
        used = ", ".join(f"{source} {n}" for source, n in self.used.items())
        return (
            f"size matching: task {self.task}, label {self.label}: wanted {self.wanted}, "
            f"used {used}. {self.describe(policy)}"
        )


def _has(source: str) -> str:
    return "real has" if source == REAL else f"{source} accepted"


def match_sizes(
    task_id: str,
    labels: Sequence[str],
    available_real: Mapping[str, int],
    accepted: Mapping[str, Mapping[str, int]],
    per_label: int,
    policy: SizePolicy,
) -> list[LabelSizes]:
    """Per label, the rows each source trains on.

    'equal': every source uses the minimum of per_label, the real rows and each mode's
    accepted rows, so all share one size and class balance. 'none': real uses
    min(per_label, its rows) and each mode all it accepted (sources then differ in size).
    """
    sizes = []
    for label in labels:
        have = {REAL: int(available_real.get(label, 0))}
        have |= {mode: int(counts.get(label, 0)) for mode, counts in accepted.items()}
        if policy == "equal":
            common = min(per_label, *have.values())
            used = dict.fromkeys(have, common)
        else:
            used = {
                source: min(per_label, n) if source == REAL else n for source, n in have.items()
            }
        sizes.append(LabelSizes(task=task_id, label=label, wanted=per_label, have=have, used=used))
    return sizes


def curve_source(per_label: int) -> str:
    """The name of a real learning-curve point (training.real_curve) in metrics rows: real@k,
    k real rows per label."""
    return f"{CURVE_PREFIX}{per_label}"


def curve_size(source: str) -> int | None:
    """k of a learning-curve point named real@k; None for every other source."""
    head, _, size = source.partition(CURVE_PREFIX)
    return int(size) if not head and size.isdigit() else None


def synthetic_set(mode: str, replicate: int) -> str:
    """A synthetic set's name in the size records: the mode, and for replicate r > 0 "mode#r"
    (generation.replicates), so each set's accepted rows count towards the common size."""
    return mode if replicate == 0 else f"{mode}#{replicate}"


def synthetic_sets(modes: Sequence[str], replicates: int) -> list[str]:
    """Every synthetic set a run makes: each mode, each replicate, by `synthetic_set` name."""
    return [synthetic_set(mode, r) for mode in modes for r in range(replicates)]


def label_counts(labels: Iterable[object]) -> dict[str, int]:
    """Rows per label, most frequent first."""
    return dict(Counter(str(label) for label in labels).most_common())


def matched_counts(sizes: Sequence[LabelSizes], source: str) -> dict[str, int]:
    """Rows per label that `source` ("real" or a mode) trains on."""
    return {size.label: size.used[source] for size in sizes}


def imbalance(sizes: Sequence[LabelSizes], source: str = REAL) -> str | None:
    """'ham 3,000, spam 598' when the labels of one task train on different counts, else None."""
    counts = matched_counts(sizes, source)
    if len(set(counts.values())) <= 1:
        return None
    return ", ".join(f"{label} {n:,}" for label, n in counts.items())
