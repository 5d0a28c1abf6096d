"""Shared fixtures: the real datasets (sample subset), Prefect's test harness, offline hubs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def _datasets_dir() -> Path:
    configured = os.environ.get("LLMSYNTH_DATA_DIR")
    return Path(configured) if configured else REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    path = _datasets_dir()
    if not (path / "manifest.json").exists():
        pytest.fail(f"real datasets not found at {path}; set LLMSYNTH_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def sample_dir(datasets_dir: Path) -> Path:
    return datasets_dir / "sample"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
