"""References to stored artifacts: what stages pass each other instead of data frames."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ArtifactRef(BaseModel):
    """A small, serialisable pointer to a Parquet artifact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    schema_name: str
    rows: int
    sha256: str


class DataSnapshot(BaseModel):
    """A task's real data as stored: the train split and the evaluation subsample."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    train: ArtifactRef
    test: ArtifactRef  # the evaluation subsample, in the order every consumer scores it
