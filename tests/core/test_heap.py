"""Freed memory kept in the heap during training (glibc): a large buffer allocated again inside
the block reuses its pages instead of faulting fresh ones in. Counts page faults, not time."""

from __future__ import annotations

import ctypes
import resource

import pytest

from llmsynth_core.heap import _glibc, reuse_freed_memory

MIB_64 = 64 * 2**20


def _faults_of_refills(rounds: int) -> int:
    """Minor page faults while malloc-ing, writing and freeing 64 MiB `rounds` times (plain
    malloc: numpy and torch may ask for huge pages, which fault differently)."""
    libc = _glibc()
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        buffer = libc.malloc(MIB_64)
        ctypes.memset(buffer, 1, MIB_64)
        libc.free(buffer)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(_glibc() is None, reason="mallopt is glibc's")
def test_refills_fault_far_less_inside_the_block() -> None:
    pages = MIB_64 // resource.getpagesize()
    outside = _faults_of_refills(4)
    with reuse_freed_memory() as active:
        assert active
        _faults_of_refills(1)  # the heap grows once
        inside = _faults_of_refills(4)
    assert outside >= 3 * pages  # every round maps fresh pages
    assert inside < pages // 2
    assert _faults_of_refills(2) >= pages  # defaults are back after the block


@pytest.mark.skipif(_glibc() is None, reason="mallopt is glibc's")
def test_nested_blocks_keep_the_setting_until_the_outer_one_ends() -> None:
    with reuse_freed_memory():
        with reuse_freed_memory():
            _faults_of_refills(1)
        assert _faults_of_refills(3) < MIB_64 // resource.getpagesize() // 2
