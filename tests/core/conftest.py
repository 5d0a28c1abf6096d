"""Fixtures shared by the core tests: the AG News task and a real few-shot pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmsynth_core.prompts import Example
from llmsynth_core.registry import load_registry
from llmsynth_core.taskspec import TaskSpec
from tests.core.pools import ag_news_pool


@pytest.fixture(scope="module")
def ag_news() -> TaskSpec:
    return load_registry()["ag_news"]


@pytest.fixture(scope="module")
def world_pool(sample_dir: Path) -> list[Example]:
    return ag_news_pool(sample_dir, "World", 30)
