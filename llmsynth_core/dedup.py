"""Near-duplicate detection on word n-gram shingles.

Candidates come from MinHash LSH (datasketch), so a label's 3,000 texts are not compared
pairwise; each candidate is then confirmed with the exact Jaccard similarity, so a hash
collision never rejects a text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llmsynth_core.parsing import normalise

SHINGLE_WORDS = 3
_NUM_PERM = 64
_LSH_MARGIN = 0.2


def shingles(text: str, n: int = SHINGLE_WORDS) -> frozenset[str]:
    """Word n-grams of the normalised text (the whole text when it has fewer than n words)."""
    words = normalise(text).split()
    if len(words) < n:
        return frozenset({" ".join(words)}) if words else frozenset()
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def containment(part: frozenset[str], whole: frozenset[str]) -> float:
    """Share of `part`'s shingles that also occur in `whole`."""
    return len(part & whole) / len(part) if part else 0.0


def max_containment(text: frozenset[str], others: Iterable[frozenset[str]]) -> float:
    return max((containment(text, other) for other in others), default=0.0)


@dataclass(frozen=True)
class Fingerprint:
    shingles: frozenset[str]
    minhash: Any


class NearDuplicateIndex:
    """Texts seen so far; `find` says whether a new one is within `threshold` Jaccard of any."""

    def __init__(self, threshold: float) -> None:
        from datasketch import MinHash, MinHashLSH

        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
        self.threshold = threshold
        # LSH misses some pairs just above its threshold; a lower one catches them, and the
        # exact Jaccard check in `find` throws out the extra candidates.
        lsh_threshold = max(0.1, threshold - _LSH_MARGIN)
        self._lsh: Any = MinHashLSH(threshold=lsh_threshold, num_perm=_NUM_PERM)
        self._shingles: list[frozenset[str]] = []
        # Drawing the permutations is most of a fresh MinHash's cost: draw them once.
        self._permutations = MinHash(num_perm=_NUM_PERM, seed=1).permutations

    def fingerprint(self, text: str) -> Fingerprint:
        """Shingles and MinHash of a text, computed once for both `find` and `add`."""
        from datasketch import MinHash

        text_shingles = shingles(text)
        minhash = MinHash(num_perm=_NUM_PERM, permutations=self._permutations, scheme="affine32")
        minhash.update_batch([s.encode("utf-8") for s in text_shingles])
        return Fingerprint(text_shingles, minhash)

    def find(self, fingerprint: Fingerprint) -> bool:
        if not fingerprint.shingles or not self._shingles:
            return False
        for key in self._lsh.query(fingerprint.minhash):
            if jaccard(fingerprint.shingles, self._shingles[int(key)]) >= self.threshold:
                return True
        return False

    def add(self, fingerprint: Fingerprint) -> None:
        if not fingerprint.shingles:
            return
        self._lsh.insert(str(len(self._shingles)), fingerprint.minhash)
        self._shingles.append(fingerprint.shingles)

    def __len__(self) -> int:
        return len(self._shingles)
