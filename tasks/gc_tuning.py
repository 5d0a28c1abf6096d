"""The cyclic garbage collector while a process generates.

Measured with `gc.callbacks` on a 10,000-request run of bench/generation.py (2 cores), the
collector took ~2.3 s of the flow process's ~20 s of CPU:
- Full collections walked the ~300,000 long-lived objects that a generation process holds
  before its first request (Prefect, pandas, pyarrow, the openai SDK, the label pools), ~0.3 s
  each. Frozen, they are skipped. They are still freed when their last reference goes
  (reference counting is untouched); all that is given up is collecting reference cycles
  among objects that existed before generation began. Once per process: freezing again would
  keep each run's leftover cycles for good.
- Young collections ran every 700 net allocations, ~700 times per 10,000 requests (each
  request allocates hundreds of objects in the SDK, aiohttp and pydantic, nearly all freed by
  reference counting). Every YOUNG_THRESHOLD allocations instead, they ran 14 times, and no
  full collection came within the run.
Together: ~2.3 s -> ~0.3 s of collector CPU.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000
_lock = threading.Lock()
_frozen = False


@contextmanager
def generation_gc() -> Iterator[None]:
    """Long-lived objects frozen (once per process) and young collections every
    YOUNG_THRESHOLD allocations, until the block ends; the thresholds are then restored."""
    global _frozen
    with _lock:
        if not _frozen:
            gc.freeze()
            _frozen = True
        before = gc.get_threshold()
        gc.set_threshold(max(before[0], YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
