"""What a training run writes, built on tiny frames: every frame fits its declared schema,
and the scores, the manifest and the model card agree with the probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.evaluation import Evaluation, curve_point, describe_epoch
from llmsynth_core.refs import ArtifactRef, DataSnapshot
from llmsynth_core.registry import load_registry
from llmsynth_core.schemas import CURVES, METRICS, PREDICTIONS, to_table
from llmsynth_core.training import EpochLog
from llmsynth_core.training_data import TrainingSplits
from llmsynth_core.training_job import Provenance, RealSource, SyntheticSource, TrainingJob

SPEC = load_registry()["tweet_irony"]  # labels: non_irony (id 0), irony (id 1)
CONFIG = ExperimentConfig.model_validate(
    {"name": "tiny", "tasks": ["tweet_irony"], "llm": {"model": "gen-x"}}
)
REF = ArtifactRef(uri="/s/snapshot/k/data.parquet", schema_name="snapshot", rows=3, sha256="a")
JOB = TrainingJob(
    task=SPEC,
    encoder="enc",
    source=RealSource(),
    seed=7,
    snapshot=DataSnapshot(task="tweet_irony", train=REF, test=REF),
    per_label=2,
    counts={"irony": 2, "non_irony": 1},
    provenance=Provenance.of(CONFIG),
)
DATA = pd.DataFrame({"text": ["a", "b", "c"], "label": ["irony", "irony", "non_irony"]})
TEST = pd.DataFrame(
    {
        "row_id": ["r0", "r1", "r2"],
        "text": ["x", "y", "z"],
        "label": ["irony", "non_irony", "non_irony"],
        "label_id": [1, 0, 0],
        "agreement": [1.0, None, 0.5],
    }
)
# Predicts irony, irony, non_irony: two of three right.
PROBA = np.array([[0.1, 0.9], [0.4, 0.6], [0.8, 0.2]], dtype=np.float32)
LOGS = [EpochLog(1, 0.7, 3, 1.5, None, 0.4), EpochLog(2, 0.5, 3, 1.25, 0.75, 0.5)]


def _evaluation(job: TrainingJob = JOB) -> Evaluation:
    splits = TrainingSplits(DATA, DATA.iloc[:2], DATA.iloc[2:], TEST, leaked=1)
    curve = [curve_point(log) for log in LOGS]
    return Evaluation(job, splits, PROBA, curve, best_epoch=2, epochs_run=2, train_seconds=3.5)


def test_frames_fit_their_schemas() -> None:
    scored = _evaluation()
    for frame, schema, name in (
        (scored.predictions(), PREDICTIONS, "predictions"),
        (scored.curves(), CURVES, "curves"),
        (scored.metrics_row(), METRICS, "metrics"),
    ):
        assert to_table(frame, schema, name).num_rows == len(frame)


def test_predictions_follow_the_probabilities_in_test_order() -> None:
    predictions = _evaluation().predictions()
    assert predictions["pred"].tolist() == ["irony", "irony", "non_irony"]
    assert predictions["correct"].tolist() == [True, False, True]
    assert predictions["row"].tolist() == [0, 1, 2]
    assert predictions["probs"][2] == [float(np.float32(0.8)), float(np.float32(0.2))]
    assert set(predictions["source"]) == {"real"} and set(predictions["replicate"]) == {0}


def test_the_metrics_row_counts_the_splits_and_scores_the_test_split() -> None:
    (row,) = _evaluation().metrics_row().to_dict("records")
    assert (row["n_train"], row["n_validation"], row["n_test"]) == (2, 1, 3)
    assert row["train_counts"] == [1, 2]  # as label_names: non_irony, irony
    assert row["accuracy"] == 2 / 3
    assert row["confusion"] == [[1, 1], [0, 1]]
    assert (row["leaked_test_texts"], row["best_epoch"], row["train_seconds"]) == (1, 2, 3.5)


def test_curves_name_the_run_on_every_epoch() -> None:
    curves = _evaluation().curves()
    assert curves["epoch"].tolist() == [1, 2]
    assert curves["validation_macro_f1"].isna().tolist() == [True, False]
    assert set(curves["seed"]) == {7} and set(curves["model"]) == {"enc"}
    assert describe_epoch(LOGS[0], 3) == (
        "epoch 1/3: loss 0.7000, validation macro-F1 -, test macro-F1 0.400 (1.5s)"
    )


def test_manifest_and_card_name_the_experiment_not_just_the_run() -> None:
    scored = _evaluation()
    manifest = scored.manifest()
    assert manifest["config_hash"] == CONFIG.semantic_hash()
    assert manifest["metrics"]["accuracy"] == 2 / 3
    card = scored.model_card()
    assert f"experiment `tiny`, config hash `{CONFIG.semantic_hash()}`" in card
    assert "Data source: **real** (a stratified sample of the real training split)." in card
    assert "| irony | 0.500 | 1.000 | 0.667 | 1 |" in card
    synthetic = JOB.model_copy(update={"source": SyntheticSource(mode="few_shot")})
    assert "**few_shot** (LLM-generated rows from gen-x)" in _evaluation(synthetic).model_card()
    assert scored.summary() == (
        "tweet_irony/real/seed 7: macro-F1 0.667, accuracy 0.667 (best epoch 2 of 2)"
    )
