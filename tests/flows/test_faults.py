"""Generation through every injected fault still ends with exact quotas and loses no reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flows.generate import generate
from tests.fakes.openai_server import FakeOpenAIServer, Fault, Reply, echo_responder
from tests.flows.configs import small_config

CHAT = "/v1/chat/completions"
OFF_TOPIC = "My favourite pizza has olives, and the beach was sunny all weekend long."
TRANSPORT_FAULTS = [
    Fault.status(429, retry_after=0.05),
    Fault.status(500),
    Fault.status(503),
    Fault.reset(),
    Fault.malformed(),
    Fault.delay(1.5),  # past request_timeout_s below
]


def off_topic_sometimes(kind: str, body: dict[str, Any]) -> Reply:
    """Every seventh seed wanders off topic: kept as data (topic is what the analysis measures)."""
    if int(body.get("seed") or 0) % 7 == 0:
        return Reply(text=f"{OFF_TOPIC} ({body.get('seed')})")
    return echo_responder(kind, body)


@pytest.mark.usefixtures("prefect_harness")
def test_faults_are_retried_or_recorded_and_quotas_are_exact(
    sample_dir: Path, tmp_path: Path
) -> None:
    config = small_config("", tasks=("tweet_irony",), per_label=4)
    with FakeOpenAIServer(off_topic_sometimes) as server:
        config = config.model_copy(
            update={
                "llm": config.llm.model_copy(update={"endpoint": server.base_url}),
                "runtime": config.runtime.model_copy(
                    update={"request_timeout_s": 1.0, "parallel_chunks": 1, "concurrency": 1}
                ),
            }
        )
        server.inject(*TRANSPORT_FAULTS, Fault.empty(), Fault.refusal(), Fault.empty())
        run_dir = Path(generate(config, str(sample_dir), str(tmp_path)))
        attempts = server.count(CHAT)
        assert server.pending_faults() == 0

    synthetic = pd.read_parquet(run_dir / "synthetic.parquet")
    rejects = pd.read_parquet(run_dir / "rejects.parquet")
    assert synthetic.groupby(["mode", "label"]).size().tolist() == [4, 4, 4, 4]
    reasons = rejects["reject_reason"].value_counts().to_dict()
    assert (reasons.pop("empty"), reasons.pop("refusal")) == (2, 1)
    # Off-topic replies pass (topic is what the analysis measures), but only the first of the
    # near-identical ones: the rest are near duplicates of it.
    assert set(reasons) <= {"near_duplicate"}
    assert synthetic["text"].str.contains("favourite pizza").sum() >= 1
    near = rejects[rejects["reject_reason"] == "near_duplicate"]
    assert near["text"].str.contains("favourite pizza").all()
    # Every answered request is a row; only the six transport failures left none.
    assert len(synthetic) + len(rejects) == attempts - len(TRANSPORT_FAULTS)
    volume = json.loads((run_dir / "generation.json").read_text())
    assert volume["shortfalls"] == []
