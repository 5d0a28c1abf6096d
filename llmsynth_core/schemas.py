"""Declared schemas of every Parquet artifact, checked on write and on read."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from llmsynth_core.errors import DataError

GENERATIONS = pa.schema(
    [
        ("task", pa.string()),
        ("mode", pa.string()),
        ("label", pa.string()),
        ("text", pa.string()),
        ("raw_text", pa.string()),
        ("accepted", pa.bool_()),
        ("reject_reason", pa.string()),
        ("request_index", pa.int64()),
        ("conversation", pa.int64()),
        ("turn", pa.int64()),
        ("style", pa.string()),
        ("length", pa.string()),
        ("few_shot_ids", pa.list_(pa.string())),
        ("model", pa.string()),
        ("endpoint_kind", pa.string()),
        ("prompt_version", pa.string()),
        ("prompt_hash", pa.string()),
        ("request_hash", pa.string()),
        ("seed", pa.int64()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("latency_s", pa.float64()),
        ("cost_usd", pa.float64()),
    ]
)

# A task's train split, or its evaluation subsample in scoring order (tasks/snapshot.py).
SNAPSHOT = pa.schema(
    [
        ("row_id", pa.string()),  # the data's own unique `id`, else a content hash
        ("text", pa.string()),
        ("label", pa.string()),
        ("label_id", pa.int64()),
        ("agreement", pa.float64()),  # null where the data has no annotator agreement
    ]
)

PREDICTIONS = pa.schema(
    [
        ("task", pa.string()),
        ("model", pa.string()),
        ("source", pa.string()),
        ("seed", pa.int64()),
        ("replicate", pa.int64()),  # which synthetic set (generation.replicates); real: 0
        ("row", pa.int64()),  # position in the evaluation subsample
        ("row_id", pa.string()),
        ("label", pa.string()),
        ("label_id", pa.int64()),
        ("pred_id", pa.int64()),
        ("pred", pa.string()),
        ("correct", pa.bool_()),
        ("probs", pa.list_(pa.float64())),
        ("agreement", pa.float64()),
    ]
)

METRICS = pa.schema(
    [
        ("task", pa.string()),
        ("subjectivity", pa.int64()),
        ("model", pa.string()),
        ("source", pa.string()),
        ("seed", pa.int64()),
        ("replicate", pa.int64()),  # which synthetic set (generation.replicates); real: 0
        ("n_train", pa.int64()),
        ("n_validation", pa.int64()),
        ("n_test", pa.int64()),
        # Rows per label the source supplied (before the validation carve), as label_names.
        ("train_counts", pa.list_(pa.int64())),
        ("macro_f1", pa.float64()),
        ("accuracy", pa.float64()),
        ("best_epoch", pa.int64()),
        ("epochs_run", pa.int64()),
        # Per class, indexed like label_names; confusion rows = true, columns = predicted.
        ("label_names", pa.list_(pa.string())),
        ("precision", pa.list_(pa.float64())),
        ("recall", pa.list_(pa.float64())),
        ("f1", pa.list_(pa.float64())),
        ("support", pa.list_(pa.int64())),
        ("confusion", pa.list_(pa.list_(pa.int64()))),
        ("leaked_test_texts", pa.int64()),
        ("train_seconds", pa.float64()),
    ]
)

CURVES = pa.schema(
    [
        ("task", pa.string()),
        ("model", pa.string()),
        ("source", pa.string()),
        ("seed", pa.int64()),
        ("replicate", pa.int64()),  # which synthetic set (generation.replicates); real: 0
        ("epoch", pa.int64()),
        ("train_loss", pa.float64()),
        ("validation_macro_f1", pa.float64()),  # null without a validation split
        ("test_macro_f1", pa.float64()),
        ("seconds", pa.float64()),
    ]
)

DIVERSITY = pa.schema(
    [
        ("task", pa.string()),
        ("subjectivity", pa.int64()),
        ("source", pa.string()),
        ("n", pa.int64()),
        ("remote_clique", pa.float64()),
        ("chamfer", pa.float64()),
        ("distinct_1", pa.float64()),
        ("distinct_2", pa.float64()),
        ("distinct_3", pa.float64()),
        ("type_token_ratio", pa.float64()),
        ("similarity_to_real", pa.float64()),  # null for the real source itself
    ]
)

ANNOTATIONS = pa.schema(
    [
        ("task", pa.string()),
        ("row", pa.int64()),
        ("row_id", pa.string()),  # joins the predictions of the same test instance
        ("annotations", pa.list_(pa.string())),  # parsed labels; null where unparsable
        ("raw", pa.list_(pa.string())),
        ("agreement_estimate", pa.float64()),
        ("model", pa.string()),
    ]
)

# worth.real_equivalents: per task, model and synthetic source, the real rows per label that
# reach its Macro-F1 on the real learning curve; an estimate or interval end outside the curve
# is null, with 'below' or 'above' in its censored column and the curve's bound in
# smallest/largest.
REAL_EQUIVALENT = pa.schema(
    [
        ("task", pa.string()),
        ("subjectivity", pa.int64()),
        ("model", pa.string()),
        ("source", pa.string()),
        ("synthetic_per_label", pa.float64()),  # mean training rows per label of the source
        ("synthetic_macro_f1", pa.float64()),
        ("real_equivalent", pa.float64()),
        ("low", pa.float64()),
        ("high", pa.float64()),
        ("censored", pa.string()),
        ("low_censored", pa.string()),
        ("high_censored", pa.string()),
        ("text", pa.string()),  # e.g. "≈ 5.7 [3.1, 9.8]", "< 2 [< 2, 2.6]"
        ("smallest", pa.int64()),
        ("largest", pa.int64()),
        ("n_seeds", pa.int64()),
    ]
)

# worth.real_equivalents: the real learning curve (curve 'real', source real@k) and the mixed
# curve (curve 'mixed', a training.mixtures source of `mode` with per_label real rows), each
# point's Macro-F1 over seeds with a 95% paired bootstrap interval.
REAL_CURVE = pa.schema(
    [
        ("task", pa.string()),
        ("subjectivity", pa.int64()),
        ("model", pa.string()),
        ("source", pa.string()),
        ("curve", pa.string()),
        ("mode", pa.string()),  # the mixed-in synthetic mode; null on the real curve
        ("per_label", pa.int64()),  # real rows per label asked for (k)
        ("n_seeds", pa.int64()),
        ("macro_f1", pa.float64()),
        ("macro_f1_low", pa.float64()),
        ("macro_f1_high", pa.float64()),
        ("isotonic_macro_f1", pa.float64()),  # the monotone fit crossings are read from
    ]
)

# findings.findings_table: the study's three findings on one run, one row per tested
# comparison; holds = the 95% interval's low end above 0, null where it could not be tested.
FINDINGS = pa.schema(
    [
        ("finding", pa.int64()),  # 1: real > few-shot > zero-shot, 2: subjectivity, 3: agreement
        ("task", pa.string()),  # finding 2: "all (N tasks)"
        ("model", pa.string()),  # finding 2: "all" (gaps averaged over models)
        ("comparison", pa.string()),  # e.g. "real - zero_shot", "zero_shot rise - real rise"
        ("estimate", pa.float64()),
        ("low", pa.float64()),
        ("high", pa.float64()),
        ("holds", pa.bool_()),
        ("note", pa.string()),  # what the estimate is and how its interval was drawn
    ]
)

SCHEMAS = {
    "snapshot": SNAPSHOT,
    "generations": GENERATIONS,
    "predictions": PREDICTIONS,
    "metrics": METRICS,
    "curves": CURVES,
    "diversity": DIVERSITY,
    "annotations": ANNOTATIONS,
}


def to_table(frame: pd.DataFrame, schema: pa.Schema, name: str) -> pa.Table:
    """Convert with the declared schema, naming missing or extra columns on mismatch."""
    expected, present = set(schema.names), set(frame.columns)
    if expected != present:
        raise DataError(
            f"artifact {name!r}: columns differ from its schema; "
            f"missing {sorted(expected - present)}, unexpected {sorted(present - expected)}"
        )
    try:
        return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"artifact {name!r}: a column has the wrong type: {exc}") from None


def check_table(table: pa.Table, schema: pa.Schema, name: str) -> None:
    if not table.schema.equals(schema, check_metadata=False):
        raise DataError(
            f"artifact {name!r} does not match its declared schema:\n"
            f"expected {schema}\nfound {table.schema}"
        )
