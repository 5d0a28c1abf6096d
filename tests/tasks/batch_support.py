"""What the batch generation tests share: a varied responder that refuses some requests, a
config with prices, and running one label chunk in this process."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from llmsynth_core.config import ExperimentConfig
from llmsynth_core.registry import load_registry
from llmsynth_core.taskspec import TaskSpec
from tasks.artifacts import ArtifactRef, read_artifact
from tasks.generate import generate_label_task
from tasks.snapshot import DataSnapshot, snapshot_task
from tests.fakes.openai_server import REFUSAL_TEXT, Reply

CHAT = "/v1/chat/completions"
TASK = "tweet_irony"
INPUT_PRICE, OUTPUT_PRICE = 1.0, 2.0
_VOCABULARY = (
    "amber bold calm dusty eager faint grand hollow icy jolly keen lush mellow noble odd pale "
    "quick rough sharp tender urban vivid warm young zesty brisk clever daring fierce gentle "
    "humble lively river ledger garden signal harbor lantern meadow archive canyon beacon "
    "circuit dune ember forest glacier island jungle kettle lagoon mirror nectar orchard "
    "prism quarry rocket saddle tunnel valley willow"
)
_WORDS = _VOCABULARY.split(" ")


def varied_responder(kind: str, body: dict[str, Any]) -> Reply:
    """A 14-word reply drawn from the request (near-duplicates rare), a refusal for about one
    request in four: rounds fall short and need follow-ups."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    if digest[0] % 4 == 0:
        return Reply(text=REFUSAL_TEXT)
    words = [_WORDS[b % len(_WORDS)] for b in digest[1:14]]
    return Reply(text=f"{digest.hex()[:6]} " + " ".join(words) + ".")


def config(
    base_url: str,
    mode: str = "few_shot",
    per_label: int = 60,
    batch: bool = True,
    min_requests: int = 50,
    **runtime: Any,
) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "batch",
            "tasks": [TASK],
            "llm": {
                "endpoint": base_url,
                "model": "fake-model",
                "max_tokens": 40,
                "input_price_per_mtok": INPUT_PRICE,
                "output_price_per_mtok": OUTPUT_PRICE,
            },
            "generation": {
                "modes": [mode],
                "per_label": per_label,
                "few_shot_k": 2,
                "conversation_length": 5,
            },
            "runtime": {
                "concurrency": 4,
                "batch": batch,
                "batch_min_requests": min_requests,
                "batch_poll_s": 0.01,
                "batch_poll_max_s": 0.02,
                **runtime,
            },
        }
    )


def spec() -> TaskSpec:
    return load_registry()[TASK]


def snapshot(cfg: ExperimentConfig, sample_dir: Path, store_root: Path) -> DataSnapshot:
    return snapshot_task.fn(spec(), cfg, str(sample_dir), str(store_root))


def run_chunk(
    cfg: ExperimentConfig, sample_dir: Path, store_root: Path, label: str = "irony"
) -> pd.DataFrame:
    """Generate one label chunk in this process; its rows."""
    snap = snapshot(cfg, sample_dir, store_root)
    mode = cfg.generation.modes[0]
    base_url = cfg.llm.endpoint
    ref: ArtifactRef = asyncio.run(
        generate_label_task.fn(spec(), cfg, mode, label, snap, str(store_root), base_url)
    )
    return read_artifact(ref)


def comparable(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows without what depends on how they were sent (latency, price)."""
    rows = frame.drop(columns=["latency_s", "cost_usd"]).to_dict("records")
    return [{k: (list(v) if k == "few_shot_ids" else v) for k, v in row.items()} for row in rows]
