"""`llmsynth data push` puts a data directory on an S3-compatible store, and every reader of the
data (the snapshots, the analysis's comparisons file, `tasks show`) takes the s3:// URI.

The store is moto's standalone S3 server on loopback (the one s3fs's own tests use), reached
through s3fs with AWS_ENDPOINT_URL, as a worker host reaches it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows import cli
from llmsynth_core.errors import DataError
from llmsynth_core.registry import load_registry
from tasks.analyze import _comparisons
from tasks.artifacts import artifact_root, read_artifact
from tasks.data_push import push_data
from tasks.snapshot import snapshot_task
from tests.flows.configs import small_config

BUCKET = "llmsynth-test"


@pytest.fixture
def s3_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty S3 endpoint on loopback; yields the URI of a bucket that does not exist yet."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    fsspec.filesystem("s3").clear_instance_cache()  # no client from another endpoint
    try:
        yield f"s3://{BUCKET}"
    finally:
        server.stop()


def test_push_copies_the_tree_and_the_snapshots_read_it_from_s3(
    s3_store: str, sample_dir: Path, tmp_path: Path
) -> None:
    local = shutil.copytree(sample_dir, tmp_path / "data")
    (local / ".hidden").write_text("not data")
    pushed = push_data(local, f"{s3_store}/data")
    expected = sorted(
        p.relative_to(local).as_posix() for p in local.rglob("*.parquet") if p.is_file()
    )
    assert [file.relative for file in pushed] == expected, "every data file, no dotfile"
    fs = fsspec.filesystem("s3")
    assert (
        fs.size(f"{BUCKET}/data/ag_news/train.parquet")
        == (local / "ag_news" / "train.parquet").stat().st_size
    )
    assert not fs.exists(f"{BUCKET}/data/.hidden")

    # The local copy is gone: what follows can only have read the store.
    shutil.rmtree(local)
    spec = load_registry()["ag_news"]
    config = small_config("http://127.0.0.1:9/v1", tasks=("ag_news",))
    output = f"{s3_store}/output"
    snapshot = snapshot_task.fn(spec, config, f"{s3_store}/data", artifact_root(output))
    assert snapshot.train.uri.startswith(f"{s3_store}/output/artifacts/snapshots/")
    train = read_artifact(snapshot.train)
    assert len(train) == len(pd.read_parquet(sample_dir / "ag_news" / "train.parquet"))


def test_the_comparisons_file_is_read_relative_to_an_s3_data_dir(
    s3_store: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "pairs.csv").write_text("task_a,task_b,winner\nag_news,sms_spam,ag_news\n")
    push_data(data, f"{s3_store}/data")
    shutil.rmtree(data)
    (comparison,) = _comparisons("pairs.csv", f"{s3_store}/data") or []
    assert (comparison.task_a, comparison.task_b, comparison.winner) == (
        "ag_news",
        "sms_spam",
        "ag_news",
    )
    with pytest.raises(DataError, match=r"s3://llmsynth-test/data/absent.csv: file not found"):
        _comparisons("absent.csv", f"{s3_store}/data")


def test_the_cli_pushes_and_tasks_show_reads_examples_from_the_uri(
    s3_store: str, sample_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    done = runner.invoke(cli.app, ["data", "push", str(sample_dir), f"{s3_store}/data"])
    assert done.exit_code == 0, done.output
    assert "pushed 20 files" in done.output
    assert f"set LLMSYNTH_DATA_DIR={s3_store}/data" in done.output
    shown = runner.invoke(cli.app, ["tasks", "show", "sms_spam", "--data-dir", f"{s3_store}/data"])
    assert shown.exit_code == 0, shown.output
    assert "placeholder" not in shown.output and "<a real" not in shown.output


def test_push_says_what_to_fix(s3_store: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a directory"):
        push_data(tmp_path / "absent", f"{s3_store}/data")
    with pytest.raises(DataError, match="is not an object-store URI"):
        push_data(tmp_path, str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match="holds no files"):
        push_data(tmp_path, f"{s3_store}/data")
