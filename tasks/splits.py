"""Real splits read once per process: several label chunks and training runs share them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import pandas as pd

from llmsynth_core.data import Split, load_split, split_path
from llmsynth_core.taskspec import TaskSpec

_MAX_ENTRIES = 16
_cache: OrderedDict[tuple[str, str, int, int], pd.DataFrame] = OrderedDict()
_lock = threading.Lock()


def read_split(spec: TaskSpec, data_dir: Path, split: Split) -> pd.DataFrame:
    """`load_split`, cached on the spec and the file's identity; treat the frame as read-only."""
    path = split_path(spec, data_dir, split)
    if not path.exists():
        return load_split(spec, data_dir, split)  # raises the error that names the fix
    stat = path.stat()
    key = (spec.model_dump_json(), str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    frame = load_split(spec, data_dir, split)
    with _lock:
        _cache[key] = frame
        while len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
    return frame
