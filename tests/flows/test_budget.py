"""The budget cap stops a run cleanly, loses no paid reply, and a higher cap resumes it."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flows.generate import generate
from flows.pipeline import pipeline
from llmsynth_core.config import ExperimentConfig
from llmsynth_core.errors import BudgetExceeded
from tests.fakes.openai_server import FakeOpenAIServer, Reply, echo_responder
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
def test_budget_stop_then_resume_with_a_higher_cap(
    sample_dir: Path, tmp_path: Path, fake_llm: FakeOpenAIServer
) -> None:
    out = str(tmp_path)
    with pytest.raises(BudgetExceeded, match=r"runtime\.max_cost_usd=1"):
        generate(_config(fake_llm.base_url, cap=1.0), str(sample_dir), out)
    stopped_at = fake_llm.count(CHAT)
    # Each request books its worst case (max_tokens=40 at $0.01 a token = $0.40).
    assert 0 < stopped_at < 12

    run_dir = Path(generate(_config(fake_llm.base_url, cap=100.0), str(sample_dir), out))
    bodies = [json.dumps(r.body, sort_keys=True) for r in fake_llm.requests if r.path == CHAT]
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


class PricedReplies:
    """Generation gets echo replies, annotation a label; records what each reply costs."""

    PANEL_TOKENS = 8  # completion tokens of each annotation reply: $0.08 at PRICE_OUT

    def __init__(self) -> None:
        self.costs: dict[str, list[float]] = {"generation": [], "annotation": []}
        self._lock = threading.Lock()

    def __call__(self, kind: str, body: dict[str, Any]) -> Reply:
        prompt = str(body["messages"][-1]["content"])
        if "Answer with exactly one label name" in prompt:
            stage, reply = "annotation", Reply(text="World.", completion_tokens=self.PANEL_TOKENS)
        else:
            stage, reply = "generation", echo_responder(kind, body)
        tokens = reply.completion_tokens or len(reply.text.split())
        with self._lock:
            self.costs[stage].append(tokens * PRICE_OUT / 1_000_000)
        return reply

    def spent(self, stage: str) -> float:
        return sum(self.costs[stage])


@pytest.mark.usefixtures("prefect_harness")
def test_generation_and_annotation_of_one_flow_run_share_the_cap(
    sample_dir: Path, tmp_path: Path
) -> None:
    cap = 4.0
    replies = PricedReplies()
    with FakeOpenAIServer(replies, models=["fake-model"]) as server:
        config = _config(server.base_url, cap=cap)
        # 24 test instances x 3 annotators x $0.08: $5.76 of annotation after ~$2 of generation.
        analysis = config.analysis.model_copy(update={"annotator_panel": 3})
        config = config.model_copy(update={"analysis": analysis})
        with pytest.raises(BudgetExceeded, match=r"runtime\.max_cost_usd=4"):
            pipeline(config, str(sample_dir), str(tmp_path))

    generation, annotation = replies.spent("generation"), replies.spent("annotation")
    assert 0 < generation < cap and annotation > 0, (generation, annotation)
    assert generation + annotation <= cap + 1e-9, (
        f"generation ${generation:.2f} + annotation ${annotation:.2f} passed the ${cap:g} cap"
    )
