"""The generation benchmark's arithmetic: best and median of interleaved runs, the RSS line."""

from __future__ import annotations

import pytest

from bench.generation import Summary, alternating, cached_target, ratio_target, rss_growth_line


def test_best_is_the_shortest_run_and_the_median_the_middle_one() -> None:
    summary = Summary(seconds=(40.0, 49.9, 38.5), work=10_000)
    assert summary.best_s == 38.5
    assert summary.median_s == 40.0
    assert summary.best_rps == pytest.approx(10_000 / 38.5)
    assert summary.median_rps == pytest.approx(250.0)
    assert Summary(seconds=(3.0, 1.0, 4.0, 2.0), work=1).median_s == 2.5


def test_each_side_goes_first_as_often_as_the_other() -> None:
    assert alternating(3) == ["raw", "flow", "flow", "raw", "raw", "flow"]
    order = alternating(4)
    firsts = [order[i] for i in range(0, len(order), 2)]
    assert firsts.count("raw") == firsts.count("flow") == 2
    assert order.count("raw") == order.count("flow") == 4


def test_rss_line_compares_the_smallest_and_largest_runs() -> None:
    line = rss_growth_line({100_000: 550.4, 10_000: 500.0})
    assert line == (
        "peak RSS of the flow process: 10k 500 MiB, 100k 550 MiB (ratio 1.10, target <= 1.1)"
    )


def test_targets_follow_the_issue_by_scale() -> None:
    assert ratio_target(10_000) == 0.9 and ratio_target(100_000) == 0.95
    assert cached_target(100_000) == 0.02 and cached_target(10_000) == 0.05
