"""Data snapshots read once per process: several label chunks and training runs share them."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pandas as pd

from tasks.artifacts import ArtifactRef, read_artifact

_MAX_ENTRIES = 16
_cache: OrderedDict[tuple[str, str], pd.DataFrame] = OrderedDict()
_lock = threading.Lock()


def read_snapshot(ref: ArtifactRef) -> pd.DataFrame:
    """`read_artifact`, cached on the ref (its content never changes); treat it as read-only."""
    key = (ref.uri, ref.sha256)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    frame = read_artifact(ref)
    with _lock:
        _cache[key] = frame
        while len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
    return frame
