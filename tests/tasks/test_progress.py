"""Progress artifacts: updates sent off the event loop still reach the server in order."""

from __future__ import annotations

import asyncio
import time
from uuid import UUID, uuid4

import pytest

from tasks import progress
from tasks.progress import ProgressArtifact

described: list[str | None] = []


def _artifact(
    monkeypatch: pytest.MonkeyPatch, first_send_s: float
) -> tuple[ProgressArtifact, list[float]]:
    """An artifact whose API calls are recorded; the first one takes `first_send_s`."""
    described.clear()
    arrived: list[float] = []

    def send(artifact_id: UUID, percent: float, description: str | None = None) -> None:
        if not arrived:
            time.sleep(first_send_s)
        arrived.append(percent)
        described.append(description)

    monkeypatch.setattr(progress, "_send", send)
    artifact = ProgressArtifact("generate-task-mode-label", "task mode label")
    artifact._id = uuid4()  # as if created on the server (outside a flow run it is not)
    return artifact, arrived


def test_a_slow_early_update_does_not_overwrite_the_final_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    artifact, arrived = _artifact(monkeypatch, first_send_s=0.3)

    async def chunk() -> None:
        artifact.update(1, 4)  # the first update is due at once; its API call is slow
        await asyncio.sleep(0.05)
        artifact.update(2, 4, final=True)  # waits behind the first, not beside it
        await artifact.finish(4, 4)

    asyncio.run(chunk())
    # 50.0 was replaced by 100.0 while 25.0 was still on its way; 100.0 arrives last.
    assert arrived == [25.0, 100.0]


def test_finish_waits_for_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    artifact, arrived = _artifact(monkeypatch, first_send_s=0.2)

    async def chunk() -> list[float]:
        artifact.update(3, 4)  # not sent yet when finish() comes: the final value replaces it
        await artifact.finish(4, 4)
        return list(arrived)  # what the server had when finish() returned

    assert asyncio.run(chunk()) == [100.0]


def test_a_final_value_without_description_keeps_the_last_description(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    artifact, arrived = _artifact(monkeypatch, first_send_s=0.2)

    async def chunk() -> None:
        artifact.update(0, 4, description="batch validating")  # slow on its way
        await asyncio.sleep(0.05)
        artifact.update(4, 4, final=True, description="batch completed")  # waits behind it
        await artifact.finish(4, 4)  # replaces the waiting value, with no description of its own

    asyncio.run(chunk())
    assert arrived[-1] == 100.0
    assert described[-1] == "batch completed"
