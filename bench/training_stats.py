"""The training benchmark's arithmetic: best and median of interleaved runs, their ratios, and the
paired per-seed Macro-F1 difference with its interval. Pure, so it is tested without torch."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Rates:
    """One side's examples per second over its runs: the best run and the median run."""

    best: float
    median: float


def rates(examples: int, seconds: Sequence[float]) -> Rates:
    """Examples per second of each run (`examples` each), summarised as best and median."""
    if not seconds or any(s <= 0 for s in seconds):
        raise ValueError(f"need at least one positive duration, got {list(seconds)}")
    per_run = [examples / s for s in seconds]
    return Rates(best=max(per_run), median=statistics.median(per_run))


def ratio(ours: Rates, theirs: Rates) -> Rates:
    """Our rate over theirs, best against best and median against median."""
    return Rates(best=ours.best / theirs.best, median=ours.median / theirs.median)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-seed differences (ours minus theirs) with a two-sided t interval."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def acceptable(self) -> bool:
        """The interval includes 0 or lies above it: no evidence that ours is worse."""
        return self.high >= 0


def paired_difference(
    ours: Sequence[float], theirs: Sequence[float], level: float = 0.95
) -> PairedDifference:
    """Student t interval of the mean of `ours[i] - theirs[i]` (same seed i on both sides).

    With one pair the interval is unbounded; with identical differences it has zero width.
    """
    if len(ours) != len(theirs) or not ours:
        raise ValueError(
            f"need the same non-zero number of runs on both sides, got {len(ours)} and "
            f"{len(theirs)}; run with --runs 3 or more"
        )
    diffs = [a - b for a, b in zip(ours, theirs, strict=True)]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n == 1:
        return PairedDifference(mean=mean, low=-math.inf, high=math.inf, n=1)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(diffs) / math.sqrt(n)
    return PairedDifference(mean=mean, low=mean - half, high=mean + half, n=n)


def rotated(names: Sequence[str], round_index: int) -> list[str]:
    """The order of the sides in round `round_index`: each round starts one side later, so every
    side runs in every position as often as the others and drifting load hits all alike."""
    shift = round_index % len(names)
    return [*names[shift:], *names[:shift]]
