"""Prefect retry policy: retry transport trouble, never a problem the user must fix."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

from llmsynth_core.errors import LlmsynthError


def transport_failures_only(task: Any, task_run: Any, state: Any) -> bool | Awaitable[bool]:
    """Retry unless the failure is an LlmsynthError (bad config, data, key or model).

    For an async task Prefect calls this on its event loop, where `state.result()` hands back
    a coroutine; the check is then returned as one too, and Prefect awaits it.
    """
    try:
        outcome = state.result()
    except LlmsynthError:
        return False
    except Exception:
        return True
    if inspect.isawaitable(outcome):
        return _retry_after(outcome)
    return False


async def _retry_after(outcome: Awaitable[Any]) -> bool:
    try:
        await outcome
    except LlmsynthError:
        return False
    except Exception:
        return True
    return False
