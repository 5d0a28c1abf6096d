"""The report renders every section from a small hand-made run, with and without optional parts."""

from __future__ import annotations

import pandas as pd

from llmsynth_core.assumptions import ASSUMED, assumed_settings
from llmsynth_core.config import load_experiment, preset_path
from llmsynth_core.registry import load_registry, select_tasks
from llmsynth_core.report import (
    SECTIONS,
    TEXT_SECTIONS,
    RunData,
    build_sections,
    render_html,
    render_markdown,
    results_markdown,
)
from llmsynth_core.results import GAP_COLUMNS

RESULTS = pd.DataFrame(
    [
        {"task": "t", "subjectivity": 1, "model": "m", "source": s, "macro_f1": f, "accuracy": f}
        for s, f in (("real", 0.9), ("zero_shot", 0.7), ("few_shot", 0.8))
    ]
)


def test_minimal_run_renders_every_section_saying_what_is_missing() -> None:
    run = RunData(name="tiny", results=RESULTS)
    sections = build_sections(run, {})
    assert [s.title for s in sections] == list(SECTIONS)
    markdown = render_markdown("r", sections, {})
    for title in SECTIONS:
        assert f"## {title}" in markdown
    assert "Not computed for this run." in markdown
    assert "No per-epoch curves" in markdown
    assert "0.200" in markdown  # the real minus zero-shot gap
    assert _section_texts(markdown)[SECTIONS[1]].strip() == "Not computed for this run."


def test_figures_are_inlined_in_html_and_linked_in_markdown() -> None:
    run = RunData(
        name="tiny",
        results=RESULTS,
        generation={"accepted": 3, "rejected": 1, "cost_usd": 0.5, "labels": [], "shortfalls": []},
    )
    png = b"\x89PNG fake"
    sections = build_sections(run, {"curves-t": png})
    page = render_html("<report>", sections, {"curves-t": png})
    assert "&lt;report&gt;" in page  # titles are escaped
    assert page.count("data:image/png;base64,") == 1
    markdown = render_markdown("r", sections, {"curves-t": "report-files/curves-t.png"})
    assert "![curves-t](report-files/curves-t.png)" in markdown
    assert "3 accepted and 1 rejected rows; total cost $0.5000" in markdown


def test_the_report_lists_what_the_run_assumed() -> None:
    quick = load_experiment(preset_path("quick"))
    summary = {"assumed": assumed_settings(quick, select_tasks(load_registry(), quick.tasks))}
    markdown = render_markdown("r", build_sections(RunData("q", RESULTS, summary=summary), {}), {})
    assert f"| epochs (training.epochs) | {quick.training.epochs} | {ASSUMED} |" in markdown
    assert f"| max_tokens per reply: tweet_irony | 64 (llm.max_tokens) | {ASSUMED} |" in markdown
    older = render_markdown("r", build_sections(RunData("q", RESULTS, summary={}), {}), {})
    assert "does not list the settings it assumed" in older


def test_agreement_from_the_panel_names_its_model_k_and_drops() -> None:
    from llmsynth_core.agreement import estimate_analysis

    predictions = pd.DataFrame(
        {
            "task": "t",
            "model": "m",
            "source": "real",
            "row": range(30),
            "row_id": [str(r) for r in range(30)],
            "correct": [r % 3 != 0 for r in range(30)],
            "agreement": None,
        }
    )
    estimates = pd.DataFrame(
        {
            "task": "t",
            "row": range(30),
            "row_id": [str(r) for r in range(30)],
            "annotations": [["a", "a", "b", "a", "a"]] * 30,
            "raw": [["a", "a", "b", "a", "a"]] * 30,
            "agreement_estimate": [None if r < 2 else [0.6, 0.8, 1.0][r % 3] for r in range(30)],
            "model": "big-panel",
        }
    )
    sweeps, fits = estimate_analysis(predictions, estimates, min_instances=1)
    run = RunData(name="tiny", results=RESULTS, agreement_sweeps=sweeps, agreement_fits=fits)
    markdown = render_markdown("r", build_sections(run, {}), {})
    assert "not human annotator agreement" in markdown
    assert (
        "t: LLM estimate (big-panel, k=5), not human agreement; 30 test instances labelled, "
        "2 dropped" in markdown
    )
    assert "| LLM estimate (big-panel, k=5) |" in markdown  # in the fits and sweeps tables


