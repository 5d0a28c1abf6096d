"""Near-duplicate detection on word n-gram shingles.

Candidates come from MinHash signatures (datasketch) split into LSH bands, so a label's 3,000
texts are not compared pairwise; each candidate is then confirmed with the exact Jaccard
similarity, so a hash collision never rejects a text.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from llmsynth_core.parsing import normalise

SHINGLE_WORDS = 3
_NUM_PERM = 64
_LSH_MARGIN = 0.2


def shingles(text: str, n: int = SHINGLE_WORDS) -> frozenset[str]:
    """Word n-grams of the normalised text (the whole text when it has fewer than n words)."""
    words = normalise(text).split()
    if len(words) < n:
        return frozenset({" ".join(words)}) if words else frozenset()
    # The i-th word of every n-gram, zipped (shorter tails simply end the n-grams).
    return frozenset(map(" ".join, zip(*(words[i:] for i in range(n)), strict=False)))


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
    bands: tuple[bytes, ...]


@functools.cache
def lsh_bands(threshold: float, num_perm: int = _NUM_PERM) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's `MinHashLSH` picks for this threshold."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return int(lsh.b), int(lsh.r)


def _crc32(data: bytes) -> int:
    # A fast 32-bit hash of each shingle; datasketch's affine32 scheme mixes it (MurmurHash3's
    # finalizer) before the permutations, which is what its default SHA-1 hash spends ~20x on.
    return zlib.crc32(data)


class NearDuplicateIndex:
    """Texts seen so far; `find` says whether a new one is within `threshold` Jaccard of any.

    datasketch computes the MinHash signatures and chooses the bands; the bands are kept here
    in plain dicts because `MinHashLSH` (storage back-ends, a byte swap per band, separate band
    keys for query and insert) cost about 180 us per text, six times the rest of the gate.
    The candidates are the same as `MinHashLSH`'s for the same signatures and bands.
    """

    def __init__(self, threshold: float) -> None:
        from datasketch import MinHash

        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
        self.threshold = threshold
        # LSH misses some pairs just above its threshold; a lower one catches them, and the
        # exact Jaccard check in `find` throws out the extra candidates.
        bands, rows = lsh_bands(max(0.1, threshold - _LSH_MARGIN))
        self._ranges = [(band * rows, (band + 1) * rows) for band in range(bands)]
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
        self._shingles: list[frozenset[str]] = []
        # One hasher, cleared per text: a fresh MinHash re-parses its permutations every time.
        self._hasher = MinHash(num_perm=_NUM_PERM, seed=1, hashfunc=_crc32, scheme="affine32")

    def fingerprint(self, text: str) -> Fingerprint:
        """Shingles and LSH band keys of a text, computed once for both `find` and `add`."""
        text_shingles = shingles(text)
        hasher = self._hasher
        hasher.clear()
        hasher.update_batch([s.encode("utf-8") for s in text_shingles])
        signature: npt.NDArray[np.uint64] = hasher.hashvalues
        bands = tuple(signature[start:end].tobytes() for start, end in self._ranges)
        return Fingerprint(text_shingles, bands)

    def candidates(self, fingerprint: Fingerprint) -> set[int]:
        """Positions (in order of `add`) of the texts sharing at least one band."""
        found: set[int] = set()
        for bucket, key in zip(self._buckets, fingerprint.bands, strict=True):
            found.update(bucket.get(key, ()))
        return found

    def find(self, fingerprint: Fingerprint) -> bool:
        if not fingerprint.shingles or not self._shingles:
            return False
        return any(
            jaccard(fingerprint.shingles, self._shingles[i]) >= self.threshold
            for i in sorted(self.candidates(fingerprint))
        )

    def add(self, fingerprint: Fingerprint) -> None:
        if not fingerprint.shingles:
            return
        position = len(self._shingles)
        for bucket, key in zip(self._buckets, fingerprint.bands, strict=True):
            bucket.setdefault(key, []).append(position)
        self._shingles.append(fingerprint.shingles)

    def __len__(self) -> int:
        return len(self._shingles)
