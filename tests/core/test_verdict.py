"""The verdict reads the results' chance-normalised gap in plain words, and says so when the
comparison means nothing; built on hand-made results frames with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from llmsynth_core.verdict import (
    check_real_equivalent,
    closed_share,
    task_verdicts,
    verdict_sentences,
)


def _results(
    task: str,
    real: tuple[float, float, float],
    synthetic: dict[str, tuple[float, float, float]],
    chance: float,
    model: str = "m",
) -> pd.DataFrame:
    """Results rows as summarise_seeds writes them: (mean, ci low, ci high) per source, the gap
    and its normalised form derived from them so every column agrees with the others."""
    margin = real[0] - chance
    rows = [
        {
            "task": task,
            "subjectivity": 1,
            "model": model,
            "source": "real",
            "macro_f1": real[0],
            "macro_f1_ci_low": real[1],
            "macro_f1_ci_high": real[2],
        }
    ]
    for source, (f1, low, high) in synthetic.items():
        # The gap's interval: real's ends minus the synthetic's far ends (wide, but ordered).
        gap, gap_low, gap_high = real[0] - f1, real[1] - high, real[2] - low
        rows.append(
            {
                "task": task,
                "subjectivity": 1,
                "model": model,
                "source": source,
                "macro_f1": f1,
                "macro_f1_ci_low": low,
                "macro_f1_ci_high": high,
                "chance_macro_f1": chance,
                "gap_macro_f1": gap,
                "gap_low": gap_low,
                "gap_high": gap_high,
                "normalised_gap": gap / margin,
                "normalised_gap_low": gap_low / margin,
                "normalised_gap_high": gap_high / margin,
            }
        )
    return pd.DataFrame(rows)


def _share(synthetic: float, real: float, chance: float) -> str:
    return f"{100 * (synthetic - chance) / (real - chance):.0f}%"


def test_a_clear_result_quotes_the_chance_normalised_share_with_its_interval() -> None:
    results = _results("ag_news", (0.90, 0.88, 0.92), {"few_shot": (0.75, 0.72, 0.78)}, 0.25)
    (verdict,) = task_verdicts(results)
    (source,) = verdict.sources
    # The share's interval mirrors the normalised gap's: its low end comes from the gap's high
    # end (0.92 - 0.72, as _results built it), its high end from the gap's low end.
    share_low = _share(0.90 - (0.92 - 0.72), 0.90, 0.25)
    share_high = _share(0.90 - (0.88 - 0.78), 0.90, 0.25)
    assert source.headline == (
        f"synthetic few-shot data closed {_share(0.75, 0.90, 0.25)} of the way from chance to "
        f"real Macro-F1 [{share_low}, {share_high}] (0.750 vs real 0.900, chance 0.250)."
    )
    assert _share(0.75, 0.90, 0.25) == "77%"
    share = closed_share(results.iloc[1].to_dict())
    assert share.low < share.value < share.high


def test_a_model_at_chance_on_two_classes_reads_as_none_of_the_way_not_most_of_it() -> None:
    # Raw Macro-F1 0.50 against real 0.58 would read as 86% of real; above chance it is 0%.
    results = _results("imdb", (0.58, 0.55, 0.61), {"zero_shot": (0.50, 0.47, 0.53)}, 0.50)
    (verdict,) = task_verdicts(results)
    headline = verdict.sources[0].headline
    assert "closed 0% of the way from chance to real Macro-F1" in headline
    assert "86%" not in headline
    assert "not distinguishable from chance" in headline


def test_a_gap_interval_that_includes_zero_says_indistinguishable_from_real() -> None:
    results = _results("sms_spam", (0.95, 0.93, 0.97), {"few_shot": (0.94, 0.91, 0.96)}, 0.50)
    (verdict,) = task_verdicts(results)
    headline = verdict.sources[0].headline
    assert "not distinguishable from real (the gap's interval [-0.030, 0.060] includes 0)" in (
        headline
    )


def test_synthetic_above_real_is_said_to_beat_it() -> None:
    results = _results("ag_news", (0.80, 0.79, 0.81), {"few_shot": (0.90, 0.89, 0.91)}, 0.25)
    headline = task_verdicts(results)[0].sources[0].headline
    assert f"closed {_share(0.90, 0.80, 0.25)} of the way" in headline
    assert "better than real" in headline


def test_real_at_chance_quotes_no_share_and_says_the_comparison_is_not_meaningful() -> None:
    results = _results("tweet_irony", (0.53, 0.47, 0.59), {"few_shot": (0.52, 0.46, 0.58)}, 0.50)
    (verdict,) = task_verdicts(results)
    assert (
        verdict.sources[0].headline
        == "synthetic few-shot data reached Macro-F1 0.520 vs real 0.530."
    )
    (note,) = verdict.caveats
    assert verdict_sentences(verdict)[0] == note  # said before any number
    assert note.startswith("The real-trained model is not clearly above chance (Macro-F1 0.530")
    assert "[0.470, 0.590], chance 0.500" in note
    assert "not meaningful for this task" in note


def test_labels_short_of_their_quota_are_named_from_the_volume_record() -> None:
    results = _results("tweet_emotions", (0.7, 0.6, 0.8), {"few_shot": (0.6, 0.5, 0.7)}, 0.25)
    volume = [
        {"task": "tweet_emotions", "mode": "few_shot", "label": "joy", "target": 200,
         "accepted": 180, "shortfall": 20},
        {"task": "tweet_emotions", "mode": "few_shot", "label": "anger", "target": 200,
         "accepted": 200, "shortfall": 0},
        {"task": "other", "mode": "few_shot", "label": "x", "target": 200,
         "accepted": 3, "shortfall": 197},
    ]  # fmt: skip
    (verdict,) = task_verdicts(results, generation={"labels": volume})
    assert verdict.notes == (
        "Fell short of their generation quota (accepted of wanted): few_shot/joy 180 of 200.",
    )
    volume[0] = {**volume[0], "accepted": 200, "shortfall": 0}
    (verdict,) = task_verdicts(results, generation={"labels": volume})
    assert verdict.notes == ("Every label met its generation quota.",)


def test_without_a_volume_record_the_size_records_name_the_short_labels() -> None:
    results = _results("tweet_emotions", (0.7, 0.6, 0.8), {"few_shot": (0.6, 0.5, 0.7)}, 0.25)
    sizes = {
        "labels": [
            {"task": "tweet_emotions", "label": "joy", "wanted": 24,
             "have": {"real": 10, "few_shot": 17}, "used": {"real": 10, "few_shot": 10}},
        ]
    }  # fmt: skip
    (verdict,) = task_verdicts(results, size_matching=sizes)
    # Real having too few rows is not a generation quota: only few_shot is named.
    assert verdict.notes == (
        "Fell short of their generation quota (accepted of wanted): few_shot/joy 17 of 24.",
    )


def test_weakest_classes_are_those_furthest_below_real() -> None:
    results = _results("tweet_emotions", (0.7, 0.6, 0.8), {"few_shot": (0.6, 0.5, 0.7)}, 0.25)
    f1 = {
        "real": {"anger": 0.8, "joy": 0.9, "optimism": 0.6, "sadness": 0.7},
        "few_shot": {"anger": 0.75, "joy": 0.4, "optimism": 0.3, "sadness": 0.72},
    }
    per_class = pd.DataFrame(
        [
            {"task": "tweet_emotions", "model": "m", "source": s, "label": label, "f1": v}
            for s, scores in f1.items()
            for label, v in scores.items()
        ]
    )
    (verdict,) = task_verdicts(results, per_class=per_class)
    assert verdict.sources[0].details == (
        "Weakest on joy (F1 0.40 vs real 0.90), optimism (F1 0.30 vs real 0.60).",
    )


def test_low_agreement_instances_are_compared_with_the_rest_for_both_sources() -> None:
    results = _results(
        "financial_phrasebank", (0.8, 0.7, 0.9), {"zero_shot": (0.5, 0.4, 0.6)}, 1 / 3
    )

    def sweep(source: str, accuracy: list[float]) -> list[dict[str, object]]:
        n = [100, 60, 40, 5]  # cumulative: a_i >= threshold; the last is too small to fit
        return [
            {"task": "financial_phrasebank", "model": "m", "source": source, "threshold": g,
             "n": k, "accuracy": a, "kept": k >= 10, "agreement_source": "human"}
            for g, k, a in zip([0.5, 0.66, 0.75, 1.0], n, accuracy, strict=True)
        ]  # fmt: skip

    sweeps = pd.DataFrame(
        sweep("zero_shot", [0.5, 0.6, 0.8, 1.0]) + sweep("real", [0.8, 0.85, 0.9, 1.0])
    )
    (verdict,) = task_verdicts(results, agreement_sweeps=sweeps)
    # Below 0.75: 60 instances; zero-shot got 100*0.5 - 40*0.8 = 18 right, real 80 - 36 = 44.
    assert verdict.sources[0].details == (
        f"On the 60 of 100 test instances with annotator agreement below 0.75, accuracy "
        f"{18 / 60:.2f} vs 0.80 on the rest (real-trained: {44 / 60:.2f} vs 0.90).",
    )


def test_the_real_equivalent_size_is_quoted_when_given_and_checked() -> None:
    results = _results("ag_news", (0.90, 0.88, 0.92), {"few_shot": (0.75, 0.72, 0.78),
                       "zero_shot": (0.6, 0.55, 0.65)}, 0.25)  # fmt: skip
    worth = pd.DataFrame(
        {
            "task": ["ag_news", "ag_news", "imdb"],
            "model": ["m", "m", "m"],
            "source": ["few_shot", "zero_shot", "few_shot"],
            "text": ["≈ 11 [6, 19]", "< 2", "> 64"],
        }
    )
    (verdict,) = task_verdicts(results, real_equivalent=worth)
    few, zero = verdict.sources
    assert few.headline.endswith("; worth ≈ 11 [6, 19] real examples per label.")
    assert zero.headline.endswith("; worth < 2 real examples per label.")
    sentences = verdict_sentences(verdict, details=False)
    assert sentences[0].startswith("Synthetic few-shot data closed")
    with pytest.raises(ValueError, match=r"real_equivalent lacks columns \['text'\]"):
        check_real_equivalent(worth.drop(columns="text"))


def test_several_classifiers_are_named_and_results_without_gaps_give_no_verdict() -> None:
    results = pd.concat(
        [
            _results("imdb", (0.9, 0.88, 0.92), {"few_shot": (0.8, 0.78, 0.82)}, 0.5, model=m)
            for m in ("embedded:all-MiniLM-L6-v2", "roberta-base")
        ]
    )
    (verdict,) = task_verdicts(results)
    assert [s.headline.split(",")[0] for s in verdict.sources] == [
        "with embedded:all-MiniLM-L6-v2",
        "with roberta-base",
    ]
    bare = results[["task", "subjectivity", "model", "source", "macro_f1"]]
    assert task_verdicts(bare) == []
