"""The budget cap stops a run cleanly, loses no paid reply, and a higher cap resumes it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flows.generate import generate
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.errors import BudgetExceeded
from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows.configs import small_config

CHAT = "/v1/chat/completions"
PRICE_OUT = 10_000.0  # USD per million completion tokens: one reply of ~16 tokens ~ $0.16


def _config(base_url: str, cap: float | None) -> ExperimentConfig:
    config = small_config(base_url, tasks=("ag_news",), per_label=3)
    return config.model_copy(
        update={
            "llm": config.llm.model_copy(update={"output_price_per_mtok": PRICE_OUT}),
            "generation": config.generation.model_copy(update={"modes": ["zero_shot"]}),
            "runtime": config.runtime.model_copy(update={"max_cost_usd": cap}),
        }
    )


@pytest.mark.usefixtures("prefect_harness")
def test_budget_stop_then_resume_with_a_higher_cap(sample_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path)
    with FakeOpenAIServer(models=["fake-model"]) as server:
        with pytest.raises(BudgetExceeded, match=r"runtime\.max_cost_usd=1"):
            generate(_config(server.base_url, cap=1.0), str(sample_dir), out)
        stopped_at = server.count(CHAT)
        # Each request books its worst case (max_tokens=40 at $0.01 a token = $0.40).
        assert 0 < stopped_at < 12

        run_dir = Path(generate(_config(server.base_url, cap=100.0), str(sample_dir), out))
        bodies = [json.dumps(r.body, sort_keys=True) for r in server.requests if r.path == CHAT]
        assert len(bodies) == len(set(bodies)), "a request paid for before the stop was resent"

    synthetic = pd.read_parquet(run_dir / "synthetic.parquet")
    assert synthetic.groupby("label").size().to_dict() == {
        "Business": 3,
        "Sci/Tech": 3,
        "Sports": 3,
        "World": 3,
    }
    volume = json.loads((run_dir / "generation.json").read_text())
    assert volume["shortfalls"] == []
    # Everything bought, across both runs, is accounted for in the final dataset's rows.
    all_rows = pd.concat([synthetic, pd.read_parquet(run_dir / "rejects.parquet")])
    assert len(all_rows) == len(bodies)
    assert all_rows["cost_usd"].sum() == pytest.approx(volume["cost_usd"])
    assert volume["cost_usd"] <= 100.0
