"""The pipeline keys its work on snapshots of the data: editing a row, or pointing the same
output directory at other data, redoes exactly the work that data feeds and nothing else."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flows.pipeline import pipeline
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import load_registry
from tasks.artifacts import artifact_root, read_artifact, read_parquet, sibling
from tasks.snapshot import snapshot_task
from tests.fakes.openai_server import FakeOpenAIServer

TASK = "tweet_irony"
CHAT = "/v1/chat/completions"
EDITED = "A freshly edited tweet that only the second run has seen"


def _copy_task(sample_dir: Path, target: Path, keep: float = 1.0) -> Path:
    """The task's sample splits under `target`; `keep` < 1 drops the tail of each split."""
    (target / TASK).mkdir(parents=True)
    for split in ("train", "test"):
        frame = pd.read_parquet(sample_dir / TASK / f"{split}.parquet")
        frame.head(int(len(frame) * keep)).to_parquet(target / TASK / f"{split}.parquet")
    return target


def _manifests(out: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Key -> manifest of every artifact of a kind in the output directory."""
    return {
        path.parent.name: json.loads(path.read_text())
        for path in (out / "artifacts" / kind).glob("*/manifest.json")
    }


def _metrics_by_source(run_dir: Path) -> dict[str, str]:
    """Training source -> the uri of its metrics artifact (one seed, one encoder)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    out = {}
    for ref in summary["metrics"]:
        (source,) = read_parquet(ref["uri"], "metrics")["source"]
        out[str(source)] = ref["uri"]
    return out


def _shown_ids(out: Path) -> list[str]:
    """The training row ids that the few-shot prompts showed, one entry per request."""
    frames = [
        read_parquet(manifest["artifact"]["uri"], "generations")
        for manifest in _manifests(out, "generations").values()
        if manifest["mode"] == "few_shot"
    ]
    rows = pd.concat(frames, ignore_index=True)
    return [row_id for ids in rows["few_shot_ids"] for row_id in ids]


@pytest.mark.usefixtures("prefect_harness")
def test_editing_one_training_row_redoes_only_what_shows_it(
    sample_dir: Path,
    tmp_path: Path,
    fake_llm: FakeOpenAIServer,
    small_config: Callable[..., ExperimentConfig],
) -> None:
    data, out = _copy_task(sample_dir, tmp_path / "data"), tmp_path / "out"
    config = small_config(tasks=(TASK,))
    first = Path(pipeline(config, str(data), str(out)))
    generations = _manifests(out, "generations")
    shown = _shown_ids(out)
    edited_id = shown[0]
    train = pd.read_parquet(data / TASK / "train.parquet")
    row = train["id"].astype(str) == edited_id
    assert row.sum() == 1
    train.loc[row, "text"] = EDITED
    train.to_parquet(data / TASK / "train.parquet")

    fake_llm.clear()
    second = Path(pipeline(config, str(data), str(out)))
    sent = [json.dumps(r.body) for r in fake_llm.requests if r.path == CHAT]

    # Only the requests whose prompt shows the edited row reach the API; every other few-shot
    # request is answered from the request cache, and no zero-shot request is made at all.
    assert sent, "the edited row was shown, so its prompts must be sent again"
    assert all(EDITED in body for body in sent)
    assert len(sent) == shown.count(edited_id)
    # Zero-shot generations are reused; each label's few-shot generations are new.
    fresh = {
        key: manifest
        for key, manifest in _manifests(out, "generations").items()
        if key not in generations
    }
    assert sorted(m["mode"] for m in fresh.values()) == ["few_shot", "few_shot"]
    # Models that saw the training split retrain; the zero-shot model is reused.
    before, after = _metrics_by_source(first), _metrics_by_source(second)
    assert after["zero_shot"] == before["zero_shot"]
    assert after["real"] != before["real"]
    assert after["few_shot"] != before["few_shot"]
    # Predictions carry the evaluation subsample's row ids, in its order.
    spec = load_registry()[TASK]
    snapshot = snapshot_task.fn(spec, config, str(data), artifact_root(str(out)))
    test = read_artifact(snapshot.test)
    for uri in after.values():
        predictions = read_parquet(sibling(uri, "predictions"), "predictions")
        assert predictions["row_id"].tolist() == test["row_id"].tolist()


@pytest.mark.usefixtures("prefect_harness")
def test_one_output_dir_with_other_data_makes_new_artifacts(
    sample_dir: Path, tmp_path: Path, small_config: Callable[..., ExperimentConfig]
) -> None:
    # A smaller copy stands in for sample/ and the whole sample for the full data.
    small = _copy_task(sample_dir, tmp_path / "small", keep=0.8)
    full = _copy_task(sample_dir, tmp_path / "full")
    out = tmp_path / "out"
    config = small_config(tasks=(TASK,))
    on_small = Path(pipeline(config, str(small), str(out)))
    generations = _manifests(out, "generations")
    on_full = Path(pipeline(config, str(full), str(out)))
    shutil.rmtree(small)

    before, after = _metrics_by_source(on_small), _metrics_by_source(on_full)
    assert set(before) == set(after) == {"real", "zero_shot", "few_shot"}
    # Every model is scored on another test subsample, so none is reused.
    assert not set(before.values()) & set(after.values())
    modes = [m["mode"] for k, m in _manifests(out, "generations").items() if k not in generations]
    assert sorted(modes) == ["few_shot", "few_shot"]
    summaries = [json.loads((run / "summary.json").read_text()) for run in (on_small, on_full)]
    diversity = [summary["diversity"][0]["uri"] for summary in summaries]
    assert diversity[0] != diversity[1]
