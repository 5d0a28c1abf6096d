"""The batch store keeps intents, their batches and each request's fate across processes."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tasks.batch_store import BATCH_STATE_FILE, BatchStore, batch_metadata, local_batch_store


def test_an_intent_is_written_whole_before_submission_and_found_by_its_requests(
    tmp_path: Path,
) -> None:
    store = local_batch_store(tmp_path)
    intent = store.open("chunk-a", "keyset-1", "/v1/chat/completions", ["r1", "r2", "r3"])
    assert (intent.attempt, intent.batch_id, intent.finished) == (0, None, False)
    assert store.latest("keyset-1") == intent
    assert store.latest("keyset-2") is None
    assert store.request_states(intent.intent_id) == dict.fromkeys(["r1", "r2", "r3"], "pending")
    store.close()


def test_ids_and_outcomes_survive_a_new_process(tmp_path: Path) -> None:
    store = local_batch_store(tmp_path)
    intent = store.open("chunk-a", "keyset-1", "/v1/completions", ["r1", "r2"])
    store.record_file(intent.intent_id, "file-1")
    store.record_batch(intent.intent_id, "batch-1")
    store.close()

    # Another process (a new engine on the same file) sees what was recorded.
    again = BatchStore(sa.create_engine(f"sqlite:///{tmp_path / BATCH_STATE_FILE}"))
    found = again.latest("keyset-1")
    assert found is not None
    assert (found.input_file_id, found.batch_id, found.endpoint) == (
        "file-1",
        "batch-1",
        "/v1/completions",
    )
    done = again.finish(intent.intent_id, "expired", answered=["r1"], failed=["r2"])
    assert done.finished and done.outcome == "expired"
    assert again.request_states(intent.intent_id) == {"r1": "answered", "r2": "failed"}
    again.close()


def test_resubmitting_the_same_requests_is_a_new_attempt(tmp_path: Path) -> None:
    store = local_batch_store(tmp_path)
    first = store.open("chunk-a", "keyset-1", "/v1/chat/completions", ["r1"])
    store.finish(first.intent_id, "failed", [], ["r1"])
    second = store.open("chunk-a", "keyset-1", "/v1/chat/completions", ["r1"])
    other = store.open("chunk-b", "keyset-9", "/v1/chat/completions", ["r1", "r7"])
    assert second.attempt == 1 and second.intent_id != first.intent_id
    assert store.latest("keyset-1") == second
    assert [i.intent_id for i in store.intents("chunk-a")] == [first.intent_id, second.intent_id]
    assert len(store.intents()) == 3 and other in store.intents()
    assert store.submissions() == {"r1": 3, "r7": 1}
    store.close()


def test_the_tables_are_the_stores_own_on_any_engine(tmp_path: Path) -> None:
    assert set(batch_metadata.tables) == {"llmsynth_batch_intents", "llmsynth_batch_requests"}
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shared.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE other_state (x INTEGER)"))
    BatchStore(engine).close()
    reopened = sa.create_engine(f"sqlite:///{tmp_path / 'shared.sqlite'}")
    names = set(sa.inspect(reopened).get_table_names())
    assert names == {"other_state", "llmsynth_batch_intents", "llmsynth_batch_requests"}
    assert (tmp_path / "shared.sqlite").exists() and not (tmp_path / BATCH_STATE_FILE).exists()
