"""The whole DAG on real sample data, against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flows.pipeline import pipeline
from llmsynth_core.report import SECTIONS
from tests.fakes.openai_server import FakeOpenAIServer, Reply, echo_responder
from tests.flows.configs import small_config

CHAT = "/v1/chat/completions"
AG_NEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")


def annotator_or_echo(kind: str, body: dict[str, Any]) -> Reply:
    """Annotation prompts get a label picked by the request's seed; generation gets echo."""
    prompt = str(body["messages"][-1]["content"]) if kind == "chat" else str(body["prompt"])
    if "Answer with exactly one label name" in prompt:
        return Reply(text=f"{AG_NEWS_LABELS[int(body['seed']) % 4]}.")
    return echo_responder(kind, body)


@pytest.mark.usefixtures("prefect_harness")
def test_pipeline_end_to_end_then_rerun_makes_no_new_calls(
    sample_dir: Path, tmp_path: Path
) -> None:
    with FakeOpenAIServer(annotator_or_echo, models=["fake-model"]) as server:
        # financial_phrasebank: three labels, and agreement levels for the instance-level fits.
        config = small_config(server.base_url, tasks=("ag_news", "financial_phrasebank"))
        judgments = tmp_path / "pairs.csv"
        judgments.write_text(
            "task_a,task_b,winner\n"
            + "ag_news,financial_phrasebank,ag_news\n" * 3
            + "financial_phrasebank,ag_news,financial_phrasebank\n"
        )
        # ag_news has no human agreement: a panel of 3 LLM annotators estimates it.
        analysis = config.analysis.model_copy(
            update={"comparisons_file": str(judgments), "annotator_panel": 3}
        )
        config = config.model_copy(update={"analysis": analysis})
        run_dir = Path(pipeline(config, str(sample_dir), str(tmp_path)))
        first_calls = server.count(CHAT)

        results = pd.read_parquet(run_dir / "results.parquet")
        sources = results.groupby("task")["source"].apply(set).to_dict()
        assert sources == {
            "ag_news": {"real", "zero_shot", "few_shot"},
            "financial_phrasebank": {"real", "zero_shot", "few_shot"},
        }
        assert results["macro_f1"].between(0, 1).all()
        # Exactly per_label accepted rows per label trained each synthetic model.
        synthetic = results[results["source"] != "real"]
        expected_rows = {"ag_news": 4 * 3, "financial_phrasebank": 3 * 3}
        assert (synthetic["n_train"] == synthetic["task"].map(expected_rows)).all()
        results_md = (run_dir / "results.md").read_text()
        assert "## Results on the real test split\n\nMacro-F1 and accuracy" in results_md
        assert "Macro-F1:\n\n| task | subjectivity | model | real | zero_shot" in results_md
        # The paired gap of each synthetic source to real, on the same test rows and seeds.
        real_f1 = results[results["source"] == "real"].set_index(["task", "model"])["macro_f1"]
        gap = synthetic.set_index(["task", "model"])
        assert gap["gap_macro_f1"].to_numpy() == pytest.approx(
            (real_f1.reindex(gap.index) - gap["macro_f1"]).to_numpy()
        )
        assert (
            (gap["gap_low"] <= gap["gap_macro_f1"]) & (gap["gap_macro_f1"] <= gap["gap_high"])
        ).all()
        assert results.loc[results["source"] == "real", "gap_macro_f1"].isna().all()
        assert "Normalised gap" in (run_dir / "report.md").read_text()
        assert (results["macro_f1_ci_low"] <= results["macro_f1"]).all()
        assert (results["macro_f1"] <= results["macro_f1_ci_high"]).all()
        # Per-epoch curves, per-class scores and a saved model for every training run.
        curves = pd.read_parquet(run_dir / "curves.parquet")
        assert len(curves) == 6 and curves["test_macro_f1"].between(0, 1).all()
        per_class = pd.read_parquet(run_dir / "per_class.parquet")
        assert len(per_class) == 3 * (4 + 3)  # sources x labels
        cards = list((tmp_path / "artifacts" / "models").glob("*/README.md"))
        assert len(cards) == 6
        assert all((card.parent / "config.json").exists() for card in cards)
        diversity = pd.read_parquet(run_dir / "diversity.parquet")
        assert set(zip(diversity["task"], diversity["source"], strict=True)) == {
            (task, source)
            for task in ("ag_news", "financial_phrasebank")
            for source in (
                "real",
                "zero_shot",
                "few_shot",
                "zero_shot (before gates)",
                "few_shot (before gates)",
            )
        }
        # Every source of a task is measured on the same number of texts.
        assert diversity.groupby("task")["n"].nunique().eq(1).all()
        assert diversity["remote_clique"].between(0, 2).all()
        assert (diversity["chamfer"] <= diversity["remote_clique"] + 1e-9).all()
        synthetic_rows = diversity[diversity["source"] != "real"]
        assert synthetic_rows["similarity_to_real"].between(-1, 1).all()
        assert diversity.loc[diversity["source"] == "real", "similarity_to_real"].isna().all()
        assert "## Diversity" in (run_dir / "results.md").read_text()
        # financial_phrasebank has human agreement levels; ag_news gets the panel's estimate.
        fits = pd.read_parquet(run_dir / "agreement_fits.parquet")
        origin = fits.groupby("task")["agreement_source"].apply(set).to_dict()
        assert origin == {"financial_phrasebank": {"human"}, "ag_news": {"llm-estimate"}}
        assert set(fits["source"]) == {"real", "zero_shot", "few_shot"}
        assert fits["r_squared"].between(0, 1).all()
        annotation_calls = [
            r for r in server.requests if "Answer with exactly one label" in json.dumps(r.body)
        ]
        assert len(annotation_calls) == 3 * 24  # k annotators x test instances
        assert "not human annotator agreement" in (run_dir / "report.md").read_text()
        # Tables and notes name the panel's model and k; the notes count dropped instances.
        panel_note = "ag_news: LLM estimate (fake-model, k=3), not human agreement; 24 test"
        assert panel_note in (run_dir / "report.md").read_text()
        assert panel_note in (run_dir / "results.md").read_text()
        assert set(fits.loc[fits["task"] == "ag_news", "panel"]) == {
            "LLM estimate (fake-model, k=3)"
        }
        sweeps = pd.read_parquet(run_dir / "agreement_sweeps.parquet")
        human = sweeps["agreement_source"] == "human"
        assert set(sweeps.loc[human, "threshold"]) <= {0.5, 0.66, 0.75, 1.0}
        # k = 3 annotators: the majority share is 1/3, 2/3 or 1.
        estimated = set(sweeps.loc[~human, "threshold"].round(6))
        assert estimated <= {round(1 / 3, 6), round(2 / 3, 6), 1.0}
        assert "## Accuracy vs annotator agreement" in (run_dir / "results.md").read_text()
        subjectivity = json.loads((run_dir / "subjectivity.json").read_text())
        strengths = subjectivity["bradley_terry"]
        assert strengths["ag_news"] > strengths["financial_phrasebank"]
        assert subjectivity["source"] == f"Bradley-Terry on 4 judgments from {judgments}"
        assert subjectivity["spearman"] == {}  # two tasks: no number, and the report says why
        assert "needs at least 4 tasks; this run has 2." in (run_dir / "report.md").read_text()
        # The report: every section in both renderings, figures beside the Markdown.
        markdown = (run_dir / "report.md").read_text()
        page = (run_dir / "report.html").read_text()
        for title in SECTIONS:
            assert f"## {title}" in markdown
            assert html.escape(title) in page
        # The study's findings: finding 3 only where the test split has human agreement, and
        # finding 2 untested on two tasks.
        findings = pd.read_parquet(run_dir / "findings.parquet")
        assert set(findings.loc[findings["finding"] == 3, "task"]) == {"financial_phrasebank"}
        assert set(findings.loc[findings["finding"] == 1, "task"]) == {
            "financial_phrasebank",
            "ag_news",
        }
        assert findings.loc[findings["finding"] == 2, "holds"].isna().all()
        figures = {p.stem for p in (run_dir / "report-files").glob("*.png")}
        assert {
            "diversity-remote-clique",
            "agreement-financial_phrasebank",
            "agreement-ag_news",
        } <= figures
        assert page.count("data:image/png;base64,") == len(figures)
        # What the study leaves open is listed with the value used, max_tokens per task.
        epochs, max_tokens = config.training.epochs, config.llm.max_tokens
        assumed = "assumed: the study does not report it"
        assert f"| epochs (training.epochs) | {epochs} | {assumed} |" in markdown
        for task in ("ag_news", "financial_phrasebank"):
            row = f"| max_tokens per reply: {task} | {max_tokens} (llm.max_tokens) | {assumed} |"
            assert row in markdown
        # 2 tasks x 2 modes x labels x per_label requests at least.
        assert first_calls >= (4 + 3) * 2 * 3

        second = Path(pipeline(config, str(sample_dir), str(tmp_path)))
        assert server.count(CHAT) == first_calls, "a rerun must not call the API again"
        again = pd.read_parquet(second / "results.parquet")
        pd.testing.assert_frame_equal(
            results.drop(columns="train_seconds"), again.drop(columns="train_seconds")
        )


