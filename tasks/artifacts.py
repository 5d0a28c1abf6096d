"""Content-addressed Parquet artifacts with manifests; tasks pass ArtifactRefs, not frames."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

# Re-exported: the model lives in core, so core code can name artifacts too.
from llmsynth_core.refs import ArtifactRef as ArtifactRef
from llmsynth_core.schemas import SCHEMAS, check_table, to_table
from tasks.parquet_batches import BATCH_ROWS

DATA = "data.parquet"
MANIFEST = "manifest.json"
_PACKAGES = ("llmsynth", "prefect", "openai", "torch", "transformers", "pandas", "pyarrow")


class ArtifactStore:
    """Artifacts at <root>/<kind>/<key>/data.parquet, written once and never overwritten.

    The root is a local directory or an fsspec URI (s3://, gs://, az://, memory://); the
    object-store protocols need their fsspec package (s3fs, gcsfs, adlfs) installed.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = str(root).rstrip("/") or "/"
        self.fs, _ = url_to_fs(self.root)
        self.is_local = isinstance(self.fs, LocalFileSystem)

    def location(self, kind: str, key: str) -> str:
        return join_uri(self.root, kind, key)

    def manifest(self, kind: str, key: str) -> dict[str, Any] | None:
        """The manifest of an artifact already written under this key, if any."""
        path = join_uri(self.location(kind, key), MANIFEST)
        try:
            with fsspec.open(path, "rb") as handle:
                manifest: dict[str, Any] = json.loads(handle.read())
        except FileNotFoundError:
            return None
        return manifest

    def existing(self, kind: str, key: str) -> ArtifactRef | None:
        """The ref of an artifact already written under this key, if any."""
        manifest = self.manifest(kind, key)
        return None if manifest is None else ArtifactRef.model_validate(manifest["artifact"])

    def get_or_build(
        self,
        kind: str,
        key: str,
        schema_name: str,
        build: Callable[[], tuple[pd.DataFrame, dict[str, Any]]],
    ) -> ArtifactRef:
        """The artifact under this key; built (frame and manifest) and written only if absent.

        The skeleton of every content-addressed stage: look up, compute, write once.
        """
        found = self.existing(kind, key)
        if found is not None:
            return found
        frame, manifest = build()
        return self.write(kind, key, frame, schema_name, manifest)

    def write(
        self, kind: str, key: str, frame: pd.DataFrame, schema_name: str, manifest: dict[str, Any]
    ) -> ArtifactRef:
        """Write the data, then the manifest: a manifest always means complete data.

        Locally each file is written to a temp file and renamed; object stores make a single
        PUT visible whole, so writing the manifest last is enough there.
        """
        found = self.existing(kind, key)
        if found is not None:
            return found
        table = to_table(frame, SCHEMAS[schema_name], schema_name)
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, compression="zstd")
        data = buffer.getvalue().to_pybytes()
        directory = self.location(kind, key)
        uri = join_uri(directory, DATA)
        ref = ArtifactRef(
            uri=uri,
            schema_name=schema_name,
            rows=table.num_rows,
            sha256=hashlib.sha256(data).hexdigest(),
        )
        full = {**manifest, "artifact": ref.model_dump(), "provenance": provenance()}
        self._put(uri, data)
        self._put(join_uri(directory, MANIFEST), json.dumps(full, indent=2, default=str).encode())
        return ref

    @contextmanager
    def staged(self, kind: str, key: str) -> Iterator[Path]:
        """A local path to write an artifact's Parquet to (a `ParquetBatchWriter`), then hand
        to `publish_file`; removed on the way out if it was not published."""
        if self.is_local:
            directory = Path(self.location(kind, key))
            directory.mkdir(parents=True, exist_ok=True)
        else:
            directory = Path(tempfile.gettempdir())
        fd, name = tempfile.mkstemp(dir=directory, prefix=f".{DATA}.", suffix=".staged")
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def publish_file(
        self, kind: str, key: str, path: Path, schema_name: str, manifest: dict[str, Any]
    ) -> ArtifactRef:
        """`write` for a Parquet file already written to a `staged` path: checked against its
        schema, moved (or uploaded) into place, then the manifest."""
        found = self.existing(kind, key)
        if found is not None:
            return found
        check_table(pq.read_schema(path).empty_table(), SCHEMAS[schema_name], schema_name)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        directory = self.location(kind, key)
        uri = join_uri(directory, DATA)
        ref = ArtifactRef(
            uri=uri,
            schema_name=schema_name,
            rows=pq.read_metadata(path).num_rows,
            sha256=digest.hexdigest(),
        )
        full = {**manifest, "artifact": ref.model_dump(), "provenance": provenance()}
        if self.is_local:
            os.replace(path, uri)
        else:
            self.fs.put_file(str(path), uri)
        self._put(join_uri(directory, MANIFEST), json.dumps(full, indent=2, default=str).encode())
        return ref

    def _put(self, uri: str, data: bytes) -> None:
        if self.is_local:
            path = Path(uri)
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic(path, lambda tmp: Path(tmp).write_bytes(data))
        else:
            self.fs.pipe_file(uri, data)


