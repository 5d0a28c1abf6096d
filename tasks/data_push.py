"""Copy a local data directory to an object store, so that workers on other machines read the
data from there (LLMSYNTH_DATA_DIR=s3://...) and need no copy of their own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsspec.core import url_to_fs

from llmsynth_core.errors import DataError
from tasks.artifacts import is_uri, join_uri


@dataclass(frozen=True)
class PushedFile:
    relative: str  # the path under the data directory, '/'-separated
    size: int


def push_data(source: Path, destination: str) -> list[PushedFile]:
    """Upload every file under `source` to `destination` (s3://bucket/prefix), keeping the
    layout; the bucket is created if missing. Files already there are replaced: the
    pipeline's snapshots key on content, so changed data never mixes with old results."""
    if not source.is_dir():
        raise DataError(
            f"{source} is not a directory; give the data directory holding "
            "<task>/{train,test}.parquet (e.g. ../shared/datasets/sample)"
        )
    if not is_uri(destination):
        raise DataError(
            f"{destination!r} is not an object-store URI; give one such as s3://bucket/data "
            "(a local directory needs no push: point LLMSYNTH_DATA_DIR at it)"
        )
    files = sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(source).parts)
    )
    if not files:
        raise DataError(f"{source} holds no files; nothing to push")
    fs, base = url_to_fs(destination)
    fs.makedirs(base, exist_ok=True)  # creates the bucket where the store needs one
    pushed = []
    for path in files:
        relative = path.relative_to(source).as_posix()
        fs.put_file(str(path), join_uri(destination, *relative.split("/")))
        pushed.append(PushedFile(relative, path.stat().st_size))
    return pushed
