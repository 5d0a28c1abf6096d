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
_DIGEST_SEED = 20261203
_MERGE_EVERY = 2048


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
    """What the index needs of one text, computed once for both `find` and `add`."""

    normalised: str
    shingles: frozenset[str]
    signature: npt.NDArray[np.uint32]
    keys: npt.NDArray[np.uint64]  # one 64-bit digest per LSH band


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

    datasketch computes the MinHash signatures and chooses the bands. The candidates are those
    of `MinHashLSH` for the same signatures and bands, kept in a tenth of its memory (a label of
    the `paper` preset holds tens of thousands of texts, several labels at once): per text, its
    normalised string and a 64-bit digest of each band in a sorted array (12 bytes a band),
    where Python dicts of band bytes and frozensets of shingles took about 5 KB. A digest match
    is only a candidate; `find` confirms it with the exact Jaccard similarity, recomputed from
    the stored string, and a reject with the band itself, so a digest collision never changes
    a verdict.
    """

    def __init__(self, threshold: float) -> None:
        from datasketch import MinHash

        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
        self.threshold = threshold
        # LSH misses some pairs just above its threshold; a lower one catches them, and the
        # exact Jaccard check in `find` throws out the extra candidates.
        bands, rows = lsh_bands(max(0.1, threshold - _LSH_MARGIN))
        self._bands, self._rows = bands, rows
        mix = np.random.default_rng(_DIGEST_SEED).integers(1, 2**63, size=rows + 1, dtype=np.uint64)
        self._mix = mix[:rows] | np.uint64(1)  # odd multipliers
        self._salt = np.arange(bands, dtype=np.uint64) * mix[rows]
        self._texts: list[str] = []
        # Digests merged into one sorted array, and the latest ones in a dict until there are
        # _MERGE_EVERY texts of them (a sorted insert per text would copy the whole array).
        self._keys: npt.NDArray[np.uint64] = np.empty(0, dtype=np.uint64)
        self._positions: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._recent: dict[int, list[int]] = {}
        self._recent_keys: list[int] = []
        self._recent_positions: list[int] = []
        # One hasher, cleared per text: a fresh MinHash re-parses its permutations every time.
        self._hasher = MinHash(num_perm=_NUM_PERM, seed=1, hashfunc=_crc32, scheme="affine32")

    def fingerprint(self, text: str) -> Fingerprint:
        """Normalised text, shingles, MinHash signature and band digests of a text."""
        normalised = normalise(text)
        text_shingles = shingles(normalised)  # normalise() leaves its own output unchanged
        signature = self._signature(text_shingles)
        bands = signature[: self._bands * self._rows].reshape(self._bands, self._rows)
        keys = (bands.astype(np.uint64) * self._mix).sum(axis=1, dtype=np.uint64) ^ self._salt
        return Fingerprint(normalised, text_shingles, signature, keys)

    def _signature(self, text_shingles: frozenset[str]) -> npt.NDArray[np.uint32]:
        hasher = self._hasher
        hasher.clear()
        hasher.update_batch([s.encode("utf-8") for s in text_shingles])
        signature: npt.NDArray[np.uint32] = hasher.hashvalues.copy()
        return signature

    def _digest_matches(self, fingerprint: Fingerprint) -> set[int]:
        """Positions of the texts with a band digest equal to one of this text's."""
        found: set[int] = set()
        keys = fingerprint.keys
        starts = self._keys.searchsorted(keys, "left")
        ends = self._keys.searchsorted(keys, "right")
        for band in np.flatnonzero(ends > starts).tolist():  # mostly none
            found.update(self._positions[starts[band] : ends[band]].tolist())
        recent = self._recent
        for key in keys.tolist():
            if key in recent:
                found.update(recent[key])
        return found

    def _shares_band(self, fingerprint: Fingerprint, position: int) -> bool:
        """Whether the text at `position` has a band equal to one of this text's (not only its
        digest): recomputed, as it is needed only to confirm a reject."""
        other = self._signature(shingles(self._texts[position]))
        size = self._bands * self._rows
        mine = fingerprint.signature[:size].reshape(self._bands, self._rows)
        theirs = other[:size].reshape(self._bands, self._rows)
        return bool((mine == theirs).all(axis=1).any())

    def candidates(self, fingerprint: Fingerprint) -> set[int]:
        """Positions (in order of `add`) of the texts sharing at least one band."""
        return {i for i in self._digest_matches(fingerprint) if self._shares_band(fingerprint, i)}

    def find(self, fingerprint: Fingerprint) -> bool:
        if not fingerprint.shingles or not self._texts:
            return False
        return any(
            jaccard(fingerprint.shingles, shingles(self._texts[i])) >= self.threshold
            and self._shares_band(fingerprint, i)
            for i in sorted(self._digest_matches(fingerprint))
        )

    def add(self, fingerprint: Fingerprint) -> None:
        if not fingerprint.shingles:
            return
        position = len(self._texts)
        self._texts.append(fingerprint.normalised)
        keys = fingerprint.keys.tolist()
        for key in keys:
            self._recent.setdefault(key, []).append(position)
        self._recent_keys += keys
        self._recent_positions += [position] * len(keys)
        if len(self._recent_keys) >= _MERGE_EVERY * self._bands:
            self._merge()

    def _merge(self) -> None:
        keys = np.concatenate([self._keys, np.array(self._recent_keys, dtype=np.uint64)])
        positions = np.concatenate(
            [self._positions, np.array(self._recent_positions, dtype=np.int32)]
        )
        order = np.argsort(keys, kind="stable")
        self._keys, self._positions = keys[order], positions[order]
        self._recent.clear()
        self._recent_keys, self._recent_positions = [], []

    def __len__(self) -> int:
        return len(self._texts)
