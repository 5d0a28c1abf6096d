"""A real learning curve through the whole DAG: its models train beside the study's sources,
stay out of the results table, and give the real-equivalent table and its report section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from flows.pipeline import pipeline
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.report import WORTH
from llmsynth_core.run_layout import RunLayout


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_with_a_real_curve_trains_its_points_and_writes_real_equivalents(
    sample_dir: Path,
    tmp_path: Path,
    small_config: Callable[..., ExperimentConfig],
    tiny_encoder_dir: str,
) -> None:
    config = small_config(tasks=("tweet_irony",))
    training = config.training.model_copy(
        update={"models": [tiny_encoder_dir], "real_curve": [1, 2], "save_models": False}
    )
    config = config.model_copy(update={"training": training})
    run_dir = Path(pipeline(config, str(sample_dir), str(tmp_path)))

    runs = pd.read_parquet(run_dir / RunLayout.RUNS.name)
    counts = {s: list(c) for s, c in zip(runs["source"], runs["train_counts"], strict=True)}
    assert counts["real@1"] == [1, 1] and counts["real@2"] == [2, 2]
    assert set(counts) == {"real", "real@1", "real@2", "zero_shot", "few_shot"}
    results = pd.read_parquet(run_dir / RunLayout.RESULTS.name)
    assert set(results["source"]) == {"real", "zero_shot", "few_shot"}

    worth = pd.read_parquet(run_dir / RunLayout.REAL_EQUIVALENT.name)
    assert sorted(worth["source"]) == ["few_shot", "zero_shot"]
    assert (worth[["smallest", "largest"]].to_numpy() == [1, 2]).all()
    # Each estimate lies on the curve, or is censored at the end it lies beyond.
    for row in worth.itertuples(index=False):
        if pd.isna(row.censored):
            assert 1 <= row.real_equivalent <= 2
        else:
            assert row.text.startswith("< 1" if row.censored == "below" else "> 2")
    curve = pd.read_parquet(run_dir / RunLayout.REAL_CURVE.name)
    assert curve["source"].tolist() == ["real@1", "real@2"]
    report = (run_dir / RunLayout.REPORT_MD.name).read_text()
    assert f"## {WORTH}" in report
    assert (run_dir / RunLayout.figure("worth-tweet_irony")).stat().st_size > 0
    # Curve points are scored on the test split once, at the end; the study's sources every
    # epoch, for their training curves.
    curves = pd.read_parquet(run_dir / RunLayout.CURVES.name)
    traced = curves.groupby("source")["test_macro_f1"].apply(lambda f1: f1.notna().mean())
    assert traced.to_dict() == {
        "few_shot": 1.0,
        "real": 1.0,
        "real@1": 0.0,
        "real@2": 0.0,
        "zero_shot": 1.0,
    }
