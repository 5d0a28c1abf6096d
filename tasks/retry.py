"""Prefect retry policy: retry transport trouble, never a problem the user must fix."""

from __future__ import annotations

from typing import Any

from llmsynth_core.errors import LlmsynthError


def transport_failures_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry unless the failure is an LlmsynthError (bad config, data, key or model)."""
    try:
        state.result()
    except LlmsynthError:
        return False
    except Exception:
        return True
    return False
