"""Shared fixtures: the real datasets (sample subset), Prefect's test harness, offline hubs, the
fake OpenAI server with a small config pointed at it, and a tiny random encoder.

Markers follow from what a test uses (see `pytest_collection_modifyitems`), so `make test-fast`
can leave out everything that needs the data, a real encoder, Prefect or the stack.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llmsynth_core.config import ExperimentConfig
from tests.fakes.openai_server import FakeOpenAIServer
from tests.flows import configs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# A test that uses one of these fixtures (directly or through another) gets the marker.
FIXTURE_MARKERS = {
    "datasets_dir": "data",
    "sample_dir": "data",
    "prefect_harness": "flow",
    "prefect_stack": "stack",
    "stack": "stack",  # tests/slow/test_hosts.py: the three test hosts
}
# Every test under tests/<directory>/ gets the marker: the flow tests run Prefect flows.
DIRECTORY_MARKERS = {"flows": "flow"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in used:
                item.add_marker(marker)
        if item.path.is_relative_to(TESTS):
            directory = item.path.relative_to(TESTS).parts[0]
            if directory in DIRECTORY_MARKERS:
                item.add_marker(DIRECTORY_MARKERS[directory])


def _datasets_dir() -> Path:
    configured = os.environ.get("LLMSYNTH_DATA_DIR")
    # Absolute: worker processes run the deployments from other working directories.
    return Path(configured).resolve() if configured else REPO.parent / "shared" / "datasets"


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


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    """A loopback OpenAI-compatible server serving "fake-model" with the echo responder."""
    with FakeOpenAIServer(models=["fake-model"]) as server:
        yield server


@pytest.fixture
def small_config(fake_llm: FakeOpenAIServer) -> Callable[..., ExperimentConfig]:
    """`tests.flows.configs.small_config` pointed at `fake_llm`: `small_config(tasks=(...))`."""
    return functools.partial(configs.small_config, fake_llm.base_url)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A randomly initialised two-layer BERT with the embedded MiniLM's tokenizer, saved to a
    temporary directory: training code runs end to end, offline, in about a second."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from tasks.encoders import resolve_encoder

    source = resolve_encoder("embedded:all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    target = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return str(target)
