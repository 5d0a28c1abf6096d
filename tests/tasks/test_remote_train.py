"""A training run that crashed (its process or machine died) is started again; one that failed
in its own code is not, since it would fail again."""

from __future__ import annotations

from prefect.states import Completed, Failed

from tasks.remote_train import (
    CRASH_RETRIES,
    TrainingRunCrashed,
    TrainingRunFailed,
    crashed_runs_only,
    train_remote_task,
)


def test_only_a_crashed_training_run_is_started_again() -> None:
    assert crashed_runs_only(None, None, Failed(data=TrainingRunCrashed("worker died")))
    assert not crashed_runs_only(None, None, Failed(data=TrainingRunFailed("no metrics")))
    assert not crashed_runs_only(None, None, Failed(data=ValueError("a bug")))
    assert not crashed_runs_only(None, None, Completed(data=1))
    assert train_remote_task.retries == CRASH_RETRIES == 2
    assert train_remote_task.retry_condition_fn is crashed_runs_only
