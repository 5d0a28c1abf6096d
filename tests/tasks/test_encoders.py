"""resolve_encoder: embedded, local and cached-hub encoders, and the errors for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmsynth_core.errors import ConfigError
from tasks.encoders import resolve_encoder


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, so the user's real cache cannot change the outcome."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cache_model(cache: Path, repo_id: str, files: list[str]) -> Path:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    for name in files:
        (snapshot / name).write_text("{}")
    return snapshot


def test_embedded_resolves_to_installed_model_directory() -> None:
    path = Path(resolve_encoder("embedded:all-MiniLM-L6-v2"))
    assert path.is_dir()
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()
    assert (path / "tokenizer.json").is_file() or (path / "vocab.txt").is_file()


def test_unknown_embedded_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_encoder("embedded:bert-huge")
    message = str(info.value)
    assert "training.models" in message
    assert "'embedded:bert-huge'" in message
    assert "embedded:all-MiniLM-L6-v2" in message


def test_local_checkpoint_directory_is_returned_as_given(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_encoder(str(tmp_path)) == str(tmp_path)


def test_local_directory_without_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training\.models: .*has no config\.json"):
        resolve_encoder(str(tmp_path))


def test_missing_local_path_is_rejected(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match=r"training\.models: .*does not exist"):
        resolve_encoder(str(missing))


def test_uncached_hub_id_says_how_to_fix(hub_cache: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_encoder("bert-base-uncased")
    message = str(info.value)
    assert "training.models" in message
    assert "'bert-base-uncased'" in message
    assert "download bert-base-uncased" in message
    assert "local checkpoint directory" in message
    assert "embedded:all-MiniLM-L6-v2" in message


def test_invalid_hub_id_is_a_config_error(hub_cache: Path) -> None:
    with pytest.raises(ConfigError, match=r"training\.models"):
        resolve_encoder("not//a valid id")


def test_cached_hub_id_resolves_to_its_snapshot(hub_cache: Path) -> None:
    snapshot = _cache_model(hub_cache, "org/tiny-bert", ["config.json", "model.safetensors"])
    assert resolve_encoder("org/tiny-bert") == str(snapshot)


def test_hub_id_cached_without_weights_is_rejected(hub_cache: Path) -> None:
    _cache_model(hub_cache, "org/config-only", ["config.json"])
    with pytest.raises(ConfigError, match="cached without its weights"):
        resolve_encoder("org/config-only")