def test_results_section_shows_the_paired_gap_and_its_normalised_form() -> None:
    gaps = {
        "zero_shot": (0.2, 0.15, 0.25, 0.5, 0.4, 0.6),
        "few_shot": (0.1, 0.05, 0.15, 0.25, 0.1, 0.4),
    }
    results = RESULTS.assign(
        **{
            column: [float("nan") if s == "real" else gaps[s][i] for s in RESULTS["source"]]
            # every gap column but chance_macro_f1, in GAP_COLUMNS order
            for i, column in enumerate(GAP_COLUMNS[1:])
        }
    )
    markdown = render_markdown("r", build_sections(RunData(name="g", results=results), {}), {})
    assert "| t | 1 | m | 0.200 [0.150, 0.250] | 0.100 [0.050, 0.150] |" in markdown
    assert "| t | 1 | m | 0.500 [0.400, 0.600] | 0.250 [0.100, 0.400] |" in markdown
    assert "uniformly at random" in markdown  # the report says what chance means


def test_subjectivity_section_names_its_source_and_says_why_there_is_no_fit() -> None:
    info = {
        "source": "author-assigned levels",
        "subjectivity": {"t": 1.0, "u": 5.0},
        "note": "The subjectivity fit needs at least 4 tasks; this run has 2.",
    }
    markdown = render_markdown(
        "r", build_sections(RunData(name="s", results=RESULTS, subjectivity=info), {}), {}
    )
    assert "Subjectivity: author-assigned levels." in markdown
    assert "needs at least 4 tasks; this run has 2." in markdown
    fitted = {
        **info,
        "spearman": {
            "zero_shot": {
                "rho": 0.8,
                "low": 0.2,
                "high": 1.0,
                "p_value": 0.05,
                "n": 6,
                "permutations": "exact (720)",
            }
        },
    }
    markdown = render_markdown(
        "r", build_sections(RunData(name="s", results=RESULTS, subjectivity=fitted), {}), {}
    )
    assert "permutation p-value" in markdown
    assert "| zero_shot | 0.800 | 0.200 | 1.000 | 0.050 | 6 | exact (720) |" in markdown


def _runs(counts: dict[str, list[int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "task": "sms_spam",
                "subjectivity": 1,
                "model": "m",
                "source": source,
                "seed": 42,
                "label_names": ["ham", "spam"],
                "train_counts": train_counts,
            }
            for source, train_counts in counts.items()
        ]
    )


def _sizes(policy: str, used: dict[str, int]) -> dict[str, object]:
    have = {"real": 598, "zero_shot": 3000, "few_shot": 3000}
    return {
        "policy": policy,
        "per_label": 3000,
        "labels": [
            {
                "task": "sms_spam",
                "label": "ham",
                "wanted": 3000,
                "have": dict.fromkeys(have, 3000),
                "used": dict.fromkeys(have, 3000),
            },
            {"task": "sms_spam", "label": "spam", "wanted": 3000, "have": have, "used": used},
        ],
    }


def test_results_show_each_shortfall_and_the_counts_next_to_the_verdict() -> None:
    counts = {source: [3000, 598] for source in ("real", "zero_shot", "few_shot")}
    run = RunData(
        name="r",
        results=RESULTS,
        runs=_runs(counts),
        size_matching=_sizes("equal", dict.fromkeys(counts, 598)),
    )
    results = render_markdown("r", build_sections(run, {})[2:3], {})
    verdict = results.partition("Accuracy:")[0]
    assert "Size-matched (training.size_matching: equal)" in verdict
    assert (
        "Shortfall: sms_spam/spam: every source trains on 598 rows, not the 3,000 wanted "
        "(real has 598)." in verdict
    )
    assert "sms_spam: every source trains on imbalanced classes (ham 3,000, spam 598)." in verdict
    assert "| task | label | real | zero_shot | few_shot |" in verdict
    assert "| sms_spam | spam | 598 | 598 | 598 |" in verdict


