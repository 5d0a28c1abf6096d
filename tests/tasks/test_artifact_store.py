"""The artifact store on a local directory and on an fsspec URI (memory://, as S3 would be)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from tasks.artifacts import (
    ArtifactStore,
    artifact_root,
    download_dir,
    local_state_dir,
    read_artifact,
    read_text,
    sibling,
    upload_dir,
)


def _metrics(source: str = "real") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "task": "ag_news",
                "subjectivity": 1,
                "model": "m",
                "source": source,
                "seed": 42,
                "replicate": 0,
                "n_train": 12,
                "n_validation": 0,
                "n_test": 24,
                "train_counts": [6, 6],
                "macro_f1": 0.5,
                "accuracy": 0.6,
                "best_epoch": 1,
                "epochs_run": 1,
                "label_names": ["a", "b"],
                "precision": [0.5, 0.5],
                "recall": [0.5, 0.5],
                "f1": [0.5, 0.5],
                "support": [12, 12],
                "confusion": [[6, 6], [6, 6]],
                "leaked_test_texts": 0,
                "train_seconds": 1.0,
            }
        ]
    )


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "local":
        yield str(tmp_path / "artifacts")
        return
    bucket = f"memory://bucket-{uuid.uuid4().hex[:8]}/out/artifacts"
    yield bucket
    fs = fsspec.filesystem("memory")
    fs.rm(bucket.removeprefix("memory://").split("/")[0], recursive=True)


def test_write_then_read_back_by_uri(root: str) -> None:
    store = ArtifactStore(root)
    assert store.existing("metrics", "k1") is None
    ref = store.write("metrics", "k1", _metrics(), "metrics", {"stage": "training"})
    assert ref.uri == f"{root}/metrics/k1/data.parquet" or ref.uri == str(
        Path(root, "metrics", "k1", "data.parquet")
    )
    with fsspec.open(ref.uri, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == ref.sha256
    frame = read_artifact(ref)
    pd.testing.assert_frame_equal(frame, _metrics())
    # A fresh store on the same root finds it, with the caller's manifest and provenance.
    again = ArtifactStore(root)
    assert again.existing("metrics", "k1") == ref
    manifest = again.manifest("metrics", "k1")
    assert manifest is not None
    assert manifest["stage"] == "training"
    assert "packages" in manifest["provenance"]


def test_never_overwritten(root: str) -> None:
    store = ArtifactStore(root)
    first = store.write("metrics", "k", _metrics("real"), "metrics", {})
    second = store.write("metrics", "k", _metrics("zero_shot"), "metrics", {})
    assert second == first
    assert read_artifact(first)["source"].tolist() == ["real"]


def test_data_without_manifest_is_not_an_artifact(root: str) -> None:
    """A writer that died between data and manifest leaves nothing a reader trusts."""
    store = ArtifactStore(root)
    ref = store.write("metrics", "k", _metrics(), "metrics", {})
    fs, path = fsspec.core.url_to_fs(store.location("metrics", "k") + "/manifest.json")
    fs.rm(path)
    assert store.existing("metrics", "k") is None
    assert store.write("metrics", "k", _metrics(), "metrics", {}) == ref


def test_sibling_names_the_same_key_of_another_kind(root: str) -> None:
    store = ArtifactStore(root)
    metrics = store.write("metrics", "key1", _metrics(), "metrics", {})
    assert sibling(metrics.uri, "predictions") == str(store.location("predictions", "key1")) + (
        "/data.parquet"
    )


def test_artifact_root_keeps_uris_and_resolves_paths(tmp_path: Path) -> None:
    assert artifact_root("s3://bucket/llmsynth") == "s3://bucket/llmsynth/artifacts"
    assert artifact_root("memory://b/x/") == "memory://b/x/artifacts"
    assert artifact_root(str(tmp_path)) == str(tmp_path.resolve() / "artifacts")


def test_local_state_for_object_stores_is_a_local_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    assert local_state_dir(str(tmp_path / "store")) == tmp_path / "store"
    one = local_state_dir("s3://bucket/a/artifacts")
    other = local_state_dir("s3://bucket/b/artifacts")
    assert one.is_dir() and other.is_dir() and one != other
    assert one.is_relative_to(tmp_path / "cache")


def test_run_directories_travel_to_and_from_a_uri(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "report-files").mkdir(parents=True)
    (run / "results.md").write_text("# results\n")
    (run / "report-files" / "a.png").write_bytes(b"\x89PNG")
    (run / "summary.json").write_text(json.dumps({"config": {}}))
    uri = f"memory://runs-{uuid.uuid4().hex[:8]}/out/runs/20250101-abc"
    assert upload_dir(run, uri) == uri
    assert read_text(f"{uri}/results.md") == "# results\n"
    back = download_dir(uri, tmp_path / "back")
    assert sorted(str(p.relative_to(back)) for p in back.rglob("*") if p.is_file()) == [
        "report-files/a.png",
        "results.md",
        "summary.json",
    ]
    assert (back / "report-files" / "a.png").read_bytes() == b"\x89PNG"


def test_get_or_build_builds_once(root: str) -> None:
    store = ArtifactStore(root)
    calls: list[int] = []

    def build() -> tuple[pd.DataFrame, dict[str, object]]:
        calls.append(1)
        return _metrics(), {"stage": "test"}

    first = store.get_or_build("metrics", "k1", "metrics", build)
    again = store.get_or_build("metrics", "k1", "metrics", build)
    assert again == first and calls == [1]
    assert read_artifact(first).equals(read_artifact(again))
