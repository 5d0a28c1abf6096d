"""Content-addressed Parquet artifacts with manifests; tasks pass ArtifactRefs, not frames."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from llmsynth_core.schemas import SCHEMAS, check_table, to_table

_PACKAGES = ("llmsynth", "prefect", "openai", "torch", "transformers", "pandas", "pyarrow")


class ArtifactRef(BaseModel):
    """A small, serialisable pointer to a Parquet artifact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    schema_name: str
    rows: int
    sha256: str


class ArtifactStore:
    """Artifacts at <root>/<kind>/<key>/data.parquet, written once and never overwritten."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def location(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def manifest(self, kind: str, key: str) -> dict[str, Any] | None:
        """The manifest of an artifact already written under this key, if any."""
        path = self.location(kind, key) / "manifest.json"
        if not path.exists():
            return None
        manifest: dict[str, Any] = json.loads(path.read_text())
        return manifest

    def existing(self, kind: str, key: str) -> ArtifactRef | None:
        """The ref of an artifact already written under this key, if any."""
        manifest = self.manifest(kind, key)
        return None if manifest is None else ArtifactRef.model_validate(manifest["artifact"])

    def write(
        self, kind: str, key: str, frame: pd.DataFrame, schema_name: str, manifest: dict[str, Any]
    ) -> ArtifactRef:
        """Write atomically (temp file, then rename) so a crash never leaves half a file."""
        found = self.existing(kind, key)
        if found is not None:
            return found
        table = to_table(frame, SCHEMAS[schema_name], schema_name)
        directory = self.location(kind, key)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "data.parquet"
        _atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        ref = ArtifactRef(
            uri=str(path), schema_name=schema_name, rows=table.num_rows, sha256=_sha256(path)
        )
        full = {**manifest, "artifact": ref.model_dump(), "provenance": provenance()}
        _atomic(
            directory / "manifest.json",
            lambda tmp: Path(tmp).write_text(json.dumps(full, indent=2, default=str)),
        )
        return ref


def read_artifact(ref: ArtifactRef) -> pd.DataFrame:
    """Read and check the declared schema."""
    table = pq.read_table(ref.uri)
    check_table(table, SCHEMAS[ref.schema_name], ref.schema_name)
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