def join_uri(root: str, *parts: str) -> str:
    """Join path parts onto a local path or a URI (URIs always use '/')."""
    if "://" in root:
        return "/".join([root.rstrip("/"), *parts])
    return str(Path(root, *parts))


def is_uri(location: str) -> bool:
    """True for an object-store or other fsspec URI, False for a local path or file:// URI."""
    return "://" in location and not location.startswith("file://")


def artifact_root(output_dir: str) -> str:
    """Where the content-addressed artifacts live under an output directory or URI."""
    if is_uri(output_dir):
        return join_uri(output_dir, "artifacts")
    return str(Path(output_dir.removeprefix("file://")).resolve() / "artifacts")


def sibling(uri: str, kind: str) -> str:
    """The same key's file of another kind: .../metrics/<key>/data.parquet -> .../<kind>/..."""
    head, _, name = uri.rpartition("/")
    base, _, key = head.rpartition("/")
    root, _, _ = base.rpartition("/")
    return f"{root}/{kind}/{key}/{name}"


def local_state_dir(store_root: str) -> Path:
    """A local directory for state that needs a real file system (the SQLite request cache).

    The store root itself when it is local; otherwise a per-store directory under
    LLMSYNTH_CACHE_DIR, since SQLite cannot live on an object store.
    """
    if not is_uri(store_root):
        return Path(store_root.removeprefix("file://"))
    cache = Path(os.environ.get("LLMSYNTH_CACHE_DIR", Path.home() / ".cache" / "llmsynth"))
    digest = hashlib.sha256(store_root.encode()).hexdigest()[:16]
    path = cache / "stores" / digest
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_dir(local: Path, uri: str) -> str:
    """Copy a finished local directory to a URI, file by file, and return the URI."""
    fs, _ = url_to_fs(uri)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.put_file(str(path), join_uri(uri, *path.relative_to(local).parts))
    return uri


def download_dir(uri: str, local: Path) -> Path:
    """Copy every file under a URI into a local directory and return it."""
    fs, base = url_to_fs(uri)
    for path in fs.find(base):
        relative = path[len(base) :].lstrip("/")
        target = local / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(target))
    return local


def read_bytes(location: str) -> bytes:
    """A file's bytes from a local path or any fsspec URI."""
    with fsspec.open(location, "rb") as handle:
        data: bytes = handle.read()
    return data


def read_text(location: str) -> str:
    """A text file from a local path or any fsspec URI."""
    with fsspec.open(location, "rt", encoding="utf-8") as handle:
        text: str = handle.read()
    return text


def read_artifact(ref: ArtifactRef, columns: list[str] | None = None) -> pd.DataFrame:
    """Read (from a local path or any fsspec URI) and check the declared schema; `columns`
    reads only those."""
    return read_parquet(ref.uri, ref.schema_name, columns)


def read_parquet(uri: str, schema_name: str, columns: list[str] | None = None) -> pd.DataFrame:
    schema = SCHEMAS[schema_name]
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    with fsspec.open(uri, "rb") as handle:
        table = pq.read_table(handle, columns=columns)
    check_table(table, schema, schema_name)
    frame: pd.DataFrame = table.to_pandas()
    return frame


def iter_artifact(ref: ArtifactRef, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """An artifact's rows, in order, as tables of at most `batch_rows` rows; schema checked."""
    with fsspec.open(ref.uri, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        schema = SCHEMAS[ref.schema_name]
        check_table(parquet.schema_arrow.empty_table(), schema, ref.schema_name)
        for batch in parquet.iter_batches(batch_size=batch_rows):
            yield pa.Table.from_batches([batch])


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def provenance() -> dict[str, Any]:
    """Git revision, package versions and the Prefect flow run, for manifests."""
    return {**_static_provenance(), **_flow_run()}


@cache
def _static_provenance() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"git_revision": _git_revision(), "packages": versions}


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _flow_run() -> dict[str, Any]:
    from prefect.runtime import flow_run

    return {"flow_run_id": flow_run.get_id(), "flow_run_name": flow_run.get_name()}