def test_results_say_so_when_sources_differ_in_size() -> None:
    counts = {"real": [3000, 598], "zero_shot": [3000, 3000], "few_shot": [3000, 3000]}
    used = {"real": 598, "zero_shot": 3000, "few_shot": 3000}
    run = RunData(name="r", results=RESULTS, runs=_runs(counts), size_matching=_sizes("none", used))
    markdown = render_markdown("r", build_sections(run, {})[2:3], {})
    assert "Sources differ in size (training.size_matching: none)" in markdown
    assert (
        "Shortfall: sms_spam/spam: sources train on real 598, zero_shot 3,000, few_shot 3,000"
        in markdown
    )
    assert "sms_spam: the real data trains on imbalanced classes (ham 3,000, spam 598)." in markdown
    assert "| sms_spam | spam | 598 | 3000 | 3000 |" in markdown


def _section_texts(markdown: str) -> dict[str, str]:
    """Each `## title` of a rendering with its body, figure links left out."""
    parts = markdown.split("\n## ")[1:]
    return {
        title: "\n".join(line for line in body.splitlines() if not line.startswith("!["))
        for title, _, body in (part.partition("\n") for part in parts)
    }


def test_results_md_is_the_reports_text_sections_rendered_by_the_same_code() -> None:
    runs = _runs({"real": [3, 3], "zero_shot": [3, 1]}).assign(
        macro_f1=0.5, precision=[[0.5, 0.5]] * 2, replicate=0
    )
    summary = {
        "config": {
            "llm": {"model": "gen-model", "prompt_style": "chat"},
            "generation": {"per_label": 3},
            "training": {"models": ["m"], "seeds": [42, 43]},
            "analysis": {"min_instances_per_threshold": 7},
        }
    }
    per_class = pd.DataFrame({"task": ["sms_spam"], "label": ["spam"], "f1": [0.25]})
    run = RunData(name="r", results=RESULTS, runs=runs, per_class=per_class, summary=summary)
    figures = {"curves-t": b"png"}
    report = render_markdown("r", build_sections(run, figures), {"curves-t": "f/curves-t.png"})
    results = results_markdown(run)
    assert results.startswith("# llmsynth results: r\n")
    by_title = _section_texts(results)
    assert list(by_title) == list(TEXT_SECTIONS) == [t for t in SECTIONS if t != "Training curves"]
    in_report = _section_texts(report)
    for title, text in by_title.items():
        assert text == in_report[title], title
    details = by_title["Per-class scores and every training run"]
    assert "| sms_spam | spam | 0.250 |" in details
    assert "| task | subjectivity | model | source | seed | macro_f1 | replicate |" in details
    provenance = by_title["Provenance"]
    assert "| generator | gen-model (chat) |" in provenance
    assert "| examples per label | 3 |" in provenance
    assert "| seeds | [42, 43] |" in provenance


def test_the_agreement_section_says_which_thresholds_are_not_fitted() -> None:
    sweeps = pd.DataFrame(
        {"task": ["t"], "model": ["m"], "source": ["real"], "threshold": [1.0], "n": [3]}
    )
    fits = sweeps.drop(columns=["threshold", "n"]).assign(slope=0.1)
    summary = {"config": {"analysis": {"min_instances_per_threshold": 7}}}
    run = RunData("a", RESULTS, agreement_sweeps=sweeps, agreement_fits=fits, summary=summary)
    markdown = render_markdown("r", build_sections(run, {}), {})
    assert "thresholds with fewer than 7 instances are not fitted." in markdown


