"""The annotator panel on real sample data: its own endpoint and model, a label-stratified
sample of the test set, and estimates that join back to the right test rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from flows.experiment import snapshot_data
from flows.pipeline import annotate_all
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import load_registry
from tasks.artifacts import read_artifact
from tasks.splits import read_snapshot
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.flows.configs import small_config

CHAT = "/v1/chat/completions"


def _text_of(body: dict[str, Any]) -> str:
    prompt = str(body["messages"][-1]["content"])
    return prompt.split("\n\nText: ", 1)[1].rsplit("\n\nAnswer with exactly one label", 1)[0]


def _silent(text: str) -> bool:
    """About a third of the texts get replies that name no label (dropped instances)."""
    return hashlib.sha256(text.encode()).digest()[0] % 3 == 0


@pytest.mark.usefixtures("prefect_harness")
def test_panel_labels_a_stratified_sample_with_its_own_endpoint_and_model(
    sample_dir: Path, tmp_path: Path
) -> None:
    spec = load_registry([])["ag_news"]
    base = small_config("http://127.0.0.1:9/v1", tasks=("ag_news",), max_test_examples=80)
    snapshots = snapshot_data([spec], base, str(sample_dir), str(tmp_path))
    test = read_snapshot(snapshots["ag_news"].test)
    gold = {text[:1500]: label for text, label in zip(test["text"], test["label"], strict=True)}

    def panel_reply(kind: str, body: dict[str, Any]) -> Reply:
        text = _text_of(body)
        return Reply(text="no idea" if _silent(text) else f"{gold[text]}.")

    with (
        FakeOpenAIServer(models=["fake-model"]) as generator,
        FakeOpenAIServer(panel_reply, models=["panel-model"]) as panel,
    ):
        raw = base.model_dump(mode="json")
        raw["llm"]["endpoint"] = generator.base_url
        raw["analysis"].update(
            annotator_panel=3,
            annotator_max_instances=20,
            annotator_llm={"endpoint": panel.base_url, "model": "panel-model", "temperature": 0.7},
        )
        config = ExperimentConfig.model_validate(raw)
        refs = annotate_all([spec], config, snapshots, str(tmp_path))
        bodies = [r.body for r in panel.requests if r.path == CHAT]
        assert generator.count(CHAT) == 0, "the panel must use annotator_llm's endpoint"

    frame = read_artifact(refs[0])
    assert len(bodies) == 3 * len(frame)
    assert {body["model"] for body in bodies} == {"panel-model"}
    assert {body["temperature"] for body in bodies} == {0.7}
    assert set(frame["model"]) == {"panel-model"}

    # Stratified by gold label: each label near its share of the test set (the evaluation
    # subsample is sorted by label, so its first 20 rows would all be one label).
    sampled = test.iloc[frame["row"].tolist()]
    shares = test["label"].value_counts(normalize=True)
    counts = sampled["label"].value_counts()
    assert set(counts.index) == set(shares.index)
    for label, share in shares.items():
        assert abs(counts[label] - share * len(frame)) <= 1, (label, counts.to_dict())

    # `row` is the test-set position and `row_id` that row's id: each instance's annotations
    # are that row's gold label.
    assert frame["row_id"].tolist() == test["row_id"].iloc[frame["row"].tolist()].tolist()
    dropped = 0
    for row, labels, estimate in zip(
        frame["row"], frame["annotations"], frame["agreement_estimate"], strict=True
    ):
        text = str(test.iloc[row]["text"])
        if _silent(text[:1500]):
            dropped += 1
            assert list(labels) == [None] * 3 and estimate != estimate  # NaN: dropped
        else:
            assert list(labels) == [test.iloc[row]["label"]] * 3, row
            assert estimate == 1.0
    assert 0 < dropped < len(frame)
    manifest = json.loads((Path(refs[0].uri).parent / "manifest.json").read_text())
    assert manifest["model"] == "panel-model" and manifest["k"] == 3
    assert manifest["dropped"] == dropped and manifest["instances"] == len(frame)
    assert "LLM estimate" in manifest["note"]


def test_annotator_llm_without_a_panel_is_refused_with_the_fix() -> None:
    raw = small_config("http://127.0.0.1:9/v1").model_dump(mode="json")
    raw["analysis"]["annotator_llm"] = {"model": "big-model"}
    with pytest.raises(ValueError, match=r"annotator_panel is 0.*set annotator_panel to k >= 1"):
        ExperimentConfig.model_validate(raw)
