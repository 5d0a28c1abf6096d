"""What a classifier trains on: real, synthetic and mixed sets, the validation carve, and the
checks that stop a bad training set before any model loads."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from llmsynth_core.config import Mixture, TrainingConfig
from llmsynth_core.errors import DataError
from llmsynth_core.sampling import cap_per_label, sample_per_label
from llmsynth_core.training import LabelledTexts

_SPACE = re.compile(r"\s+")


def real_rows(train: pd.DataFrame, counts: Mapping[str, int], seed: int) -> pd.DataFrame:
    """A seeded, stratified subsample of the real training split: counts[label] rows per label
    (fewer where the split has fewer)."""
    return sample_per_label(train, counts, seed)[["text", "label"]]


def synthetic_rows(
    accepted: pd.DataFrame, counts: Mapping[str, int] | None, seed: int
) -> pd.DataFrame:
    """A mode's accepted rows cut down (seeded) to counts[label] per label; None: all of them."""
    rows = accepted if counts is None else cap_per_label(accepted, counts, seed)
    return rows[["text", "label"]].reset_index(drop=True)


def accepted_rows(generated: Sequence[pd.DataFrame], where: str) -> pd.DataFrame:
    """The accepted rows (text, label) of a synthetic set's generation artifacts."""
    rows = pd.concat(generated, ignore_index=True) if generated else pd.DataFrame()
    if rows.empty or not rows["accepted"].any():
        raise DataError(
            f"{where}: no accepted synthetic rows to train on; see the rejects "
            "(reject_reason) in the generation artifacts and loosen generation settings"
        )
    return rows.loc[rows["accepted"], ["text", "label"]].reset_index(drop=True)


def mixture_rows(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    mixture: Mixture,
    labels: Sequence[str],
    seed: int,
    synthetic_counts: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """A small real set plus synthetic rows of one mode (the study's augmentation setting); the
    synthetic part is at most mixture.synthetic_per_label and synthetic_counts[label] per label."""
    real = real_rows(train, dict.fromkeys(labels, mixture.real_per_label), seed)
    wanted = mixture.synthetic_per_label
    caps = dict(synthetic_counts) if synthetic_counts is not None else {}
    if wanted is not None:
        caps = {label: min(wanted, caps.get(label, wanted)) for label in labels}
    rows = synthetic_rows(synthetic, caps or None, seed)
    return pd.concat([real, rows], ignore_index=True)


def carve_validation(
    frame: pd.DataFrame, fraction: float, seed: int, min_per_label: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off round(fraction * n) rows of each label (seeded; a label keeps >= 1 training
    row); no split at all when some label would get fewer than `min_per_label`."""
    everything = frame.reset_index(drop=True), frame.iloc[:0]
    if fraction <= 0:
        return everything
    held: list[int] = []
    for _, group in frame.groupby("label", sort=True):
        n = min(round(fraction * len(group)), len(group) - 1)
        if n < min_per_label:
            return everything
        held.extend(group.sample(n=n, random_state=seed).index.tolist())
    validation = frame.loc[held]
    return frame.drop(index=held).reset_index(drop=True), validation.reset_index(drop=True)


def check_training_set(frame: pd.DataFrame, labels: Sequence[str], where: str) -> None:
    """Raise a DataError naming the fix for empty texts, unknown labels or a single class."""
    texts = frame["text"].astype(str).str.strip()
    if frame.empty:
        raise DataError(f"{where}: the training set is empty; generate or supply rows first")
    empty = int((texts == "").sum())
    if empty:
        raise DataError(
            f"{where}: {empty} training text(s) are empty; drop those rows (for synthetic "
            "data, raise generation.min_chars so the quality gates reject them)"
        )
    unknown = sorted(set(frame["label"].astype(str)) - set(labels))
    if unknown:
        raise DataError(
            f"{where}: training labels {unknown[:10]} are not in the task's label set "
            f"{list(labels)}; fix the data or the task spec's labels"
        )
    present = sorted(set(frame["label"].astype(str)))
    if len(present) < 2:
        raise DataError(
            f"{where}: the training set has a single class {present}; a classifier needs at "
            "least two, so generate (or sample) rows for the other labels"
        )


def normalise_text(text: str) -> str:
    """Case- and whitespace-insensitive form of a text, for leakage checks."""
    return _SPACE.sub(" ", text).strip().casefold()


def leaked(train_texts: Iterable[str], test_texts: Iterable[str]) -> int:
    """How many test texts also occur (normalised) in the training texts."""
    seen = {normalise_text(text) for text in train_texts}
    return sum(normalise_text(text) in seen for text in test_texts)


@dataclass(frozen=True)
class TrainingSplits:
    """What one model trains, validates and is tested on, and what the checks found: warnings
    (the test score is suspect) and notes (a setting had no effect)."""

    data: pd.DataFrame  # every row the source supplied, before the validation carve
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    leaked: int  # test texts that also occur in `data`
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def split_for_training(
    data: pd.DataFrame,
    test: pd.DataFrame,
    labels: Sequence[str],
    training: TrainingConfig,
    seed: int,
    where: str,
) -> TrainingSplits:
    """Check a training set (raising a DataError that names the fix), count its leakage into
    the test split and carve its validation split."""
    check_training_set(data, labels, where)
    overlap = leaked(data["text"], test["text"])
    train, validation = carve_validation(
        data, training.validation_fraction, seed, training.min_validation_per_label
    )
    warnings, notes = [], []
    if overlap:
        warnings.append(
            f"{where}: {overlap} of {len(test)} test texts also occur in the training data "
            "(leakage); the test score is optimistic. Deduplicate the splits to remove it."
        )
    if training.validation_fraction > 0 and validation.empty:
        notes.append(
            f"{where}: no validation split (fewer than {training.min_validation_per_label} "
            f"rows per label at validation_fraction {training.validation_fraction:.2f}), so no "
            "early stopping; raise training.validation_fraction or generation.per_label to "
            "get one"
        )
    return TrainingSplits(data, train, validation, test, overlap, tuple(warnings), tuple(notes))


def labelled(frame: pd.DataFrame, label_names: Sequence[str]) -> LabelledTexts:
    """A frame's texts with the ids of their labels (the position in `label_names`)."""
    ids = {name: i for i, name in enumerate(label_names)}
    return LabelledTexts(frame["text"].tolist(), frame["label"].map(ids).tolist())
