"""The generation benchmark's arithmetic: best and median of interleaved runs, the RSS line."""

from __future__ import annotations

import pytest

from bench.generation import (
    SIDES,
    SizeResult,
    Summary,
    alternating,
    cached_target,
    ratio_target,
    rss_growth_line,
)


def test_best_is_the_shortest_run_and_the_median_the_middle_one() -> None:
    summary = Summary(seconds=(40.0, 49.9, 38.5), work=10_000)
    assert summary.best_s == 38.5
    assert summary.median_s == 40.0
    assert summary.best_rps == pytest.approx(10_000 / 38.5)
    assert summary.median_rps == pytest.approx(250.0)
    assert Summary(seconds=(3.0, 1.0, 4.0, 2.0), work=1).median_s == 2.5


def test_each_side_goes_first_as_often_as_the_others() -> None:
    assert alternating(2, ("raw", "flow")) == ["raw", "flow", "flow", "raw"]
    order = alternating(3)
    assert order[:3] == ["raw", "raw-aiohttp", "flow"]
    assert order[3:6] == ["raw-aiohttp", "flow", "raw"]
    assert sorted(order[i] for i in range(0, len(order), 3)) == sorted(SIDES)
    assert all(order.count(side) == 3 for side in SIDES)


def test_ratios_are_the_flow_over_each_baseline() -> None:
    result = SizeResult(
        10_000,
        {
            "raw": Summary((30.0, 40.0, 50.0), 10_000),
            "raw-aiohttp": Summary((25.0, 35.0, 45.0), 10_000),
            "flow": Summary((33.0, 36.0, 60.0), 10_000),
        },
        flow_peak_mib=400.0,
    )
    assert result.ratio == pytest.approx(30.0 / 33.0)
    assert result.ratio_to("raw-aiohttp") == pytest.approx(25.0 / 33.0)
    assert result.ratio_to("raw", "median_rps") == pytest.approx(40.0 / 36.0)


def test_rss_line_compares_the_smallest_and_largest_runs() -> None:
    line = rss_growth_line({100_000: 550.4, 10_000: 500.0})
    assert line == (
        "peak RSS of the flow process: 10k 500 MiB, 100k 550 MiB (ratio 1.10, target <= 1.1)"
    )


def test_targets_follow_the_issue_by_scale() -> None:
    assert ratio_target(10_000) == 0.9 and ratio_target(100_000) == 0.95
    assert cached_target(100_000) == 0.02 and cached_target(10_000) == 0.05
