"""A label chunk through the Batch API of the loopback fake server: exact quotas, small rounds
live, resubmission of what a batch did not answer, costs, and one cache for both modes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmsynth_core.config import LLMConfig
from llmsynth_core.costs import request_cost
from llmsynth_core.errors import BudgetExceeded, GenerationError
from tasks.artifacts import local_state_dir
from tasks.batch_client import NoBatchAPI, require_batch_api
from tasks.batch_store import BatchStore
from tasks.budget import run_ledger
from tasks.state_db import state_db_url, state_engine
from tests.fakes.batch_api import BatchPlan, FakeBatchAPI
from tests.fakes.openai_server import FakeOpenAIServer
from tests.tasks.batch_support import (
    CHAT,
    INPUT_PRICE,
    OUTPUT_PRICE,
    comparable,
    config,
    run_chunk,
    varied_responder,
)


def _run_batch_store(store_root: Path) -> BatchStore:
    """The batch store a run on this store root wrote: tables in its state database."""
    return BatchStore(state_engine(state_db_url(None, local_state_dir(str(store_root)))))


def _server(api: FakeBatchAPI | None = None) -> FakeOpenAIServer:
    return FakeOpenAIServer(varied_responder, models=["fake-model"], batch_api=api)


def _live_rows(sample_dir: Path, tmp_path: Path, mode: str, per_label: int) -> list[dict]:
    with _server() as server:
        cfg = config(server.base_url, mode, per_label, batch=False)
        frame = run_chunk(cfg, sample_dir, tmp_path / "live-store")
        assert server.count(CHAT) == len(frame)
    return comparable(frame)


@pytest.mark.parametrize(("mode", "min_requests"), [("few_shot", 50), ("zero_shot", 20)])
def test_batches_meet_the_quota_exactly_with_the_rows_of_a_live_run(
    mode: str, min_requests: int, sample_dir: Path, tmp_path: Path
) -> None:
    per_label = 100
    api = FakeBatchAPI(default=BatchPlan(polls=3))
    with _server(api) as server:
        cfg = config(server.base_url, mode, per_label, min_requests=min_requests)
        frame = run_chunk(cfg, sample_dir, tmp_path / "store")
        live_calls = server.count(CHAT)
    batches = api.batches()
    batched = sum(len(b["custom_ids"]) for b in batches)
    assert int(frame["accepted"].sum()) == per_label
    assert len(frame) > per_label, "refusals must have made follow-up rounds necessary"
    # Every request went exactly one way, once; no round smaller than the minimum waited on
    # a batch, and every round at least that large did.
    assert batched + live_calls == len(frame)
    assert set(api.submitted().values()) == {1}
    assert all(len(b["custom_ids"]) >= min_requests for b in batches)
    assert all(b["status"] == "completed" for b in batches)
    assert batches and live_calls, "both ways must be exercised"
    assert comparable(frame) == _live_rows(sample_dir, tmp_path, mode, per_label)


def test_rounds_below_the_minimum_go_live(sample_dir: Path, tmp_path: Path) -> None:
    counts, rows = {}, {}
    for minimum in (50, 20):
        api = FakeBatchAPI(default=BatchPlan(polls=1))
        with _server(api) as server:
            cfg = config(server.base_url, "zero_shot", 100, min_requests=minimum)
            frame = run_chunk(cfg, sample_dir, tmp_path / f"store-{minimum}")
            counts[minimum] = (len(api.batches()), server.count(CHAT))
            rows[minimum] = comparable(frame)
    # 100 zero-shot requests in conversations of 5 are rounds of 20, one turn each: all live
    # at a minimum of 50, batches at 20 (until the follow-ups' rounds are smaller).
    assert counts[50][0] == 0 and counts[20][0] >= 5
    assert counts[20][1] < counts[50][1] == len(rows[50])
    assert rows[20] == rows[50]


def test_expired_failed_and_partly_failed_requests_are_resubmitted_never_answered_ones(
    sample_dir: Path, tmp_path: Path
) -> None:
    api = FakeBatchAPI(
        [
            BatchPlan(outcome="expired", answered_first=25),
            BatchPlan(outcome="failed"),
            BatchPlan(fail=lambda custom_id: custom_id < "4"),
        ],
        default=BatchPlan(polls=2),
    )
    with _server(api) as server:
        cfg = config(server.base_url, "few_shot", 40, min_requests=1)
        frame = run_chunk(cfg, sample_dir, tmp_path / "store")
        assert server.count(CHAT) == 0
    first, second, third, *_ = api.batches()
    statuses = [first["status"], second["status"], third["status"]]
    assert statuses == ["expired", "failed", "completed"]
    unanswered = set(first["custom_ids"][25:])
    assert set(second["custom_ids"]) == unanswered == set(third["custom_ids"])
    partly_failed = {cid for cid in third["custom_ids"] if cid < "4"}
    assert partly_failed, "the partial failure must hit some requests"
    assert set(api.batches()[3]["custom_ids"]) == partly_failed
    assert set(api.batches()[1]["answered"]) == set()
    # No request went out again once a batch had answered it.
    assert api.resubmitted_answered() == set()
    assert all(api.submitted()[cid] == 1 for cid in first["answered"])
    assert int(frame["accepted"].sum()) == 40
    assert len(frame) == len(api.answered())
    store = _run_batch_store(tmp_path / "store")
    outcomes = [intent.outcome for intent in store.intents()]
    store.close()
    assert outcomes[:4] == ["expired", "failed", "completed", "completed"]


def test_a_cancelled_batch_stops_the_chunk_and_a_rerun_sends_only_the_rest(
    sample_dir: Path, tmp_path: Path
) -> None:
    api = FakeBatchAPI([BatchPlan(outcome="cancelled", answered_first=10)])
    with _server(api) as server:
        cfg = config(server.base_url, "few_shot", 30, min_requests=5)
        with pytest.raises(GenerationError, match="was cancelled with 20 requests unanswered"):
            run_chunk(cfg, sample_dir, tmp_path / "store")
        assert len(api.batches()) == 1
        frame = run_chunk(cfg, sample_dir, tmp_path / "store")
    first, second, *_ = api.batches()
    assert second["custom_ids"] == first["custom_ids"][10:]
    assert api.resubmitted_answered() == set()
    assert int(frame["accepted"].sum()) == 30


def test_batch_replies_are_charged_at_the_batch_price_in_rows_manifest_and_budget(
    sample_dir: Path, tmp_path: Path
) -> None:
    api = FakeBatchAPI(default=BatchPlan(polls=1))
    store_root = tmp_path / "store"
    with _server(api) as server:
        # A cap, so that the ledger books every charge in the state database.
        cfg = config(server.base_url, "few_shot", 30, min_requests=10, max_cost_usd=1000.0)
        frame = run_chunk(cfg, sample_dir, store_root)
        assert server.count(CHAT) > 0
    batched = set(api.answered())
    llm = cfg.llm
    for row in frame.to_dict("records"):
        full = request_cost(row["prompt_tokens"], row["completion_tokens"], llm)
        factor = llm.batch_price_factor if row["request_hash"] in batched else 1.0
        assert row["cost_usd"] == pytest.approx(full * factor)
    assert llm.batch_price_factor == 0.5 and (INPUT_PRICE, OUTPUT_PRICE) == (1.0, 2.0)
    total = float(frame["cost_usd"].sum())
    manifests = list(store_root.glob("generations/*/manifest.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["cost_usd"] == pytest.approx(total)
    assert manifest["prices_per_mtok"]["batch_price_factor"] == 0.5
    ledger = run_ledger(str(store_root), cfg.runtime, "generations", "any")
    assert ledger.spent_usd == pytest.approx(total)


def test_a_batch_is_booked_on_the_budget_before_anything_is_submitted(
    sample_dir: Path, tmp_path: Path
) -> None:
    api = FakeBatchAPI()
    with _server(api) as server:
        cfg = config(server.base_url, "few_shot", 60, max_cost_usd=1e-6)
        with pytest.raises(BudgetExceeded, match="budget cap"):
            run_chunk(cfg, sample_dir, tmp_path / "store")
        assert server.count(CHAT) == 0
    assert api.batches() == [] and api.uploads() == 0
    store = _run_batch_store(tmp_path / "store")
    assert store.intents() == []
    store.close()


@pytest.mark.parametrize("first", ["live", "batch"])
def test_live_and_batch_replies_are_interchangeable_in_the_cache(
    first: str, sample_dir: Path, tmp_path: Path
) -> None:
    store_root = tmp_path / "store"
    api = FakeBatchAPI(default=BatchPlan(polls=1))
    with _server(api) as server:
        cfg = config(server.base_url, "zero_shot", 40, batch=first == "batch", min_requests=5)
        before = run_chunk(cfg, sample_dir, store_root)
        assert server.count(CHAT) + len(api.submitted()) == len(before)
        assert bool(api.batches()) == (first == "batch")
        # The chunk's artifact is gone; only the request cache remains.
        shutil.rmtree(store_root / "generations")
        server.clear()
        batches, uploads = len(api.batches()), api.uploads()
        other = config(server.base_url, "zero_shot", 40, batch=first == "live", min_requests=5)
        after = run_chunk(other, sample_dir, store_root)
        assert server.count(CHAT) == 0
        assert (len(api.batches()), api.uploads()) == (batches, uploads)
    assert comparable(after) == comparable(before)
    # A reused reply counts at the price paid for it, whichever mode reuses it.
    assert after["cost_usd"].tolist() == pytest.approx(before["cost_usd"].tolist())


def test_an_endpoint_without_a_batch_api_is_refused_before_anything_is_submitted() -> None:
    with _server() as server:
        llm = LLMConfig(endpoint=server.base_url, model="fake-model")
        with pytest.raises(NoBatchAPI, match="Drop --batch"):
            require_batch_api(llm, timeout_s=5)
        assert [r.path for r in server.requests] == ["/v1/batches"]
    with pytest.raises(NoBatchAPI, match=r"embedded.*drop --batch"):
        require_batch_api(LLMConfig(), timeout_s=5)
