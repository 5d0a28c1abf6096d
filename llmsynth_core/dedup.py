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

from llmsynth_core.digests import DigestMap, TextSet
from llmsynth_core.parsing import normalise

SHINGLE_WORDS = 3
_NUM_PERM = 64
_LSH_MARGIN = 0.2
_DIGEST_SEED = 20261203


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
    keys: npt.NDArray[np.uint32]  # one digest per LSH band


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

    datasketch computes the MinHash signatures and chooses the bands; the candidates are those
    of `MinHashLSH` for the same signatures and bands. Memory is what bounds a run of the
    `paper` preset (tens of thousands of texts a label, several labels at once), so each text
    is kept as its normalised string in a `TextSet` (which the exact-duplicate gate shares) and
    a 32-bit digest of each band in a `DigestMap` (8 bytes a band): about 250 bytes a text,
    where dicts of band bytes and frozensets of shingles took 6.5 KB. A digest match is only a
    candidate: `find` confirms it with the exact Jaccard similarity, recomputed from the
    stored string, and a reject with the band itself, so a digest collision never changes a
    verdict.
    """

    def __init__(self, threshold: float, texts: TextSet | None = None) -> None:
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
        self.texts = texts if texts is not None else TextSet()
        self._digests = DigestMap(np.uint32)
        self._indexed = 0
        # One hasher, cleared per text: a fresh MinHash re-parses its permutations every time.
        self._hasher = MinHash(num_perm=_NUM_PERM, seed=1, hashfunc=_crc32, scheme="affine32")

    def fingerprint(self, text: str) -> Fingerprint:
        """Normalised text, shingles, MinHash signature and band digests of a text."""
        normalised = normalise(text)
        text_shingles = shingles(normalised)  # normalise() leaves its own output unchanged
        signature = self._signature(text_shingles)
        bands = signature[: self._bands * self._rows].reshape(self._bands, self._rows)
        mixed = (bands.astype(np.uint64) * self._mix).sum(axis=1, dtype=np.uint64) ^ self._salt
        keys = (mixed >> np.uint64(32)).astype(np.uint32)
        return Fingerprint(normalised, text_shingles, signature, keys)

    def _signature(self, text_shingles: frozenset[str]) -> npt.NDArray[np.uint32]:
        hasher = self._hasher
        hasher.clear()
        hasher.update_batch([s.encode("utf-8") for s in text_shingles])
        signature: npt.NDArray[np.uint32] = hasher.hashvalues.copy()
        return signature

    def _digest_matches(self, fingerprint: Fingerprint) -> set[int]:
        """Positions (in `texts`) of the texts with a band digest equal to one of this text's."""
        return self._digests.find(fingerprint.keys)

    def _shares_band(self, fingerprint: Fingerprint, position: int) -> bool:
        """Whether the text at `position` has a band equal to one of this text's (not only its
        digest): recomputed, as it is needed only to confirm a reject."""
        other = self._signature(shingles(self.texts[position]))
        size = self._bands * self._rows
        mine = fingerprint.signature[:size].reshape(self._bands, self._rows)
        theirs = other[:size].reshape(self._bands, self._rows)
        return bool((mine == theirs).all(axis=1).any())

    def candidates(self, fingerprint: Fingerprint) -> set[int]:
        """Positions (in order of `add`) of the texts sharing at least one band."""
        return {i for i in self._digest_matches(fingerprint) if self._shares_band(fingerprint, i)}

    def find(self, fingerprint: Fingerprint) -> bool:
        if not fingerprint.shingles or not self._indexed:
            return False
        return any(
            jaccard(fingerprint.shingles, shingles(self.texts[i])) >= self.threshold
            and self._shares_band(fingerprint, i)
            for i in sorted(self._digest_matches(fingerprint))
        )

    def add(self, fingerprint: Fingerprint) -> None:
        """Keep the text in `texts`, and its bands when it has shingles."""
        position = self.texts.add(fingerprint.normalised)
        if fingerprint.shingles:
            self._digests.add(fingerprint.keys.tolist(), position)
            self._indexed += 1

    def __len__(self) -> int:
        return self._indexed
