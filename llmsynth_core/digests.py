"""Compact stores for the texts a label has accepted, which the duplicate gates compare with.

A label of the `paper` preset accepts tens of thousands of texts, and a run judges several
labels at once. As Python objects (a str, a set slot, dicts of band keys, frozensets of
shingles) each accepted text held about 6.5 KB; packed as here, about 250 bytes. A digest only
proposes candidates: every answer is confirmed against the stored text, so a digest collision
never changes one.
"""

from __future__ import annotations

from array import array

import numpy as np
import numpy.typing as npt

# Entries kept in a dict before they are merged into the sorted arrays: a merge copies the
# arrays, so merging every entry would be quadratic, and the dict costs ~100 bytes an entry.
MERGE_EVERY = 8192


class DigestMap:
    """Integer digests to positions (many to many): sorted arrays, about (digest bytes + 4)
    bytes an entry, with the latest entries in a dict until `merge_every` of them."""

    def __init__(self, dtype: type[np.unsignedinteger] = np.uint64, merge_every: int = 0) -> None:
        self._dtype = dtype
        self._merge_every = merge_every or MERGE_EVERY
        self._keys: npt.NDArray[np.unsignedinteger] = np.empty(0, dtype=dtype)
        self._positions: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._recent: dict[int, list[int]] = {}
        self._recent_keys: list[int] = []
        self._recent_positions: list[int] = []

    def add(self, keys: list[int], position: int) -> None:
        for key in keys:
            self._recent.setdefault(key, []).append(position)
        self._recent_keys += keys
        self._recent_positions += [position] * len(keys)
        if len(self._recent_keys) >= self._merge_every:
            self.merge()

    def find(self, keys: npt.NDArray[np.unsignedinteger]) -> set[int]:
        """Positions stored under any of these digests."""
        found: set[int] = set()
        starts = self._keys.searchsorted(keys, "left")
        ends = self._keys.searchsorted(keys, "right")
        for i in np.flatnonzero(ends > starts).tolist():  # mostly none
            found.update(self._positions[starts[i] : ends[i]].tolist())
        recent = self._recent
        for key in keys.tolist():
            if key in recent:
                found.update(recent[key])
        return found

    def merge(self) -> None:
        """Insert the recent entries into the sorted arrays: one copy of each, not a re-sort."""
        if not self._recent_keys:
            return
        keys = np.array(self._recent_keys, dtype=self._dtype)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        positions = np.array(self._recent_positions, dtype=np.int32)[order]
        at = self._keys.searchsorted(keys, "right")
        self._keys = np.insert(self._keys, at, keys)
        self._positions = np.insert(self._positions, at, positions)
        self._recent.clear()
        self._recent_keys, self._recent_positions = [], []


def text_digest(text: str) -> int:
    """A 64-bit digest of a text, for this process only (str hashes are salted per process)."""
    return hash(text) & 0xFFFF_FFFF_FFFF_FFFF


class TextSet:
    """Texts in order of `add`, with exact membership: UTF-8 in one growing buffer (about a
    byte a character plus 8 for its end, where a str costs ~50 bytes more and a set slot ~30),
    found by their 64-bit digests."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("Q")
        self._digests = DigestMap(np.uint64, merge_every=2048)

    def add(self, text: str) -> int:
        """Store a text; its position."""
        position = len(self._ends)
        self._data += text.encode("utf-8")
        self._ends.append(len(self._data))
        self._digests.add([text_digest(text)], position)
        return position

    def __getitem__(self, position: int) -> str:
        start = self._ends[position - 1] if position else 0
        return self._data[start : self._ends[position]].decode("utf-8")

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        digest = np.array([text_digest(text)], dtype=np.uint64)
        return any(self[position] == text for position in self._digests.find(digest))

    def __len__(self) -> int:
        return len(self._ends)
