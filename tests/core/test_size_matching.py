"""Size matching: every source trains on the same rows per label, and every cap is named."""

from __future__ import annotations

from llmsynth_core.size_matching import (
    imbalance,
    label_counts,
    match_sizes,
    matched_counts,
    synthetic_sets,
)

SMS = ["ham", "spam"]
FULL = {"ham": 3000, "spam": 3000}


def test_real_short_on_a_label_shrinks_every_source_to_it() -> None:
    # sms_spam at 3,000 per label: the real split has 3,000+ ham but only 598 spam.
    sizes = match_sizes(
        "sms_spam",
        SMS,
        {"ham": 3875, "spam": 598},
        {"zero_shot": FULL, "few_shot": FULL},
        per_label=3000,
        policy="equal",
    )
    for source in ("real", "zero_shot", "few_shot"):
        assert matched_counts(sizes, source) == {"ham": 3000, "spam": 598}
    ham, spam = sizes
    assert not ham.capped and spam.capped
    assert spam.short == {"real": 598}
    assert spam.describe("equal") == (
        "sms_spam/spam: every source trains on 598 rows, not the 3,000 wanted (real has 598)"
    )
    assert imbalance(sizes) == "ham 3,000, spam 598"


def test_a_mode_short_on_one_label_shrinks_every_source_for_that_label_only() -> None:
    labels = ["World", "Sports", "Business"]
    sizes = match_sizes(
        "ag_news",
        labels,
        dict.fromkeys(labels, 100),
        {
            "zero_shot": {"World": 3, "Sports": 1, "Business": 3},
            "few_shot": dict.fromkeys(labels, 3),
        },
        per_label=3,
        policy="equal",
    )
    expected = {"World": 3, "Sports": 1, "Business": 3}
    assert {
        s: matched_counts(sizes, s) for s in ("real", "zero_shot", "few_shot")
    } == dict.fromkeys(("real", "zero_shot", "few_shot"), expected)
    assert [size.label for size in sizes if size.capped] == ["Sports"]
    assert sizes[1].short == {"zero_shot": 1}
    assert "zero_shot accepted 1" in sizes[1].describe("equal")


def test_the_smallest_of_real_and_every_mode_wins() -> None:
    sizes = match_sizes(
        "t",
        ["a", "b"],
        {"a": 5, "b": 10},
        {"zero_shot": {"a": 8, "b": 7}, "few_shot": {"a": 9}},  # few_shot accepted no b
        per_label=10,
        policy="equal",
    )
    assert matched_counts(sizes, "few_shot") == {"a": 5, "b": 0}
    assert sizes[1].short == {"zero_shot": 7, "few_shot": 0}


def test_none_keeps_each_source_at_its_own_size_and_names_the_caps() -> None:
    sizes = match_sizes(
        "sms_spam",
        SMS,
        {"ham": 3875, "spam": 598},
        {"zero_shot": {"ham": 3000, "spam": 2500}},
        per_label=3000,
        policy="none",
    )
    assert matched_counts(sizes, "real") == {"ham": 3000, "spam": 598}
    assert matched_counts(sizes, "zero_shot") == {"ham": 3000, "spam": 2500}
    assert sizes[1].describe("none") == (
        "sms_spam/spam: sources train on real 598, zero_shot 2,500 of the 3,000 wanted "
        "(real has 598, zero_shot accepted 2,500)"
    )
    assert imbalance(sizes, "zero_shot") == "ham 3,000, spam 2,500"


def test_nothing_is_capped_when_every_source_fills_its_quota() -> None:
    sizes = match_sizes(
        "t", ["a", "b"], {"a": 50, "b": 50}, {"zero_shot": {"a": 4, "b": 4}}, 4, "equal"
    )
    assert not any(size.capped for size in sizes)
    assert imbalance(sizes) is None


def test_warning_line_gives_the_counts_then_the_reason() -> None:
    sizes = match_sizes(
        "ag_news", ["Sports"], {"Sports": 1}, {"zero_shot": {"Sports": 2}}, 3, "equal"
    )
    assert sizes[0].warning("equal") == (
        "size matching: task ag_news, label Sports: wanted 3, used real 1, zero_shot 1. "
        "ag_news/Sports: every source trains on 1 row, not the 3 wanted (real has 1, "
        "zero_shot accepted 2)"
    )


def test_synthetic_sets_name_every_mode_and_replicate() -> None:
    assert synthetic_sets(["zero_shot", "few_shot"], 2) == [
        "zero_shot",
        "zero_shot#1",
        "few_shot",
        "few_shot#1",
    ]


def test_label_counts_most_frequent_first() -> None:
    assert label_counts(["b", "a", "b", 1]) == {"b": 2, "a": 1, "1": 1}
