"""The collector's settings while a process generates (tasks/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tasks import gc_tuning
from tasks.gc_tuning import YOUNG_THRESHOLD, generation_gc


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in a process that has not generated yet; the collector as it was afterwards."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    monkeypatch.setattr(gc_tuning, "_frozen", False)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("fresh_process")
def test_long_lived_objects_are_frozen_once_and_thresholds_restored() -> None:
    gc.set_threshold(700, 10, 10)
    assert gc.get_freeze_count() == 0
    with generation_gc():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # this test process's modules, at least
        young = [[i] for i in range(100)]  # made during the block: not frozen
    assert gc.get_threshold() == (700, 10, 10)
    with generation_gc():  # a second run in the same process freezes nothing more
        # (the count may drop: frozen objects are still freed by reference counting)
        assert gc.get_freeze_count() < frozen + len(young)


@pytest.mark.usefixtures("fresh_process")
def test_the_thresholds_come_back_when_generation_fails() -> None:
    gc.set_threshold(20_000, 5, 5)  # a caller's own, higher, setting is kept
    with pytest.raises(RuntimeError), generation_gc():
        assert gc.get_threshold() == (20_000, 5, 5)
        raise RuntimeError("a chunk failed")
    assert gc.get_threshold() == (20_000, 5, 5)


@pytest.mark.usefixtures("fresh_process")
def test_cycles_made_during_generation_are_still_collected() -> None:
    with generation_gc():
        cycle: list[object] = []
        cycle.append(cycle)
        marker = id(cycle)
        del cycle
        gc.collect()
        assert all(id(obj) != marker for obj in gc.get_objects())