@pytest.mark.usefixtures("prefect_harness")
def test_pipeline_rejects_bad_data_before_any_call(sample_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "data"
    (bad / "ag_news").mkdir(parents=True)
    frame = pd.read_parquet(sample_dir / "ag_news" / "train.parquet")
    frame.assign(label="Weather").to_parquet(bad / "ag_news" / "train.parquet")
    (bad / "ag_news" / "test.parquet").write_bytes(
        (sample_dir / "ag_news" / "test.parquet").read_bytes()
    )
    with FakeOpenAIServer(models=["fake-model"]) as server:
        config = small_config(server.base_url).model_copy(update={"tasks": ["ag_news"]})
        with pytest.raises(Exception, match="Weather"):
            pipeline(config, str(bad), str(tmp_path / "out"))
        assert server.count() == 0


@pytest.mark.usefixtures("prefect_harness")
def test_replicates_train_one_model_per_synthetic_set(sample_dir: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(echo_responder, models=["fake-model"]) as server:
        config = small_config(server.base_url, tasks=("ag_news",), per_label=2, max_steps=1)
        generation = config.generation.model_copy(update={"modes": ["zero_shot"], "replicates": 2})
        config = config.model_copy(update={"generation": generation})
        run_dir = Path(pipeline(config, str(sample_dir), str(tmp_path)))
        seeds = {body["seed"] for body in (r.body for r in server.requests) if "seed" in body}

    runs = pd.read_parquet(run_dir / "runs.parquet")
    replicates = runs.groupby("source")["replicate"].apply(sorted).to_dict()
    assert replicates == {"real": [0], "zero_shot": [0, 1]}
    results = pd.read_parquet(run_dir / "results.parquet").set_index("source")
    assert results.loc["zero_shot", "n_replicates"] == 2
    assert results.loc["zero_shot", "macro_f1"] == pytest.approx(
        runs.loc[runs["source"] == "zero_shot", "macro_f1"].mean()
    )
    assert results.loc["zero_shot", "gap_low"] <= results.loc["zero_shot", "gap_high"]
    # Two synthetic sets from different llm.seed: different requests, all in the collected data.
    assert len(pd.read_parquet(run_dir / "synthetic.parquet")) == 2 * 4 * 2
    assert len(seeds) >= 2 * 4 * 2