def _worth_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A real curve at k = 1, 2, 4, 8 with a few_shot mixture at k = 2 and 16 (the curve has no
    16), and the real-equivalent rows of both modes, one censored."""
    curve = pd.DataFrame(
        [
            {
                "task": "t",
                "subjectivity": 1,
                "model": "m",
                "source": f"real@{k}",
                "curve": "real",
                "mode": None,
                "per_label": k,
                "n_seeds": 3,
                "macro_f1": f1,
                "macro_f1_low": f1 - 0.05,
                "macro_f1_high": f1 + 0.05,
                "isotonic_macro_f1": f1,
            }
            for k, f1 in ((1, 0.5), (2, 0.6), (4, 0.7), (8, 0.8))
        ]
        + [
            {
                "task": "t",
                "subjectivity": 1,
                "model": "m",
                "source": f"few_shot+real{k}xall",
                "curve": "mixed",
                "mode": "few_shot",
                "per_label": k,
                "n_seeds": 3,
                "macro_f1": 0.75,
                "macro_f1_low": 0.7,
                "macro_f1_high": 0.8,
                "isotonic_macro_f1": None,
            }
            for k in (2, 16)
        ]
    )
    base = {"task": "t", "subjectivity": 1, "model": "m", "smallest": 1, "largest": 8}
    equivalents = pd.DataFrame(
        [
            {
                **base,
                "source": "zero_shot",
                "synthetic_per_label": 24.0,
                "synthetic_macro_f1": 0.65,
                "real_equivalent": 2.83,
                "low": 2.1,
                "high": 3.9,
                "censored": None,
                "low_censored": None,
                "high_censored": None,
                "text": "≈ 2.8 [2.1, 3.9]",
                "n_seeds": 3,
            },
            {
                **base,
                "source": "few_shot",
                "synthetic_per_label": 24.0,
                "synthetic_macro_f1": 0.85,
                "real_equivalent": None,
                "low": 6.0,
                "high": None,
                "censored": "above",
                "low_censored": None,
                "high_censored": "above",
                "text": "> 8 [6, > 8]",
                "n_seeds": 3,
            },
        ]
    )
    return equivalents, curve


def test_the_worth_section_follows_the_results_only_where_a_curve_was_trained() -> None:
    from llmsynth_core.report import WORTH

    assert WORTH not in [s.title for s in build_sections(RunData("r", RESULTS), {})]
    equivalents, curve = _worth_tables()
    run = RunData("r", RESULTS, real_equivalent=equivalents, real_curve=curve)
    sections = build_sections(run, {"worth-t": b"png"})
    assert [s.title for s in sections][:4] == [*SECTIONS[:3], WORTH]
    markdown = render_markdown("r", sections, {"worth-t": "report-files/worth-t.png"})
    worth = _section_texts(markdown)[WORTH]
    assert "| t | zero_shot | ≈ 2.8 [2.1, 3.9] | 24 | 0.650 |" in worth
    assert "| t | few_shot | > 8 [6, > 8] | 24 | 0.850 |" in worth
    # The mixed points beside the real curve at the same k; none at k = 16.
    assert "| t | 2 | 0.600 [0.550, 0.650] | few_shot+real2xall | 0.750 [0.700, 0.800] |" in worth
    assert "| t | 16 | n/a | few_shot+real16xall |" in worth
    assert "![worth-t](report-files/worth-t.png)" in markdown
    # results.md holds the same section, without the figure.
    assert _section_texts(results_markdown(run))[WORTH].strip() == worth.strip()


def test_the_worth_figure_is_a_small_png() -> None:
    from llmsynth_core.figures import worth_plot

    equivalents, curve = _worth_tables()
    png = worth_plot(curve, equivalents, "t")
    assert png.startswith(b"\x89PNG") and len(png) < 120_000


def test_the_verdict_opens_the_report_before_the_tables_in_markdown_and_html() -> None:
    results = RESULTS.assign(
        macro_f1_std=0.0,
        macro_f1_ci_low=RESULTS["macro_f1"] - 0.02,
        macro_f1_ci_high=RESULTS["macro_f1"] + 0.02,
        chance_macro_f1=[None, 0.5, 0.5],
        gap_macro_f1=[None, 0.2, 0.1],
        gap_low=[None, 0.15, 0.05],
        gap_high=[None, 0.25, 0.15],
        normalised_gap=[None, 0.5, 0.25],
        normalised_gap_low=[None, 0.4, 0.1],
        normalised_gap_high=[None, 0.6, 0.4],
    )
    results = results.assign(
        **{f"accuracy{k}": results[f"macro_f1{k}"] for k in ("_std", "_ci_low", "_ci_high")}
    )
    worth = _worth_tables()[0].assign(text=["≈ 2.8 [2.1, 3.9]", "≈ 11 [6, 19]"])
    run = RunData(name="v", results=results, real_equivalent=worth)
    sections = build_sections(run, {})
    assert sections[0].title == "Verdict"
    markdown = render_markdown("r", sections, {})
    headline = (
        "- Synthetic few-shot data closed 75% of the way from chance to real Macro-F1 "
        "[60%, 90%] (0.800 vs real 0.900, chance 0.500); worth ≈ 11 [6, 19] real examples "
        "per label."
    )
    assert headline in markdown
    assert markdown.index(headline) < markdown.index("## Results on the real test split")
    assert "- Synthetic zero-shot data closed 50% of the way" in markdown
    page = render_html("r", sections, {})
    assert "<li>Synthetic few-shot data closed 75% of the way" in page
    assert page.index("<li>Synthetic few-shot") < page.index("Results on the real test split")
    assert "No verdict" in render_markdown("r", build_sections(RunData("n", RESULTS), {}), {})


def test_a_fit_over_four_thresholds_claims_no_significance() -> None:
    from llmsynth_core.report import few_points_note

    fits = pd.DataFrame({"task": ["t", "t"], "source": ["real", "zero_shot"], "thresholds": [4, 3]})
    note = few_points_note(fits)
    assert note is not None
    assert "at most 4 thresholds" in note and "nested" in note
    assert "below 0.083" in note  # 2 of the 4! orderings are as extreme as a perfect one
    assert few_points_note(fits.assign(thresholds=[9, 9])) is None


def test_tasks_without_agreement_are_named_with_how_to_turn_the_panel_on() -> None:
    from llmsynth_core.report import panel_off_note

    results = pd.concat([RESULTS, RESULTS.assign(task="u")], ignore_index=True)
    sweeps = pd.DataFrame({"task": ["t"], "source": ["real"], "threshold": [1.0], "n": [10]})
    run = RunData("r", results, agreement_sweeps=sweeps)
    note = panel_off_note(run, {"annotator_panel": 0})
    assert note is not None and note.startswith("No instance-level analysis for u:")
    assert "analysis.annotator_panel: 5" in note and "analysis.annotator_llm" in note
    assert panel_off_note(run, {"annotator_panel": 3}) is None
    everything = RunData("r", RESULTS, agreement_sweeps=sweeps)
    assert panel_off_note(everything, {"annotator_panel": 0}) is None


def test_the_findings_follow_the_verdict_with_the_rule_counts_and_intervals() -> None:
    from llmsynth_core.findings import COLUMNS, RULE

    def row(finding: int, task: str, comparison: str, low: float, holds: bool | None) -> dict:
        values = (finding, task, "m", comparison, low + 0.1, low, low + 0.2, holds, "n")
        return dict(zip(COLUMNS, values, strict=True))

    findings = pd.DataFrame(
        [
            row(1, "t", "real - zero_shot", 0.05, True),
            row(1, "u", "real - zero_shot", -0.05, False),
            row(2, "all (2 tasks)", "rho(subjectivity, real - zero_shot)", float("nan"), None),
        ]
    )
    run = RunData(name="f", results=RESULTS, findings=findings)
    sections = build_sections(run, {})
    assert [s.title for s in sections][:3] == list(SECTIONS[:3])
    assert SECTIONS[1] == "The study's three findings on this run"
    assert SECTIONS[2] == "Results on the real test split"
    text = _section_texts(render_markdown("r", sections, {}))[SECTIONS[1]]
    assert RULE in text
    assert "real > zero-shot holds on 1 of 2 tasks." in text
    assert "| t | real - zero_shot | 0.150 [0.050, 0.250] | yes |" in text
    assert "| u | real - zero_shot | 0.050 [-0.050, 0.150] | no |" in text
    assert "| all (2 tasks) | rho(subjectivity, real - zero_shot) | n/a | not tested |" in text
    assert "Finding 3 (" in text and "not tested on this run" in text
    assert "\n\nn\n\n" in text  # finding 1's one note, said once
    # results.md carries the same section.
    assert _section_texts(results_markdown(run))[SECTIONS[1]] == text


def test_findings_notes_name_the_task_or_the_comparison_they_belong_to() -> None:
    from llmsynth_core.report import findings_notes

    rows = pd.DataFrame(
        {
            "task": ["a", "a", "b"],
            "comparison": ["real rise", "zero_shot rise", "real rise"],
            "note": ["n=3", "n=3", "n=5"],
        }
    )
    assert findings_notes(rows) == ["a: n=3", "b: n=5"]
    across = rows.head(2).assign(task="all (2 tasks)", note=["p = 0.1", "p = 0.2"])
    assert findings_notes(across) == ["real rise: p = 0.1", "zero_shot rise: p = 0.2"]
    assert findings_notes(rows.assign(note="same")) == ["same"]
